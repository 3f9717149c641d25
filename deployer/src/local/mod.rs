//! `deployer up`: the stack model run on one machine. Every Fargate service becomes a
//! process of the workspace binary of the same name, every RDS instance a database on
//! one local Postgres, MSK a local tansu broker, the ALB's :4004 listener the gateway
//! on 127.0.0.1:4004. `deployer down` stops it; `deployer status --local` shows it.

pub mod containers;
pub mod guard;
pub mod plan;
pub mod postgres;
pub mod prometheus;
pub mod supervisor;
pub mod tansu_db;
pub mod top;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use pulsetrack_stacks::{
    ecs::HealthCheck,
    settings::{KAFKA_TOPIC_PARTITIONS, LOG_FORMAT, PULSETRACK_ADMIN_EMAIL, PULSETRACK_ADMIN_PASSWORD, RUST_LOG},
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{
    images::registry::Registry,
    publish::{ImageOptions, explicit_registry, publish},
};

use self::{
    containers::{Engine, container_name},
    plan::{Endpoints, LocalService},
    postgres::{PrivateCluster, Server},
    supervisor::{Backoff, Event, Printer, ProcessSpec, Supervised, Supervision},
};

/// What `up` was asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Data folder: the private Postgres cluster, generated secrets, the state file.
    pub data_dir: PathBuf,
    /// Where the service binaries are (the deployer's own folder by default).
    pub bin_dir: PathBuf,
    /// An existing Postgres (`DATABASE_URL`) instead of a private cluster.
    pub database_url: Option<String>,
    /// An existing Kafka-protocol broker (`KAFKA_BROKERS`) instead of a private tansu.
    pub kafka_brokers: Option<String>,
    pub tansu: Option<PathBuf>,
    pub postgres_bin: Option<PathBuf>,
    pub gateway_port: Option<u16>,
    pub port_offset: u16,
    pub ready_timeout: Duration,
    pub log_format: String,
    pub rust_log: Option<String>,
    pub admin_password: Option<String>,
    /// Run the task definitions as containers from pushed images instead of processes.
    pub containers: Option<ContainerOptions>,
    /// Also run Prometheus (this binary) scraping every service.
    pub prometheus: Option<PathBuf>,
}

/// How `up --containers` gets and runs the images.
#[derive(Debug, Clone)]
pub struct ContainerOptions {
    /// podman or docker (default: whichever is on PATH, podman first).
    pub engine: Option<PathBuf>,
    /// Push to this registry (`host:port/path`) instead of a private one in the data folder.
    pub registry: Option<String>,
    /// The base root filesystem and the image layout (binaries come from `bin_dir`).
    pub base: PathBuf,
    pub store: PathBuf,
}

/// The private broker's SQLite database, in the data folder.
const TANSU_DB: &str = "tansu.db";
/// auth-service's JWT signing secret in the data folder (mode 0600).
pub const JWT_SIGNING_SECRET_FILE: &str = "jwt-signing-secret";

/// The private Postgres, in events and the state.
const POSTGRES: &str = "postgres";

/// Partitions of a topic a service creates under `up` (unless its task sets
/// `KAFKA_TOPIC_PARTITIONS`): one machine runs one analytics consumer, and each
/// partition costs the broker a fixed amount in every produce and fetch request (tansu
/// reads and updates each one's watermarks). 60 s of creates at 100 clients: tansu 0.105
/// -> 0.091 ms of CPU per create, 3,622 -> 3,834 creates/s, p99 52.5 -> 49.3 ms
/// (bench/ISSUE17.md). The stack's tasks keep the services' default (3), so that ECS
/// can run consumers side by side.
const LOCAL_TOPIC_PARTITIONS: &str = "1";

