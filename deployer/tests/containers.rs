//! The deployed artifact, run: `deployer images build` makes the five images from the
//! workspace's binaries (reproducibly: a changed binary changes exactly its own
//! image), and `deployer up --containers` runs the task definitions of the
//! synthesized template as podman containers from the images it pushed to a real
//! OCI registry; the seed's flow then goes through :4004 to containers only.

mod support;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use reqwest::blocking::Client;
use serde_json::Value;
use support::{
    ImageRegistry,
    system::{
        Flow, SERVICES, Up, bin_dir, binaries_with_changed, containers_conf, deployer, eventually, patient_flow,
        port_offset, run,
    },
};

fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .env("CONTAINERS_CONF", containers_conf())
        .output()
        .unwrap_or_else(|e| panic!("podman is needed (scripts/ensure-containers.sh installs it): {e}"));
    assert!(out.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `deployer images build --output json` → service → manifest digest.
fn build_images(bins: &Path, store: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    let out = Command::new(deployer())
        .args(["images", "build", "--output", "json", "--bin-dir"])
        .arg(bins)
        .arg("--image-store")
        .arg(store)
        .args(extra)
        .output()
        .expect("deployer images build");
    assert!(out.status.success(), "images build: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    report["images"]
        .as_object()
        .expect("images")
        .iter()
        .map(|(service, image)| (service.clone(), image["digest"].as_str().expect("digest").to_string()))
        .collect()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn images_are_reproducible_and_a_changed_binary_changes_only_its_image() {
    let store = temp("store");
    let first = build_images(&bin_dir(), &store, &[]);
    assert_eq!(first.keys().map(String::as_str).collect::<Vec<_>>().len(), SERVICES.len());
    // A fresh store (nothing cached): the same digests.
    let again = build_images(&bin_dir(), &temp("store-again"), &[]);
    assert_eq!(first, again, "a second build of unchanged binaries gives identical digests");

    let changed = binaries_with_changed("patient-service");
    let after = build_images(&changed, &store, &[]);
    let differing: Vec<&str> = SERVICES.iter().copied().filter(|s| first.get(*s) != after.get(*s)).collect();
    assert_eq!(differing, ["patient-service"]);

    // Pushed to a real registry, content-tagged; skopeo reads the manifest back.
    let registry = ImageRegistry::start();
    let out = Command::new(deployer())
        .args(["images", "build", "--push", "--bin-dir"])
        .arg(bin_dir())
        .arg("--image-store")
        .arg(&store)
        .args(["-c", &format!("image-registry={}/pulsetrack", registry.addr)])
        .output()
        .expect("push");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let digest = &first["auth-service"];
    assert!(text.contains(&format!("{}/pulsetrack/auth-service@{digest}", registry.addr)), "{text}");
    let inspect = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/pulsetrack/auth-service@{digest}", registry.addr))
        .output()
        .expect("skopeo is needed (scripts/ensure-containers.sh installs it)");
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let manifest: Value = serde_json::from_slice(&inspect.stdout).expect("manifest");
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    // The base, the RDS CA bundle, the binary.
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(3));
    for dir in [store, changed, temp("store-again")] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn up_containers_runs_the_deployed_task_definitions_from_pushed_images() {
    let data = temp("up-containers");
    let offset = port_offset();
    let base = format!("http://127.0.0.1:{}", 4004 + offset);
    let client = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let store = temp("up-containers-store");
    let up =
        Up::start_with(&data, offset, &["--containers".into(), "--image-store".into(), store.display().to_string()]);
    assert!(up.lines().iter().any(|l| l.contains("images built in")), "images were built and pushed");
    up.assert_quiet_start();
    assert!(up.lines().iter().any(|l| l.contains("podman: CONTAINERS_CONF is not set")), "up chose podman's settings");

    // Every service runs in a container of its image by digest, from the registry `up` runs.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("up.json")).expect("state")).expect("state json");
    let registry = state["processes"]["registry"]["url"].as_str().expect("private registry").to_string();
    let running = podman(&["ps", "--format", "{{.Names}} {{.Image}}"]);
    for service in SERVICES {
        let container = state["processes"][service]["container"].as_str().expect("container name");
        let image = state["processes"][service]["image"].as_str().expect("image");
        assert!(image.starts_with(&format!("{registry}/pulsetrack/{service}@sha256:")), "{image}");
        assert!(running.lines().any(|l| l.starts_with(container)), "{container} runs:\n{running}");
    }
    let (ok, status) = run(&["status", "--local"], &data);
    assert!(ok, "{status}");
    assert!(status.contains("CONTAINER") && status.matches("@sha256:").count() == SERVICES.len(), "{status}");
    assert!(!status.contains("NOT READY"), "{status}");

    // The seed's flow, served by the containers.
    let admin_password =
        std::fs::read_to_string(data.join("admin-password")).expect("admin password").trim().to_string();
    let Flow { id, .. } = patient_flow(&client, &base, &admin_password, "containers");
    assert!(!id.is_empty());

    // The health check of the task definition runs in the container.
    let gateway = state["processes"]["api-gateway"]["container"].as_str().expect("gateway container");
    podman(&["exec", gateway, "/usr/local/bin/api-gateway", "healthcheck"]);
    let user = podman(&["exec", gateway, "id", "-u"]);
    assert_eq!(user.trim(), "10001", "the services do not run as root");

    // A task that stops answering its health check (here: frozen) is replaced after
    // the task definition's start period and retries, as ECS replaces unhealthy tasks.
    let billing = state["processes"]["billing-service"]["container"].as_str().expect("billing container");
    podman(&["pause", billing]);
    up.wait_for("billing-service failed its health check 3 times", Duration::from_secs(180));
    up.wait_for("billing-service started (pid", Duration::from_secs(60));
    let ready = format!("http://127.0.0.1:{}/ready", 4001 + offset);
    eventually("billing-service back", || {
        client.get(&ready).send().ok().filter(|r| r.status() == 200).map(|_| 1.into())
    });

    let (ok, out) = run(&["down"], &data);
    assert!(ok, "{out}");
    assert!(up.wait_exit(), "up exits 0 after down");
    let left = podman(&["ps", "-a", "--format", "{{.Names}}"]);
    for service in SERVICES {
        let container = state["processes"][service]["container"].as_str().expect("container name");
        assert!(!left.lines().any(|l| l == container), "{container} was removed:\n{left}");
    }
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&store);
}
