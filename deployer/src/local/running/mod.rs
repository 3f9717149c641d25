//! What `up` started, as it starts it: the supervised processes, the private cluster,
//! the containers and their health checks, and the state file that records them; and
//! the one teardown, which stops them all in reverse.

mod backing;
mod images;
mod services;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::bail;
use pulsetrack_stacks::settings::PULSETRACK_ADMIN_EMAIL;
use serde_json::Value;
use tokio::{signal::unix::Signal, sync::mpsc};

use super::{
    containers::Engine,
    net::port_free,
    options::UpOptions,
    plan::{self, Endpoints, LocalService},
    postgres::{self, PrivateCluster, Server},
    state::{ProcessState, State, remove_state, write_state},
    supervisor::{Event, Printer, ProcessSpec, Supervised, Supervision, postmaster::POSTGRES},
};

/// auth-service's JWT signing secret in the data folder (mode 0600).
pub const JWT_SIGNING_SECRET_FILE: &str = "jwt-signing-secret";

/// The secret auth-service derives its TOTP secrets' encryption key from, in the data
/// folder (mode 0600).
pub const MFA_ENCRYPTION_KEY_FILE: &str = "mfa-encryption-key";

/// The secret patient-service and billing-service derive the key of their gRPC
/// credentials from, in the data folder (mode 0600).
pub const BILLING_GRPC_SECRET_FILE: &str = "billing-grpc-secret";

/// The secret api-gateway and auth-service derive the key of the gateway's refusal
/// reports from, in the data folder (mode 0600).
pub const GATEWAY_AUDIT_SECRET_FILE: &str = "gateway-audit-secret";

/// Each audited service's `AUDIT_KEY`, in the data folder (mode 0600): `audit-key-<service>`.
pub fn audit_key_file(service: &str) -> String {
    format!("audit-key-{service}")
}

/// The folder of the audit trails' anchors (`<service>.jsonl`, appended to), in the
/// data folder.
pub const AUDIT_ANCHORS_DIR: &str = "audit-anchors";

/// What `up` started (stopped in reverse), how it starts more, and the state file's
/// contents, filled in as things start.
pub(super) struct Running {
    processes: Vec<Supervised>,
    cluster: Option<PrivateCluster>,
    /// With `--containers`: the engine, and each service's container name.
    engine: Option<Engine>,
    containers: BTreeMap<String, String>,
    health_checks: Vec<tokio::task::JoinHandle<()>>,
    supervision: Supervision,
    state: State,
    /// Where the state file is written, from the first process on.
    data_dir: PathBuf,
    /// The private tansu's database, where each Kafka service's login is written
    /// (`None`: the given brokers, or none started yet).
    broker_logins: Option<PathBuf>,
}

impl Running {
    pub(super) fn new(engine: Option<Engine>, supervision: Supervision, data_dir: &Path) -> Self {
        let state = State {
            pid: std::process::id(),
            gateway_url: String::new(),
            postgres: String::new(),
            postgres_data: None,
            postgres_pid: None,
            kafka_brokers: String::new(),
            processes: BTreeMap::new(),
            engine: engine.clone(),
            admin_email: None,
        };
        Self {
            processes: Vec::new(),
            cluster: None,
            engine,
            containers: BTreeMap::new(),
            health_checks: Vec::new(),
            supervision,
            state,
            data_dir: data_dir.to_path_buf(),
            broker_logins: None,
        }
    }

    pub(super) fn say(&self, line: String) {
        self.supervision.printer.line("up", 7, &line);
    }

    pub(super) fn state(&self) -> &State {
        &self.state
    }

    pub(super) fn save_state(&self) {
        write_state(&self.data_dir, &self.state);
    }

    pub(super) fn printer(&self) -> Printer {
        self.supervision.printer.clone()
    }

