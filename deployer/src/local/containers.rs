//! `deployer up --containers`: the deployed task definitions run as containers from
//! their pushed images, through podman or docker, as ECS would run them: host
//! networking with Cloud Map names resolved by `--add-host`, the task's environment
//! and secrets, and the task's health check run in the container (an unhealthy task
//! is replaced).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use pulsetrack_stacks::{
    ecs::HealthCheck,
    pulsetrack::NAMESPACE,
    settings::{AUDIT_ANCHORS, DATABASE_SSL_ROOT_CERT},
};
use tokio::process::Command;

use super::{plan::LocalService, supervisor::ProcessSpec};

/// Variables of `up`'s environment the engine itself needs (its configuration).
const ENGINE_ENV: [&str; 5] =
    ["CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONFIG"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Podman,
    Docker,
}

/// podman settings that work where systemd and CAP_SYS_RESOURCE are missing (sandboxes,
/// CI containers): runc, cgroupfs and ulimits a process may set. The same file the
/// scripts and tests give podman.
const PODMAN_SETTINGS: &str = include_str!("../../../scripts/containers.conf");
/// Where [`Engine::with_project_settings`] writes them, in the data folder.
const PODMAN_SETTINGS_FILE: &str = "containers.conf";
const CONTAINERS_CONF: &str = "CONTAINERS_CONF";

/// A container engine's command-line client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Engine {
    pub program: PathBuf,
    pub kind: EngineKind,
    /// The podman settings file every engine command is given (`CONTAINERS_CONF`), when
    /// `up` chose it rather than the caller's environment.
    #[serde(default)]
    pub settings: Option<PathBuf>,
}

impl Engine {
    /// `--engine`, else podman, else docker, from PATH.
    pub fn find(explicit: Option<&Path>) -> anyhow::Result<Self> {
        let kind_of = |p: &Path| {
            if p.file_name().is_some_and(|n| n.to_string_lossy().contains("docker")) {
                EngineKind::Docker
            } else {
                EngineKind::Podman
            }
        };
        if let Some(program) = explicit {
            return Ok(Self { program: program.to_path_buf(), kind: kind_of(program), settings: None });
        }
        if let Some(program) = super::on_path("podman").or_else(|| super::on_path("docker")) {
            return Ok(Self { kind: kind_of(&program), program, settings: None });
        }
        bail!("--containers needs podman or docker: none is on PATH (scripts/ensure-containers.sh installs podman)")
    }

    /// podman without `CONTAINERS_CONF` reads the machine's settings, whose defaults
    /// (crun or systemd cgroups, ulimits of 1M open files) fail in sandboxes and CI
    /// containers ("error setting rlimit type 7"). Then `up` gives every podman command
    /// PulseTrack's settings, written into the data folder ([`Self::settings_note`]
    /// says so). A caller's `CONTAINERS_CONF`, and docker, are left as they are.
    pub fn with_project_settings(self, data_dir: &Path) -> anyhow::Result<Self> {
        if self.kind != EngineKind::Podman || std::env::var_os(CONTAINERS_CONF).is_some() {
            return Ok(self);
        }
        let path = data_dir.join(PODMAN_SETTINGS_FILE);
        std::fs::write(&path, PODMAN_SETTINGS).with_context(|| format!("writing {}", path.display()))?;
        Ok(Self { settings: Some(path), ..self })
    }

    /// What `up` tells the user when it chose podman's settings.
    pub fn settings_note(&self) -> Option<String> {
        self.settings.as_ref().map(|path| {
            format!(
                "podman: {CONTAINERS_CONF} is not set, so it gets PulseTrack's settings ({}: runc, cgroupfs, \
                 ulimits of 4096); set {CONTAINERS_CONF} to use your own",
                path.display()
            )
        })
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.stdin(std::process::Stdio::null()).kill_on_drop(true);
        command.envs(self.env());
        command
    }

