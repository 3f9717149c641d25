//! The five service images, built from the workspace's binaries without a container
//! engine, the way ko (Go) and Jib (Java) do it: a Debian base root filesystem as one
//! layer, Amazon RDS's CA bundle as a second (the same in every image), the service
//! binary as a third, an OCI config and manifest, all written to an OCI image layout and
//! pushed through the OCI distribution API ([`registry`]).
//!
//! What goes into an image comes from the synthesized task definitions (ports, health
//! check, binary path), so the images and the stack cannot disagree. Nothing in an
//! image depends on the time or the machine: the same binary on the same base gives the
//! same digest, and a rebuild of unchanged binaries only hashes them.

pub mod registry;
pub mod store;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context as _, bail};
use pulsetrack_stacks::{
    ecs::{HealthCheck, IMAGE_USER, Template, binary_path},
    rds::{RDS_CA_BUNDLE, RDS_CA_BUNDLE_PATH},
};
use serde_json::{Value, json};

pub use self::store::{BlobStore, Descriptor, Digest, Layer};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// What one service image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub service: String,
    /// The release binary to put at `/usr/local/bin/<service>`.
    pub binary: PathBuf,
    pub ports: Vec<u16>,
    pub health_check: Option<HealthCheck>,
}

/// The image of every task definition in `template`, with binaries from `bin_dir`.
pub fn specs(template: &Value, bin_dir: &Path) -> anyhow::Result<Vec<ImageSpec>> {
    let containers = Template::read(template).context("the template's task definitions cannot be read")?.containers();
    if containers.is_empty() {
        bail!("the template has no ECS task definition");
    }
    let specs: Vec<ImageSpec> = containers
        .into_values()
        .map(|container| ImageSpec {
            binary: bin_dir.join(&container.name),
            ports: container.ports(),
            health_check: container.health_check,
            service: container.name,
        })
        .collect();
    let missing: Vec<&str> = specs.iter().filter(|s| !s.binary.is_file()).map(|s| s.service.as_str()).collect();
    if !missing.is_empty() {
        bail!(
            "{} missing in {}: build them first (`cargo build --release -p {}`) or pass --bin-dir",
            missing.join(", "),
            bin_dir.display(),
            missing.join(" -p ")
        );
    }
    Ok(specs)
}

/// A built image, in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub service: String,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Layer>,
}

impl BuiltImage {
    /// Compressed size of everything the image pulls.
    pub fn size(&self) -> u64 {
        self.config.size + self.manifest.size + self.layers.iter().map(|l| l.descriptor.size).sum::<u64>()
    }
}

/// The base layer: a root filesystem tar (as `mmdebstrap --variant=minbase bookworm`
/// writes it), gzipped once and cached by the tar's digest.
pub fn base_layer(store: &BlobStore, rootfs: &Path) -> anyhow::Result<Layer> {
    let (key, bytes) = store::file_digest(rootfs).with_context(|| {
        format!("base root filesystem {} (scripts/ensure-containers.sh makes it with mmdebstrap)", rootfs.display())
    })?;
    store.layer(&key, || Ok(bytes))
}

/// The default base root filesystem `scripts/ensure-containers.sh` writes.
pub fn default_base() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    std::env::var_os("PULSETRACK_BASE_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/pulsetrack/tools/base/bookworm-minbase-ca.tar"))
}

/// The default image layout folder (outside any clone).
pub fn default_store() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/pulsetrack/images")
}

/// The layer every image shares: Amazon RDS's CA bundle at [`RDS_CA_BUNDLE_PATH`]
/// (`DATABASE_SSL_ROOT_CERT` on AWS), cached by its content.
pub fn ca_layer(store: &BlobStore) -> anyhow::Result<Layer> {
    let key = Digest::of(format!("{RDS_CA_BUNDLE_PATH}\n{}", Digest::of(RDS_CA_BUNDLE)).as_bytes());
    store.layer(&key, || file_tar(RDS_CA_BUNDLE_PATH, RDS_CA_BUNDLE, 0o644))
}