    /// Keeps the state file in step with the supervisors until Ctrl-C or SIGTERM.
    pub(super) async fn run_until_stopped(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<Event>,
        sigterm: &mut Signal,
    ) {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => { self.say("Ctrl-C: stopping".into()); break; }
                _ = sigterm.recv() => { self.say("SIGTERM: stopping".into()); break; }
                Some(event) = events.recv() => {
                    self.record(&event);
                    self.save_state();
                }
            }
        }
    }

    /// Supervises `spec` and records it in the state as `name`.
    fn supervise(&mut self, spec: ProcessSpec, index: usize) -> &Supervised {
        let supervised = Supervised::start(spec, index, &self.supervision);
        self.processes.push(supervised);
        &self.processes[self.processes.len() - 1]
    }

    /// Records a started process; the state file is kept current from the first one on,
    /// so that `down` finds what a start-up left even if `up` is killed during it.
    fn track(&mut self, name: &str, process: ProcessState) {
        self.state.processes.insert(name.into(), process);
        write_state(&self.data_dir, &self.state);
    }

    /// Keeps the state in step with what the supervisors report, and says it.
    fn record(&mut self, event: &Event) {
        let line = match event {
            Event::Started { name, pid } if name == POSTGRES => {
                self.state.postgres_pid = Some(*pid);
                format!("{name} started (pid {pid})")
            }
            Event::Started { name, pid } => {
                let Some(p) = self.state.processes.get_mut(name) else { return };
                p.pid = Some(*pid);
                if p.restarts == 0 {
                    return;
                }
                format!("{name} started (pid {pid})")
            }
            Event::Exited { name, status, uptime, restart_in, restarts } => {
                if let Some(p) = self.state.processes.get_mut(name) {
                    p.pid = None;
                    p.restarts = *restarts;
                }
                format!(
                    "{name} exited ({status}) after {:.1}s; restarting in {}s (restart #{restarts})",
                    uptime.as_secs_f64(),
                    restart_in.as_secs()
                )
            }
            Event::SpawnFailed { name, error, restart_in } => {
                format!("{name} could not start: {error}; retrying in {}s", restart_in.as_secs())
            }
        };
        self.say(line);
    }

    /// Starts Postgres, the broker, (with `--containers`) the registry and the images,
    /// then every service in dependency order, each after the one before is ready.
    pub(super) async fn start_all(&mut self, options: &UpOptions, tansu: Option<PathBuf>) -> anyhow::Result<()> {
        let server = self.start_postgres(options).await?;
        let kafka_brokers = self.start_broker(options, tansu).await?;
        let admin_password = match &options.admin_password {
            Some(p) => p.clone(),
            None => postgres::secret_file(&self.data_dir.join("admin-password"))?,
        };
        let images = match &options.containers {
            Some(containers) => self.publish_images(options, containers, &kafka_brokers).await?,
            None => BTreeMap::new(),
        };
        let template = plan::local_template(&kafka_brokers, images)?;
        let endpoints = self.endpoints(&server, &template, kafka_brokers, admin_password, options)?;
        let services = plan::plan(&template, &endpoints)?;
        let busy: Vec<u16> =
            services.iter().flat_map(|s| s.ports.iter().map(|p| p.1)).filter(|p| !port_free(*p)).collect();
        if !busy.is_empty() {
            bail!(
                "port(s) {busy:?} are in use (another PulseTrack? `deployer down` stops one started by up; \
                 --port-offset N or --port P move this one)"
            );
        }
        for (index, service) in services.iter().enumerate() {
            self.start_service(index, service, &services, options).await?;
        }
        if let Some(bin) = &options.prometheus {
            self.start_prometheus(bin, &services, options).await?;
        }
        self.state.gateway_url =
            services.iter().find(|s| s.name == "api-gateway").map(LocalService::url).unwrap_or_default();
        self.state.admin_email = services
            .iter()
            .flat_map(|s| &s.env)
            .find(|(k, _)| k == PULSETRACK_ADMIN_EMAIL.name())
            .map(|(_, v)| v.clone());
        self.state.postgres_pid = self.cluster.as_ref().and_then(PrivateCluster::pid);
        Ok(())
    }

    /// Where the services of `template` find everything they use: the database roles'
    /// passwords, TLS to Postgres, the broker, and the generated secrets (in the data
    /// folder, 0600).
    fn endpoints(
        &self,
        server: &Server,
        template: &Value,
        kafka_brokers: String,
        admin_password: String,
        options: &UpOptions,
    ) -> anyhow::Result<Endpoints> {
        // As on AWS, each service serves as its own role, which it creates with the
        // master credentials (here: the server's user); their passwords stay in the data folder.
        let mut role_passwords = BTreeMap::new();
        for role in plan::database_roles(template)? {
            let password = postgres::role_password(server, &role, &self.data_dir.join(format!("{role}-password")))?;
            role_passwords.insert(role, password);
        }
        // As on AWS, verify-full: the private cluster's certificate is checked against the
        // CA made for it (the stack's RDS bundle does not sign it). A given server is
        // used with TLS if it offers it, unchecked (`prefer`): its CA is not known here.
        let (postgres_ssl_mode, postgres_root_cert) = match &self.cluster {
            Some(cluster) => ("verify-full", Some(cluster.ca_file().display().to_string())),
            None => ("prefer", None),
        };
        self.say(format!(
            "services connect to Postgres with sslmode={postgres_ssl_mode}{}, each as its own role: {}",
            postgres_root_cert.as_ref().map(|ca| format!(" (CA {ca})")).unwrap_or_default(),
            role_passwords.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
        // As the stack's generated secrets: 64 characters each, kept so that tokens and
        // enrolled second factors outlive a restart (and a service restarted alone
        // still agrees with the other on its gRPC credentials).
        let secret = |file: &str| postgres::secret_file_of_length(&self.data_dir.join(file), 64);
        let jwt_signing_secret = secret(JWT_SIGNING_SECRET_FILE)?;
        let mfa_encryption_key = secret(MFA_ENCRYPTION_KEY_FILE)?;
        let billing_grpc_secret = secret(BILLING_GRPC_SECRET_FILE)?;
        let gateway_audit_secret = secret(GATEWAY_AUDIT_SECRET_FILE)?;
        // Each trail's key, and its anchors: kept apart from the databases, as the
        // stack keeps them in Secrets Manager and S3.
        let audit_keys = plan::audited_services(template)?
            .into_iter()
            .map(|service| Ok((service.clone(), secret(&audit_key_file(&service))?)))
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        let audit_anchors = self.data_dir.join(AUDIT_ANCHORS_DIR);
        std::fs::create_dir_all(&audit_anchors)?;
        std::fs::set_permissions(&audit_anchors, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        Ok(Endpoints {
            bind_host: "127.0.0.1".into(),
            postgres_host: server.host.clone(),
            postgres_port: server.port,
            postgres_user: server.user.clone(),
            postgres_password: server.password.clone(),
            postgres_ssl_mode: postgres_ssl_mode.into(),
            postgres_root_cert,
            role_passwords,
            kafka_brokers,
            admin_password,
            jwt_signing_secret,
            mfa_encryption_key,
            billing_grpc_secret,
            gateway_audit_secret,
            audit_keys,
            audit_anchors,
            port_offset: options.port_offset,
            gateway_port: options.gateway_port,
            keep_service_names: options.containers.is_some(),
        })
    }

    /// Stops in reverse start order. A process that ended by itself meanwhile (it did
    /// not wait to be asked) is reported from `events`.
    async fn stop(mut self, events: &mut mpsc::UnboundedReceiver<Event>) {
        for check in self.health_checks.drain(..) {
            check.abort();
        }
        while let Some(process) = self.processes.pop() {
            let name = process.name.clone();
            process.stop().await;
            if let (Some(engine), Some(container)) = (&self.engine, self.containers.get(&name)) {
                // The client may have been killed before its container stopped.
                engine.remove(container).await;
            }
            self.say(format!("stopped {name}"));
        }
        while let Ok(event) = events.try_recv() {
            if let Event::Exited { name, status, .. } = event {
                self.say(format!("{name} exited ({status}) before it was asked to stop"));
            }
        }
        if let Some(cluster) = self.cluster.take() {
            match cluster.stop().await {
                Ok(()) => self.say("stopped postgres".into()),
                Err(e) => self.say(format!("postgres: {e:#}")),
            }
        }
    }

    /// `up`'s teardown, the same after a failed start-up as on Ctrl-C or SIGTERM: stops
    /// what runs, removes the state file (nothing is left for `down`), then ends the
    /// guard, which has nothing left to do.
    pub(super) async fn shut_down(self, events: &mut mpsc::UnboundedReceiver<Event>, mut guard: std::process::Child) {
        let data_dir = self.data_dir.clone();
        self.stop(events).await;
        remove_state(&data_dir);
        let _ = guard.kill();
        let _ = guard.wait();
    }
}