    /// The engine's own configuration: the chosen settings file, and the variables of
    /// `up`'s environment that configure the engine.
    fn env(&self) -> Vec<(String, String)> {
        let chosen = self.settings.as_ref().map(|path| (CONTAINERS_CONF.to_string(), path.display().to_string()));
        let chose = chosen.is_some();
        let inherited = ENGINE_ENV
            .iter()
            .filter(move |k| !chose || **k != CONTAINERS_CONF)
            .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)));
        chosen.into_iter().chain(inherited).collect()
    }

    /// Pulls `reference` (plain HTTP allowed for a loopback registry).
    pub async fn pull(&self, reference: &str, loopback_registry: bool) -> anyhow::Result<()> {
        let mut command = self.command();
        command.arg("pull").arg("--quiet");
        if loopback_registry && self.kind == EngineKind::Podman {
            command.arg("--tls-verify=false");
        }
        let output = command.arg(reference).output().await.with_context(|| format!("{}", self.program.display()))?;
        if !output.status.success() {
            bail!("{} pull {reference}: {}", self.program.display(), String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(())
    }

    /// Removes a container, running or not (nothing if there is none).
    pub async fn remove(&self, name: &str) {
        let _ = self.command().args(["rm", "--force", name]).output().await;
    }

    /// Runs the task's health check in the container: whether it passed.
    pub async fn check(&self, name: &str, check: &HealthCheck) -> bool {
        let run = self.command().arg("exec").arg(name).args(check.argv()).output();
        matches!(tokio::time::timeout(Duration::from_secs(u64::from(check.timeout)), run).await,
            Ok(Ok(output)) if output.status.success())
    }

    /// The host pid of a running container's main process.
    pub async fn pid(&self, name: &str) -> Option<u32> {
        let output = self.command().args(["inspect", "--format", "{{.State.Pid}}", name]).output().await.ok()?;
        let pid: u32 = String::from_utf8_lossy(&output.stdout).trim().parse().ok()?;
        (output.status.success() && pid > 0).then_some(pid)
    }

    /// Stops a container (SIGTERM, then SIGKILL after `grace`); one that cannot be
    /// stopped so (a frozen one) is killed.
    pub async fn stop(&self, name: &str, grace: Duration) {
        let stop = self.command().args(["stop", "--time", &grace.as_secs().to_string(), name]).output().await;
        if !stop.is_ok_and(|o| o.status.success()) {
            let _ = self.command().args(["kill", name]).output().await;
        }
    }

    /// The process that runs `service` in the foreground: `run --rm` with host
    /// networking, the Cloud Map names of `services` mapped to loopback, the task's
    /// variables passed by name (their values travel in the client's environment, not
    /// on its command line), and the image's own health check off: `up` runs the task
    /// definition's.
    pub fn run_spec(&self, service: &LocalService, container: &str, services: &[LocalService]) -> ProcessSpec {
        let mut args: Vec<String> =
            ["run", "--rm", "--name", container, "--network", "host", "--no-healthcheck", "--stop-timeout", "10"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        if self.kind == EngineKind::Podman {
            args.push("--replace".into());
        }
        for other in services {
            args.extend(["--add-host".into(), format!("{}.{NAMESPACE}:127.0.0.1", other.name)]);
        }
        for (key, value) in &service.env {
            args.extend(["--env".into(), key.clone()]);
            // The database's CA file, at the same path inside (a public certificate).
            if key == DATABASE_SSL_ROOT_CERT.name() {
                args.extend(["--volume".into(), format!("{value}:{value}:ro")]);
            }
            // The trail's anchors: appended to from inside, kept outside. Podman gives
            // the folder to the container's user (`U`); with Docker the folder lets any
            // user add a file of its own and touch no other's (1733, as /tmp).
            if key == AUDIT_ANCHORS.name()
                && let Some(folder) = value.strip_prefix("file:").and_then(|f| Path::new(f).parent())
            {
                let owner = match self.kind {
                    EngineKind::Podman => ",U",
                    EngineKind::Docker => {
                        use std::os::unix::fs::PermissionsExt;
                        let _ = std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o1733));
                        ""
                    }
                };
                let folder = folder.display();
                args.extend(["--volume".into(), format!("{folder}:{folder}:rw{owner}")]);
            }
        }
        args.push(service.image.clone());
        let mut env = service.env.clone();
        env.extend(self.env());
        ProcessSpec::new(service.name.clone(), self.program.clone(), args, env)
    }
}

/// The configuration of a Docker Distribution registry (`docker-registry serve`)
/// listening on `addr` with its storage in `storage`.
pub fn registry_config(addr: &str, storage: &Path) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
        storage.display()
    )
}

/// A container name unique to this data folder and service, so that two systems on
/// one machine do not collide.
pub fn container_name(data_dir: &Path, service: &str) -> String {
    let hash =
        data_dir.to_string_lossy().bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("pulsetrack-{hash:08x}-{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_command_passes_values_by_environment_not_arguments() {
        let engine = Engine { program: "/usr/bin/podman".into(), kind: EngineKind::Podman, settings: None };
        let service = LocalService {
            name: "patient-service".into(),
            env: vec![("DATABASE_PASSWORD".into(), "s3cret".into()), ("PORT".into(), "4000".into())],
            ports: vec![(4000, 4000)],
            http_port: 4000,
            depends_on: vec![],
            database: None,
            kafka: false,
            image: "127.0.0.1:5000/pulsetrack/patient-service@sha256:00".into(),
            health_check: None,
        };
        let spec = engine.run_spec(&service, "pt-patient", std::slice::from_ref(&service));
        assert!(!spec.args.iter().any(|a| a.contains("s3cret")), "{:?}", spec.args);
        assert!(spec.args.windows(2).any(|w| w == ["--env", "DATABASE_PASSWORD"]));
        assert!(spec.args.windows(2).any(|w| w == ["--add-host", "patient-service.pulsetrack.local:127.0.0.1"]));
        assert_eq!(spec.args.last().map(String::as_str), Some(service.image.as_str()));
        assert!(spec.env.contains(&("DATABASE_PASSWORD".into(), "s3cret".into())));
        assert_ne!(container_name(Path::new("/a"), "x"), container_name(Path::new("/b"), "x"));
    }

    #[test]
    fn chosen_podman_settings_reach_every_engine_command() {
        let settings = PathBuf::from("/data/containers.conf");
        let engine =
            Engine { program: "/usr/bin/podman".into(), kind: EngineKind::Podman, settings: Some(settings.clone()) };
        let conf = |env: &[(String, String)]| {
            env.iter().filter(|(k, _)| k == CONTAINERS_CONF).map(|(_, v)| v.clone()).collect::<Vec<_>>()
        };
        assert_eq!(conf(&engine.env()), [settings.display().to_string()]);
        let command = engine.command();
        let passed: Vec<_> = command.as_std().get_envs().filter(|(k, _)| *k == CONTAINERS_CONF).collect();
        assert_eq!(passed, [(std::ffi::OsStr::new(CONTAINERS_CONF), Some(settings.as_os_str()))]);
        assert!(PODMAN_SETTINGS.contains("runtime = \"runc\""));
    }
}