/// Written to `<data>/up.json` while `up` runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub pid: u32,
    pub gateway_url: String,
    pub postgres: String,
    /// The private cluster's data folder, when `up` runs one.
    pub postgres_data: Option<PathBuf>,
    pub postgres_pid: Option<u32>,
    pub kafka_brokers: String,
    pub processes: BTreeMap<String, ProcessState>,
    /// The engine the services run in, with `--containers`.
    #[serde(default)]
    pub engine: Option<Engine>,
    /// The seeded ADMIN's email, as auth-service's task definition gives it.
    #[serde(default)]
    pub admin_email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessState {
    pub pid: Option<u32>,
    pub url: Option<String>,
    pub ports: Vec<u16>,
    pub restarts: u32,
    pub binary: PathBuf,
    /// With `--containers`: the container's name and its image (by digest).
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// The container's main process (what PID and RSS show for a container).
    #[serde(default)]
    pub container_pid: Option<u32>,
}

impl ProcessState {
    /// A process (not a container), not restarted yet.
    fn process(pid: Option<u32>, url: Option<String>, ports: Vec<u16>, binary: PathBuf) -> Self {
        Self { pid, url, ports, restarts: 0, binary, container: None, image: None, container_pid: None }
    }
}

pub fn state_file(data_dir: &Path) -> PathBuf {
    data_dir.join("up.json")
}

pub fn read_state(data_dir: &Path) -> Option<State> {
    serde_json::from_str(&std::fs::read_to_string(state_file(data_dir)).ok()?).ok()
}

fn write_state(data_dir: &Path, state: &State) {
    // Written aside and renamed into place: a reader (`status --local`, `down`, a test)
    // never sees a half-written file.
    if let Ok(text) = serde_json::to_string_pretty(state) {
        let path = state_file(data_dir);
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, text + "\n").is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Whether `pid` still runs `binary` (a recorded pid may have been reused).
fn runs(pid: u32, binary: &Path) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary)
}