/// A tar holding only `/usr/local/bin/<service>`, with fixed owners, modes and times.
fn binary_tar(service: &str, binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    file_tar(&binary_path(service), binary, 0o755)
}

/// A tar holding only the file `path` (absolute) and its folders (0755), owned by root,
/// modification time 0.
fn file_tar(path: &str, contents: &[u8], mode: u32) -> anyhow::Result<Vec<u8>> {
    let relative = path.trim_start_matches('/');
    let Some((folders, _)) = relative.rsplit_once('/') else { bail!("{path} is not in a folder") };
    let mut tar = tar::Builder::new(Vec::with_capacity(contents.len() + 4096));
    let mut prefix = String::new();
    for part in folders.split('/') {
        prefix.push_str(part);
        prefix.push('/');
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_path(&prefix)?;
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append(&header, std::io::empty())?;
    }
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_path(relative)?;
    header.set_mode(mode);
    header.set_size(contents.len() as u64);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    tar.append(&header, contents)?;
    Ok(tar.into_inner()?)
}

fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The image config: non-root user, the binary as entry point, the task's ports and
/// health check; no timestamps.
fn config(spec: &ImageSpec, layers: &[Layer]) -> Value {
    let ports: serde_json::Map<String, Value> = spec.ports.iter().map(|p| (format!("{p}/tcp"), json!({}))).collect();
    let mut config = json!({
        "User": IMAGE_USER,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Entrypoint": [binary_path(&spec.service)],
        "WorkingDir": "/",
        "ExposedPorts": ports,
        "Labels": {
            "org.opencontainers.image.title": spec.service,
            "org.opencontainers.image.vendor": "PulseTrack",
            "org.opencontainers.image.licenses": "MIT",
        },
    });
    if let Some(check) = &spec.health_check {
        const NANOS: u64 = 1_000_000_000;
        config["Healthcheck"] = json!({
            "Test": check.command,
            "Interval": u64::from(check.interval) * NANOS,
            "Timeout": u64::from(check.timeout) * NANOS,
            "StartPeriod": u64::from(check.start_period) * NANOS,
            "Retries": check.retries,
        });
    }
    json!({
        "architecture": architecture(),
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>() },
        "history": [
            { "created_by": "base root filesystem (mmdebstrap --variant=minbase bookworm)" },
            { "created_by": format!("deployer images build: {RDS_CA_BUNDLE_PATH} (Amazon RDS CA bundle)") },
            { "created_by": format!("deployer images build: {}", binary_path(&spec.service)) },
        ],
    })
}

/// Builds one image on `shared` (the base and the CA bundle layers) into `store`.
pub fn build(store: &BlobStore, shared: &[Layer], spec: &ImageSpec) -> anyhow::Result<BuiltImage> {
    let (key, binary) = store::file_digest(&spec.binary)?;
    let app = store
        .layer(&Digest::of(format!("{}\n{key}", spec.service).as_bytes()), || binary_tar(&spec.service, &binary))?;
    let layers: Vec<Layer> = shared.iter().cloned().chain([app]).collect();
    let config = store.put(CONFIG_MEDIA_TYPE, &serde_json::to_vec(&config(spec, &layers))?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config,
        "layers": layers.iter().map(|l| &l.descriptor).collect::<Vec<_>>(),
        "annotations": { "org.opencontainers.image.title": spec.service },
    });
    let manifest = store.put(MANIFEST_MEDIA_TYPE, &serde_json::to_vec(&manifest)?)?;
    store.tag(&spec.service, &manifest)?;
    Ok(BuiltImage { service: spec.service.clone(), manifest, config, layers })
}