/// The first file called `name` in the folders of PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Finds tansu: `--tansu`, `TANSU_BIN`, PATH, then the cache `scripts/install-tansu.sh` fills.
pub fn find_tansu(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
    candidates.extend(std::env::var_os("TANSU_BIN").map(PathBuf::from));
    candidates.extend(on_path("tansu"));
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/pulsetrack/tools/bin/tansu"));
    }
    candidates.into_iter().find(|p| p.is_file()).context(
        "the tansu broker was not found: run scripts/install-tansu.sh (builds it once), pass --tansu PATH, \
         or give an existing broker with KAFKA_BROKERS",
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Waits until a TCP connection to `addr` succeeds.
pub async fn wait_tcp(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("nothing listens on {addr} after {}s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_ready(url: &str, supervised: &Supervised, timeout: Duration) -> anyhow::Result<Duration> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let started = Instant::now();
    loop {
        if supervised.pid().is_some()
            && let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= timeout {
            bail!("{} was not ready at {url} after {}s", supervised.name, timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What `up` started (stopped in reverse), how it starts more, and the state file's
/// contents, filled in as things start.
struct Running {
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
}

impl Running {
    fn new(engine: Option<Engine>, supervision: Supervision, data_dir: &Path) -> Self {
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
        }
    }

    fn say(&self, line: String) {
        self.supervision.printer.line("up", 7, &line);
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
    async fn start_all(&mut self, options: &UpOptions, tansu: Option<PathBuf>) -> anyhow::Result<()> {
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
        // As on AWS, each service serves as its own role, which it creates with the
        // master credentials (here: the server's user); their passwords stay in the data folder.
        let mut role_passwords = BTreeMap::new();
        for role in plan::database_roles(&template)? {
            let password = postgres::role_password(&server, &role, &self.data_dir.join(format!("{role}-password")))?;
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
        // As the stack's generated secret: 64 characters, kept so tokens outlive a restart.
        let jwt_signing_secret = postgres::secret_file_of_length(&self.data_dir.join(JWT_SIGNING_SECRET_FILE), 64)?;
        let endpoints = Endpoints {
            bind_host: "127.0.0.1".into(),
            postgres_host: server.host.clone(),
            postgres_port: server.port,
            postgres_user: server.user.clone(),
            postgres_password: server.password.clone(),
            postgres_ssl_mode: postgres_ssl_mode.into(),
            postgres_root_cert,
            role_passwords,
            kafka_brokers: kafka_brokers.clone(),
            admin_password,
            jwt_signing_secret,
            port_offset: options.port_offset,
            gateway_port: options.gateway_port,
            keep_service_names: options.containers.is_some(),
        };
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

    /// Prometheus, scraping every service (`--prometheus`), supervised like the rest.
    async fn start_prometheus(
        &mut self,
        bin: &Path,
        services: &[LocalService],
        options: &UpOptions,
    ) -> anyhow::Result<()> {
        let dir = self.data_dir.join("prometheus");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let targets: Vec<(String, String)> =
            services.iter().map(|s| (s.name.clone(), format!("127.0.0.1:{}", s.http_port))).collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, prometheus::config(&targets))
            .with_context(|| format!("cannot write {}", config.display()))?;
        let port = prometheus::PORT + options.port_offset;
        let spec = ProcessSpec {
            cwd: Some(dir.clone()),
            ..ProcessSpec::new("prometheus", bin.to_path_buf(), prometheus::args(&dir, port), vec![])
        };
        self.supervise(spec, 7);
        let addr = format!("127.0.0.1:{port}");
        wait_tcp(&addr, options.ready_timeout).await.context("prometheus did not start")?;
        let pid = self.processes.last().and_then(Supervised::pid);
        self.say(format!(
            "prometheus ready: http://{addr} (scraping {} services; config {})",
            targets.len(),
            config.display()
        ));
        self.track(
            "prometheus",
            ProcessState::process(pid, Some(format!("http://{addr}")), vec![port], bin.to_path_buf()),
        );
        Ok(())
    }

    /// The given server, or the private cluster.
    async fn start_postgres(&mut self, options: &UpOptions) -> anyhow::Result<Server> {
        let data_dir = self.data_dir.clone();
        let server = match &options.database_url {
            Some(url) => {
                let server = Server::from_url(url)?;
                wait_tcp(&format!("{}:{}", server.host, server.port), Duration::from_secs(5))
                    .await
                    .with_context(|| format!("DATABASE_URL {}", server.display()))?;
                self.say(format!("using Postgres at {}", server.display()));
                server
            }
            None => {
                let bin = postgres::find_bin_dir(options.postgres_bin.as_deref())?;
                let cluster = PrivateCluster::prepare(&data_dir, bin, free_port()?).await?;
                let (server, data, log) = (cluster.server.clone(), cluster.data.clone(), cluster.log.clone());
                // Recorded before it starts: an interrupted start-up stops it too.
                self.state.postgres = server.display();
                self.state.postgres_data = Some(data.clone());
                write_state(&self.data_dir, &self.state);
                let t = Instant::now();
                let cluster = self.cluster.insert(cluster);
                cluster.start().await?;
                let watch = watch_postgres(cluster.clone(), self.supervision.clone());
                self.health_checks.push(watch);
                self.say(format!(
                    "postgres ready in {:.1}s: {} (data {}, log {})",
                    t.elapsed().as_secs_f64(),
                    server.display(),
                    data.display(),
                    log.display()
                ));
                server
            }
        };
        self.state.postgres = server.display();
        Ok(server)
    }

    /// The given brokers, or a private tansu storing topics, messages, producer state
    /// and committed offsets in SQLite in the data folder (`tansu.db`), so that they
    /// survive a restart of the broker or of `up`.
    async fn start_broker(&mut self, options: &UpOptions, tansu: Option<PathBuf>) -> anyhow::Result<String> {
        let brokers = match (&options.kafka_brokers, tansu) {
            (Some(brokers), _) => {
                self.say(format!("using Kafka brokers {brokers}"));
                brokers.clone()
            }
            (None, Some(tansu)) => {
                let addr = format!("127.0.0.1:{}", free_port()?);
                let url = format!("tcp://{addr}");
                // tansu reads a `sqlite://` path relative to its working directory.
                let args = ["broker", "--listener-url", &url, "--advertised-listener-url", &url]
                    .into_iter()
                    .chain(["--storage-engine", &format!("sqlite://{TANSU_DB}")])
                    .map(String::from)
                    .collect();
                let env = vec![("RUST_LOG".into(), "warn".into())];
                let spec = ProcessSpec {
                    cwd: Some(self.data_dir.clone()),
                    // A panicked storage task leaves tansu serving nothing but errors
                    // (seen: "more or less than one row" on a fetch racing a topic
                    // deletion): killed and restarted on its durable storage instead.
                    fatal_line: Some("panicked at"),
                    ..ProcessSpec::new("tansu", tansu.clone(), args, env)
                };
                self.supervise(spec, 6);
                wait_tcp(&addr, options.ready_timeout).await.context("tansu did not start")?;
                self.index_tansu_headers().await;
                let pid = self.processes.last().and_then(Supervised::pid);
                self.say(format!("tansu ready: {addr}"));
                self.track("tansu", ProcessState::process(pid, Some(addr.clone()), vec![], tansu));
                addr
            }
            (None, None) => bail!("no Kafka broker: give KAFKA_BROKERS or install tansu"),
        };
        self.state.kafka_brokers = brokers.clone();
        Ok(brokers)
    }

    /// Adds the index tansu's schema lacks (`tansu_db`), once tansu has made its schema.
    /// Without it the broker still works but slows down as messages accumulate: said,
    /// not fatal.
    async fn index_tansu_headers(&mut self) {
        let path = self.data_dir.join(TANSU_DB);
        let mut outcome: Result<bool, String> = Ok(false);
        for _ in 0..50 {
            let path = path.clone();
            outcome = tokio::task::spawn_blocking(move || tansu_db::index_headers(&path))
                .await
                .map_err(|e| e.to_string())
                .and_then(|indexed| indexed.map_err(|e| e.to_string()));
            if !matches!(outcome, Ok(false)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match outcome {
            Ok(true) => {}
            Ok(false) => self.say(format!(
                "WARNING: {} has no `header` table to index (another tansu version?): the broker will slow down as \
                 messages accumulate",
                path.display()
            )),
            Err(e) => self.say(format!(
                "WARNING: could not index tansu's headers in {} ({e}): the broker will slow down as messages accumulate",
                path.display()
            )),
        }
    }

    /// With `--containers`: the images of the task definitions, built from the same
    /// binaries, pushed, and pulled; returns them by service, named by digest.
    async fn publish_images(
        &mut self,
        options: &UpOptions,
        containers: &ContainerOptions,
        kafka_brokers: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let engine = self.engine.clone().context("--containers without a container engine")?;
        let registry = self.start_registry(containers).await?;
        let template = plan::local_template(kafka_brokers, BTreeMap::new())?;
        let image_options = ImageOptions {
            bin_dir: options.bin_dir.clone(),
            base: containers.base.clone(),
            store: containers.store.clone(),
        };
        let published = publish(&template, &image_options, Some(&registry)).await?;
        self.say(format!(
            "images built in {:.1}s and pushed to {} in {:.1}s",
            published.build_time.as_secs_f64(),
            registry.at.host,
            published.push_time.as_secs_f64()
        ));
        let t = Instant::now();
        for pushed in published.pushed.values() {
            engine.pull(&pushed.reference, registry.at.is_loopback()).await?;
        }
        self.say(format!("images pulled by {} in {:.1}s", engine.program.display(), t.elapsed().as_secs_f64()));
        Ok(published.references())
    }

    /// The registry `up --containers` pushes to: the one given, or a private Docker
    /// Distribution registry on a free loopback port with its storage in the data folder.
    async fn start_registry(&mut self, options: &ContainerOptions) -> anyhow::Result<Registry> {
        if let Some(at) = &options.registry {
            self.say(format!("using the image registry {at}"));
            return explicit_registry(at);
        }
        let program = on_path("docker-registry").context(
            "no docker-registry on PATH for the private image registry: scripts/ensure-containers.sh installs it, \
             or pass --registry host:port/path",
        )?;
        let root = self.data_dir.join("registry");
        std::fs::create_dir_all(root.join("data"))?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let config = root.join("config.yml");
        std::fs::write(&config, containers::registry_config(&addr, &root.join("data")))?;
        let log = root.join("registry.log");
        let spec = ProcessSpec {
            // It logs every HEAD of a blob it lacks (how each push begins) as an error.
            log_file: Some(log.clone()),
            ..ProcessSpec::new("registry", program.clone(), vec!["serve".into(), config.display().to_string()], vec![])
        };
        self.supervise(spec, 5);
        wait_tcp(&addr, Duration::from_secs(10)).await.context("the image registry did not start")?;
        let pid = self.processes.last().and_then(Supervised::pid);
        self.say(format!(
            "image registry ready: {addr} (storage {}, log {})",
            root.join("data").display(),
            log.display()
        ));
        self.track("registry", ProcessState::process(pid, Some(addr.clone()), vec![], program));
        explicit_registry(&format!("{addr}/pulsetrack"))
    }

    /// Starts one service (a process, or with `--containers` a container) and waits
    /// until it is ready.
    async fn start_service(
        &mut self,
        index: usize,
        service: &LocalService,
        services: &[LocalService],
        options: &UpOptions,
    ) -> anyhow::Result<()> {
        let mut env = service.env.clone();
        for (key, value) in [(LOG_FORMAT, Some(options.log_format.clone())), (RUST_LOG, options.rust_log.clone())] {
            if let Some(value) = value {
                env.retain(|(k, _)| k != key.name());
                env.push((key.name().into(), value));
            }
        }
        if service.kafka && !env.iter().any(|(k, _)| k == KAFKA_TOPIC_PARTITIONS.name()) {
            env.push((KAFKA_TOPIC_PARTITIONS.name().into(), LOCAL_TOPIC_PARTITIONS.into()));
        }
        if !self.supervision.printer.color() {
            // Plain lines when `up`'s output is not a terminal (tracing honours NO_COLOR).
            env.push(("NO_COLOR".into(), "1".into()));
        }
        let binary = options.bin_dir.join(&service.name);
        let (spec, container) = match &self.engine {
            Some(engine) => {
                let container = container_name(&self.data_dir, &service.name);
                // A container left by a killed `up` would hold the name.
                engine.remove(&container).await;
                let task = LocalService { env, ..service.clone() };
                (engine.run_spec(&task, &container, services), Some(container))
            }
            None => {
                let program = binary.clone();
                (ProcessSpec::new(service.name.clone(), program, vec![], env), None)
            }
        };
        let supervised = self.supervise(spec, index);
        let took = wait_ready(&format!("{}/ready", service.url()), supervised, options.ready_timeout).await?;
        let pid = supervised.pid();
        self.say(format!("{} ready in {:.1}s: {}", service.name, took.as_secs_f64(), service.url()));
        let mut process =
            ProcessState::process(pid, Some(service.url()), service.ports.iter().map(|p| p.1).collect(), binary);
        if let (Some(engine), Some(container)) = (&self.engine, container) {
            if let Some(check) = &service.health_check {
                let printer = self.supervision.printer.clone();
                let monitor =
                    monitor_health(engine.clone(), container.clone(), service.name.clone(), check.clone(), printer);
                self.health_checks.push(monitor);
            }
            process.container_pid = engine.pid(&container).await;
            process.image = Some(service.image.clone());
            self.containers.insert(service.name.clone(), container.clone());
            process.container = Some(container);
        }
        self.track(&service.name, process);
        Ok(())
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
}

/// Runs the system until Ctrl-C or SIGTERM.
pub async fn up(options: UpOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = &options.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    if let Some(state) = read_state(&data_dir)
        && state.pid != std::process::id()
        && alive(state.pid)
    {
        bail!(
            "`deployer up` already runs on {} (pid {}, {}): `deployer down --data-dir {}` stops it",
            data_dir.display(),
            state.pid,
            state.gateway_url,
            data_dir.display()
        );
    }

    // The binaries first: a missing one is a build problem, reported before anything starts.
    let probe = plan::local_template("127.0.0.1:9092", BTreeMap::new())?;
    let names: Vec<String> = pulsetrack_stacks::ecs::Template::read(&probe)
        .context("the local template's task definitions cannot be read")?
        .containers()
        .into_keys()
        .collect();
    let missing: Vec<&String> = names.iter().filter(|n| !options.bin_dir.join(n).is_file()).collect();
    if !missing.is_empty() {
        bail!(
            "{} missing in {}: build them first (`cargo build --release -p {}`) or pass --bin-dir",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            options.bin_dir.display(),
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" -p ")
        );
    }
    let tansu = match &options.kafka_brokers {
        Some(_) => None,
        None => Some(find_tansu(options.tansu.as_deref())?),
    };
    let engine = match &options.containers {
        Some(c) => Some(Engine::find(c.engine.as_deref())?),
        None => None,
    };

    let printer = Printer::new(names.iter().map(String::as_str).chain(["postgres", "tansu", "registry", "up"]));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let supervision =
        Supervision { printer, events: events_tx, backoff: Backoff::default(), grace: Duration::from_secs(10) };
    let mut running = Running::new(engine, supervision, &data_dir);
    // Stops everything if this process is killed before it can.
    let mut guard = guard::spawn(&data_dir)?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Ctrl-C or SIGTERM during the start-up stops what was started so far.
    let start = tokio::select! {
        result = running.start_all(&options, tansu) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted by Ctrl-C")),
        _ = sigterm.recv() => Err(anyhow::anyhow!("interrupted by SIGTERM")),
    };
    if let Err(e) = start {
        running.say(format!("start failed: {e:#}; stopping what was started"));
        running.stop(&mut events).await;
        let _ = std::fs::remove_file(state_file(&data_dir));
        let _ = guard.kill();
        let _ = guard.wait();
        return Err(e);
    }
    write_state(&data_dir, &running.state);
    print_table(&running.state, &options, &data_dir, started.elapsed());

    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { running.say("Ctrl-C: stopping".into()); break; }
            _ = sigterm.recv() => { running.say("SIGTERM: stopping".into()); break; }
            Some(event) = events.recv() => {
                running.record(&event);
                write_state(&data_dir, &running.state);
            }
        }
    }
    let printer = running.supervision.printer.clone();
    running.stop(&mut events).await;
    let _ = std::fs::remove_file(state_file(&data_dir));
    let _ = guard.kill();
    let _ = guard.wait();
    printer.line("up", 7, "stopped");
    Ok(())
}

/// Supervises the private Postgres as the services are: pg_ctl runs the postmaster
/// apart from `up`, so it is watched by pid; when it is gone (killed, crashed) it is
/// started again with the same backoff, and both are reported.
fn watch_postgres(cluster: PrivateCluster, supervision: Supervision) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Supervision { events, backoff, .. } = supervision;
        let (mut delay, mut restarts, mut since) = (None, 0, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let pid = cluster.pid();
            if pid.is_some_and(alive) {
                continue;
            }
            let uptime = since.elapsed();
            let next = backoff.next(delay, uptime);
            delay = Some(next);
            restarts += 1;
            let status = pid.map_or("no postmaster.pid".to_string(), |pid| format!("postmaster {pid} is gone"));
            let _ = events.send(Event::Exited { name: POSTGRES.into(), status, uptime, restart_in: next, restarts });
            let mut wait = next;
            loop {
                tokio::time::sleep(wait).await;
                match cluster.start().await {
                    Ok(()) => break,
                    // Say, the killed postmaster's backends still hold its shared memory.
                    Err(e) => {
                        wait = backoff.next(Some(wait), Duration::ZERO);
                        delay = Some(wait);
                        let error = format!("{e:#}");
                        let _ = events.send(Event::SpawnFailed { name: POSTGRES.into(), error, restart_in: wait });
                    }
                }
            }
            since = Instant::now();
            let _ = events.send(Event::Started { name: POSTGRES.into(), pid: cluster.pid().unwrap_or_default() });
        }
    })
}

/// Runs a container's task-definition health check as ECS does: after the start
/// period, every interval; after `retries` failures in a row the container is stopped,
/// and its supervisor starts a new one.
fn monitor_health(
    engine: Engine,
    container: String,
    service: String,
    check: HealthCheck,
    printer: Printer,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (interval, start) =
            (Duration::from_secs(u64::from(check.interval)), Duration::from_secs(u64::from(check.start_period)));
        tokio::time::sleep(start).await;
        let mut failures = 0;
        loop {
            tokio::time::sleep(interval).await;
            if engine.check(&container, &check).await {
                failures = 0;
                continue;
            }
            failures += 1;
            if failures >= check.retries {
                printer.line("up", 7, &format!("{service} failed its health check {failures} times: replacing it"));
                engine.stop(&container, Duration::from_secs(10)).await;
                failures = 0;
                tokio::time::sleep(start).await;
            }
        }
    })
}

fn print_table(state: &State, options: &UpOptions, data_dir: &Path, took: Duration) {
    println!();
    println!("PulseTrack is up in {:.1}s: {}", took.as_secs_f64(), state.gateway_url);
    print!("{}", render_status(state));
    let admin = state.admin_email.as_deref().unwrap_or("admin");
    let password = if options.admin_password.is_some() {
        PULSETRACK_ADMIN_PASSWORD.to_string()
    } else {
        data_dir.join("admin-password").display().to_string()
    };
    println!("admin: {admin} (password in {password})");
    println!("data: {}   stop: Ctrl-C, or `deployer down` from another shell", data_dir.display());
    println!();
}

/// The status table: one row per process, with pid, state and resident memory.
pub fn render_status(state: &State) -> String {
    let mut out = format!("{:<18} {:>8} {:>9} {:>9}  {}\n", "PROCESS", "PID", "RSS", "RESTARTS", "ENDPOINT");
    let rss = |pid: Option<u32>| {
        pid.and_then(supervisor::rss_kib).map_or_else(|| "-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    };
    let pid_text = |pid: Option<u32>| pid.map_or_else(|| "down".to_string(), |p| p.to_string());
    if state.postgres_data.is_some() {
        out.push_str(&format!(
            "{:<18} {:>8} {:>9} {:>9}  {}\n",
            "postgres",
            pid_text(state.postgres_pid),
            rss(state.postgres_pid),
            "-",
            state.postgres
        ));
    }
    let mut rows: Vec<(&String, &ProcessState)> = state.processes.iter().collect();
    // tansu first, the gateway last, the rest by port.
    rows.sort_by_key(|(name, p)| (name.as_str() != "tansu", name.as_str() == "api-gateway", p.ports.clone()));
    for (name, process) in rows {
        let pid = process.container_pid.or(process.pid).filter(|p| alive(*p));
        let mut endpoint = process.url.clone().unwrap_or_default();
        if process.ports.len() > 1 {
            let extra: Vec<String> = process.ports[1..].iter().map(|p| format!("grpc :{p}")).collect();
            endpoint = format!("{endpoint}  {}", extra.join(" "));
        }
        out.push_str(&format!(
            "{:<18} {:>8} {:>9} {:>9}  {}\n",
            name,
            pid_text(pid),
            rss(pid),
            process.restarts,
            endpoint
        ));
    }
    let containers: Vec<(&String, &ProcessState)> =
        state.processes.iter().filter(|(_, p)| p.container.is_some()).collect();
    if let Some(engine) = &state.engine
        && !containers.is_empty()
    {
        out.push_str(&format!("\n{:<18} {}  ({})\n", "CONTAINER", "IMAGE", engine.program.display()));
        for (name, process) in containers {
            out.push_str(&format!(
                "{:<18} {}  {}\n",
                name,
                process.image.as_deref().unwrap_or("-"),
                process.container.as_deref().unwrap_or("-")
            ));
        }
    }
    out
}

/// `deployer status --local`: the state file, with live pids, memory and readiness.
pub async fn status(data_dir: &Path) -> anyhow::Result<String> {
    let Some(mut state) = read_state(data_dir) else {
        bail!("no `deployer up` runs on {} (no {})", data_dir.display(), state_file(data_dir).display());
    };
    if !alive(state.pid) {
        bail!("`deployer up` (pid {}) is gone; `deployer down --data-dir {}` cleans up", state.pid, data_dir.display());
    }
    if let Some(engine) = &state.engine {
        for process in state.processes.values_mut() {
            if let Some(container) = &process.container {
                process.container_pid = engine.pid(container).await;
            }
        }
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let mut lines = format!("PulseTrack (up pid {}): {}\n", state.pid, state.gateway_url);
    for (name, process) in &state.processes {
        if name == "tansu" || name == "registry" || name == "prometheus" {
            continue;
        }
        let ready = match &process.url {
            Some(url) => client.get(format!("{url}/ready")).send().await.is_ok_and(|r| r.status().is_success()),
            None => false,
        };
        if !ready {
            lines.push_str(&format!("  {name}: NOT READY\n"));
        }
    }
    lines.push_str(&render_status(&state));
    if let Some(url) = state.processes.get("patient-service").and_then(|p| p.url.as_ref()) {
        lines.push_str(&outbox_line(&client, url).await);
    }
    Ok(lines)
}

/// patient-service's `/health` details: its outbox, per destination.
#[derive(Debug, Deserialize)]
struct PatientHealth {
    outbox: Option<BTreeMap<String, OutboxCounts>>,
}

#[derive(Debug, Deserialize)]
struct OutboxCounts {
    pending: i64,
    dead: i64,
}

/// `outbox  billing: 0 pending, 0 dead; patient-event: …`, with a warning for dead rows.
async fn outbox_line(client: &reqwest::Client, url: &str) -> String {
    let health = match client.get(format!("{url}/health")).send().await {
        Ok(response) => response.json::<PatientHealth>().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let outbox = match health {
        Ok(PatientHealth { outbox: Some(outbox) }) => outbox,
        Ok(PatientHealth { outbox: None }) => {
            return "\noutbox: unknown (patient-service cannot read its database)\n".into();
        }
        Err(e) => return format!("\noutbox: unknown (patient-service /health: {e})\n"),
    };
    let parts: Vec<String> =
        outbox.iter().map(|(dest, c)| format!("{dest}: {} pending, {} dead", c.pending, c.dead)).collect();
    let mut line = format!("\noutbox: {}\n", parts.join("; "));
    let dead: i64 = outbox.values().map(|c| c.dead).sum();
    if dead > 0 {
        line.push_str(&format!(
            "  {dead} DEAD outbox row(s): never delivered; patient-service logged each at ERROR, and keeps it \
             (with its last error) in the outbox table of its database\n"
        ));
    }
    line
}

/// SIGTERM to each of `pids`, then SIGKILL to those still running after `grace`.
async fn terminate_all(pids: impl Iterator<Item = u32>, grace: Duration) -> anyhow::Result<()> {
    use nix::sys::signal::{Signal, kill};
    let pids: Vec<nix::unistd::Pid> =
        pids.map(|p| i32::try_from(p).map(nix::unistd::Pid::from_raw)).collect::<Result<_, _>>()?;
    for pid in &pids {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|p| alive(p.as_raw().unsigned_abs())) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in pids.iter().filter(|p| alive(p.as_raw().unsigned_abs())) {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    Ok(())
}

/// `deployer down`: asks a running `up` to stop and waits; after a killed `up`, stops
/// what it left (its processes, the private Postgres).
pub async fn down(data_dir: &Path, timeout: Duration) -> anyhow::Result<String> {
    let Some(state) = read_state(data_dir) else {
        return Ok(format!("nothing runs on {}", data_dir.display()));
    };
    if alive(state.pid) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(state.pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        while alive(state.pid) {
            if Instant::now() >= deadline {
                bail!("`deployer up` (pid {}) did not stop within {}s", state.pid, timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return Ok(format!("stopped `deployer up` (pid {})", state.pid));
    }
    let mut stopped = Vec::new();
    if let Some(engine) = &state.engine {
        for (name, process) in &state.processes {
            if let Some(container) = &process.container {
                engine.remove(container).await;
                stopped.push(format!("{name} (container {container})"));
            }
        }
    }
    let left: Vec<(&String, u32)> = state
        .processes
        .iter()
        .filter_map(|(name, p)| Some((name, p.pid.filter(|pid| runs(*pid, &p.binary))?)))
        .collect();
    terminate_all(left.iter().map(|(_, pid)| *pid), timeout).await?;
    stopped.extend(left.iter().map(|(name, _)| name.to_string()));
    if let Some(data) = &state.postgres_data {
        let bin = postgres::find_bin_dir(None)?;
        let root = data.parent().unwrap_or(data_dir);
        let cluster = PrivateCluster::existing(root, bin)?;
        if cluster.is_running().await {
            cluster.stop().await?;
            stopped.push("postgres".into());
        }
    }
    let _ = std::fs::remove_file(state_file(data_dir));
    Ok(format!("`deployer up` (pid {}) was gone; stopped what it left: {}", state.pid, stopped.join(", ")))
}