/// Builds every image of `specs`; returns them by service, with the time taken.
pub fn build_all(
    store: &BlobStore,
    base: &Path,
    specs: &[ImageSpec],
) -> anyhow::Result<(BTreeMap<String, BuiltImage>, std::time::Duration)> {
    let started = Instant::now();
    let shared = [base_layer(store, base)?, ca_layer(store)?];
    let mut images = BTreeMap::new();
    for spec in specs {
        let image = build(store, &shared, spec).with_context(|| format!("image of {}", spec.service))?;
        images.insert(spec.service.clone(), image);
    }
    Ok((images, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, name: &str, contents: &[u8]) -> ImageSpec {
        let binary = dir.join(name);
        std::fs::write(&binary, contents).expect("binary");
        ImageSpec {
            service: name.into(),
            binary,
            ports: vec![4000, 9001],
            health_check: Some(HealthCheck::of_service(name)),
        }
    }

    #[test]
    fn the_binary_layer_holds_only_the_binary_with_fixed_metadata() {
        let tar = binary_tar("patient-service", b"\x7fELF...").expect("tar");
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    e.path().expect("path").display().to_string(),
                    h.mode().expect("mode"),
                    h.uid().expect("uid"),
                    h.mtime().expect("mtime"),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("usr/".to_string(), 0o755, 0, 0),
                ("usr/local/".to_string(), 0o755, 0, 0),
                ("usr/local/bin/".to_string(), 0o755, 0, 0),
                ("usr/local/bin/patient-service".to_string(), 0o755, 0, 0),
            ]
        );
    }

    #[test]
    fn the_ca_layer_holds_the_rds_bundle_at_its_path() {
        let tar = file_tar(RDS_CA_BUNDLE_PATH, RDS_CA_BUNDLE, 0o644).expect("tar");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let (path, mode, mtime) = (
                entry.path().expect("path").display().to_string(),
                entry.header().mode().expect("mode"),
                entry.header().mtime().expect("mtime"),
            );
            let mut contents = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut contents).expect("read");
            entries.push((path, mode, mtime, contents));
        }
        let paths: Vec<(&str, u32, u64)> = entries.iter().map(|(p, m, t, _)| (p.as_str(), *m, *t)).collect();
        assert_eq!(
            paths,
            [
                ("etc/", 0o755, 0),
                ("etc/ssl/", 0o755, 0),
                ("etc/ssl/certs/", 0o755, 0),
                ("etc/ssl/certs/rds-global-bundle.pem", 0o644, 0)
            ]
        );
        assert_eq!(entries[3].3, RDS_CA_BUNDLE);
    }

    #[test]
    fn same_inputs_same_digest_and_one_changed_binary_changes_one_image() {
        let dir = std::env::temp_dir().join(format!("pt-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let rootfs = dir.join("rootfs.tar");
        std::fs::write(&rootfs, binary_tar("base", b"base").expect("tar")).expect("rootfs");
        let specs = [spec(&dir, "a", b"binary a"), spec(&dir, "b", b"binary b")];
        let (first, _) = build_all(&BlobStore::open(&dir.join("one")).expect("store"), &rootfs, &specs).expect("build");
        // Another store (no cache): byte for byte the same images.
        let (second, _) =
            build_all(&BlobStore::open(&dir.join("two")).expect("store"), &rootfs, &specs).expect("build");
        assert_eq!(first, second);
        std::fs::write(&specs[1].binary, b"binary b, changed").expect("change");
        let (third, _) = build_all(&BlobStore::open(&dir.join("one")).expect("store"), &rootfs, &specs).expect("build");
        assert_eq!(first["a"].manifest, third["a"].manifest);
        assert_ne!(first["b"].manifest, third["b"].manifest);
        assert_eq!(first["b"].layers[..2], third["b"].layers[..2], "the base and CA layers are shared");
        assert_eq!(first["a"].layers[1], first["b"].layers[1], "one CA layer for every image");
        let config: Value = serde_json::from_slice(
            &std::fs::read(BlobStore::open(&dir.join("one")).expect("s").path(&third["b"].config.digest))
                .expect("config"),
        )
        .expect("json");
        assert_eq!(config["config"]["User"], IMAGE_USER);
        assert_eq!(config["config"]["ExposedPorts"], json!({ "4000/tcp": {}, "9001/tcp": {} }));
        assert_eq!(config["config"]["Healthcheck"]["Test"][1], "/usr/local/bin/b");
        assert_eq!(config["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(3));
        assert!(config.get("created").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
