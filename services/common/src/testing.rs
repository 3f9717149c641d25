//! Integration-test helpers (feature `testing`): a fresh database per test on the real
//! Postgres, dropped when the test ends, and opt-in test logs (`TEST_LOG=1`).

use sqlx::{Connection, PgConnection};

use crate::{config, db::quote_ident};

/// Server URL for test databases: `TEST_DATABASE_URL`, else local Postgres.
pub fn server_url() -> String {
    config::string_or("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
}

/// A database created for one test; dropped (with its connections) on drop.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `pt_test_<prefix>_<uuid>` and returns it. Panics when Postgres is not
    /// reachable: tests need the real server, there is no fallback.
    pub async fn create(prefix: &str) -> Self {
        let name = format!("pt_test_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let server = server_url();
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("tests need Postgres at {server} (set TEST_DATABASE_URL): {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {}", quote_ident(&name))))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        Self { url: format!("{server}/{name}"), name }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&self.name));
        let server = server_url();
        // Drop runs inside the test's runtime; use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&format!("{server}/postgres")).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Turns on logs for a test run when `TEST_LOG` is set.
pub fn init_test_logs() {
    let logs = config::optional("TEST_LOG").is_some();
    // Spans are kept in memory (exported as each ends), for the tests that follow a trace.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_simple_exporter(SPANS.clone()).build();
    crate::telemetry::install("test", &config::from_env(), provider, logs);
}

/// Every span the services of this test process finished (each test runs in a process
/// of its own under nextest).
static SPANS: std::sync::LazyLock<opentelemetry_sdk::trace::InMemorySpanExporter> =
    std::sync::LazyLock::new(opentelemetry_sdk::trace::InMemorySpanExporter::default);

/// The spans finished so far.
pub fn finished_spans() -> Vec<opentelemetry_sdk::trace::SpanData> {
    SPANS.get_finished_spans().unwrap_or_default()
}

/// A TCP proxy for fault injection (the crates.io test suite's "chaos proxy" idea):
/// clients connect to it, it forwards to a real server; `cut` closes every connection
/// and refuses new ones, as a stopped server would; `restore` listens again on the
/// same port. It runs on a runtime of its own, so that it keeps forwarding while a
/// client library blocks the test's thread (rdkafka's close and flush do).
pub struct ChaosProxy {
    port: u16,
    upstream: std::net::SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    // Dropping the sender (on cut) ends the accept loop and every open connection.
    alive: Option<tokio::sync::watch::Sender<()>>,
}

impl ChaosProxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("chaos-proxy")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("proxy runtime: {e}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("addr: {e}"));
        let mut proxy = Self { port, upstream, runtime: Some(runtime), alive: None };
        proxy.serve(listener);
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        let Some(runtime) = &self.runtime else { return };
        let (alive, watch) = tokio::sync::watch::channel(());
        self.alive = Some(alive);
        let upstream = self.upstream;
        let _ = listener.set_nonblocking(true);
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
            let mut accept_watch = watch.clone();
            loop {
                let (mut client, _) = tokio::select! {
                    _ = accept_watch.changed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(_) => continue,
                    },
                };
                let mut conn_watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    tokio::select! {
                        _ = conn_watch.changed() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
    }

    /// Closes every connection and stops listening (connection refused from now on).
    pub async fn cut(&mut self) {
        self.alive = None;
        // Let the accept loop and the connections observe the drop.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) {
        for _ in 0..100 {
            if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", self.port)) {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("cannot listen on 127.0.0.1:{} again", self.port);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A certificate authority made for one test. It issues services' TLS identities for
/// `localhost` and `127.0.0.1` (the names clients verify): for tests of the services'
/// own TLS ([`TestCa::tls`]) and for the [`TlsTerminator`] in front of a broker.
pub struct TestCa {
    /// The CA certificate, PEM: what a client trusts.
    pub ca_pem: String,
    ca_cert: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

fn rcgen_failed(e: rcgen::Error) -> ! {
    panic!("test CA: {e}")
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| rcgen_failed(e));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("PulseTrack test CA {}", uuid::Uuid::new_v4()));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap_or_else(|e| rcgen_failed(e));
        let ca_cert = ca.self_signed(&ca_key).unwrap_or_else(|e| rcgen_failed(e));
        Self { ca_pem: ca_cert.pem(), ca_cert, ca_key }
    }

    /// A new certificate for `localhost` and `127.0.0.1`, good for a server and a
    /// client, with its key and this CA, as PEM.
    pub fn identity(&self) -> crate::tls::TlsPem {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap_or_else(|e| rcgen_failed(e));
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap_or_else(|e| rcgen_failed(e));
        let cert = params.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap_or_else(|e| rcgen_failed(e));
        crate::tls::TlsPem {
            cert: cert.pem(),
            key: crate::config::Secret::new(key.serialize_pem()),
            ca: self.ca_pem.clone(),
        }
    }

    /// A service's TLS identity signed by this CA ([`TestCa::identity`]).
    pub fn tls(&self, client_auth: crate::settings::TlsClientAuth) -> crate::tls::TlsConfig {
        crate::tls::TlsConfig::from_pem(self.identity(), client_auth)
            .unwrap_or_else(|e| panic!("test TLS identity: {e}"))
    }

    /// Writes the CA certificate into `dir` and returns the file's path.
    pub fn write_ca(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join(format!("ca-{}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, &self.ca_pem).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A TLS terminator (what stunnel does): accepts TLS with a [`TestCa`]'s server
/// certificate and forwards the plain bytes to `upstream`. It counts completed
/// handshakes, so a test can tell that its clients really spoke TLS. It runs on a
/// runtime of its own, as [`ChaosProxy`] does.
pub struct TlsTerminator {
    port: u16,
    handshakes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsTerminator {
    pub fn start(upstream: std::net::SocketAddr, ca: &TestCa) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tls-terminator")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("terminator runtime: {e}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("addr: {e}"));
        let _ = listener.set_nonblocking(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.tls(crate::settings::TlsClientAuth::None).server());
        let handshakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = handshakes.clone();
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(mut client) = acceptor.accept(client).await else { return };
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Self { port, handshakes, runtime: Some(runtime) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where a [`TestBroker`] keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In memory: a restarted broker comes back empty (no topics, offsets or producer state).
    Memory,
    /// SQLite in the broker's own temporary folder: topics, messages, producer state
    /// and committed offsets survive a restart, as with `deployer up`.
    Sqlite,
}

/// A tansu broker (Kafka wire protocol) run as a real process for one test.
///
/// [`TestBroker::start`] puts it behind a [`ChaosProxy`] that it advertises as its
/// address, so a test can take the broker off the network and bring it back with its
/// state intact ([`outage`](Self::outage), [`recover`](Self::recover)).
/// [`TestBroker::start_direct`] lets clients talk to the process itself, so that
/// [`kill9`](Self::kill9) is a real crash and [`restart`](Self::restart) a real
/// restart on the same port. `TANSU_BIN` overrides where the binary is looked for
/// (default: `scripts/install-tansu.sh`'s location).
pub struct TestBroker {
    child: Option<std::process::Child>,
    proxy: Option<ChaosProxy>,
    tls: Option<TlsTerminator>,
    port: u16,
    advertised_port: u16,
    storage: Storage,
    /// `tansu broker --authentication`: every request needs a SASL/SCRAM login.
    authentication: bool,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
}

pub fn tansu_bin() -> std::path::PathBuf {
    match config::optional("TANSU_BIN") {
        Some(path) => path.into(),
        None => {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            std::path::Path::new(&home).join(".cache/pulsetrack/tools/bin/tansu")
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl TestBroker {
    /// Starts a broker with memory storage behind a proxy and waits until it accepts
    /// connections. Panics when tansu is not installed (`scripts/install-tansu.sh`):
    /// there is no fallback.
    pub async fn start() -> Self {
        let port = free_port();
        let proxy = ChaosProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
        Self::launch(port, Some(proxy), Storage::Memory).await
    }

    /// Starts a broker that clients reach directly (no proxy), storing in `storage`.
    pub async fn start_direct(storage: Storage) -> Self {
        Self::launch(free_port(), None, storage).await
    }

    /// Starts a broker (memory storage) that clients reach only over TLS: a
    /// [`TlsTerminator`] with `ca`'s certificate in front of it, advertised by the
    /// broker as its address (as MSK's TLS listener on 9094 is).
    pub async fn start_tls(ca: &TestCa) -> Self {
        let port = free_port();
        let tls = TlsTerminator::start(std::net::SocketAddr::from(([127, 0, 0, 1], port)), ca);
        let advertised_port = tls.port();
        Self::launch_advertised(port, advertised_port, None, Some(tls), Storage::Memory).await
    }

    /// Starts a broker (SQLite storage, reached directly) that answers only clients
    /// that log in with SASL/SCRAM, as `deployer up` runs it. It knows no user: a test
    /// writes the logins into [`Self::database`] (`deployer::local::tansu_scram`).
    pub async fn start_authenticating() -> Self {
        let port = free_port();
        let mut broker = Self::prepare(port, port, None, None, Storage::Sqlite);
        broker.authentication = true;
        broker.spawn_and_wait().await;
        broker
    }

    /// The SQLite database of a broker with [`Storage::Sqlite`].
    pub fn database(&self) -> Option<std::path::PathBuf> {
        (self.storage == Storage::Sqlite).then(|| self.dir.join("tansu.db"))
    }

    /// The TLS terminator of a [`Self::start_tls`] broker.
    pub fn tls(&self) -> Option<&TlsTerminator> {
        self.tls.as_ref()
    }

    async fn launch(port: u16, proxy: Option<ChaosProxy>, storage: Storage) -> Self {
        let advertised_port = proxy.as_ref().map_or(port, ChaosProxy::port);
        Self::launch_advertised(port, advertised_port, proxy, None, storage).await
    }

    async fn launch_advertised(
        port: u16,
        advertised_port: u16,
        proxy: Option<ChaosProxy>,
        tls: Option<TlsTerminator>,
        storage: Storage,
    ) -> Self {
        let mut broker = Self::prepare(port, advertised_port, proxy, tls, storage);
        broker.spawn_and_wait().await;
        broker
    }

    fn prepare(
        port: u16,
        advertised_port: u16,
        proxy: Option<ChaosProxy>,
        tls: Option<TlsTerminator>,
        storage: Storage,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("tansu-test-{port}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let log = dir.join("tansu.log");
        Self { child: None, proxy, tls, port, advertised_port, storage, authentication: false, dir, log }
    }

    async fn spawn_and_wait(&mut self) {
        let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let bin = tansu_bin();
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised_port);
        // tansu reads a `sqlite://` path relative to its working directory.
        let storage = match self.storage {
            Storage::Memory => "memory://tansu/",
            Storage::Sqlite => "sqlite://tansu.db",
        };
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let child = std::process::Command::new(&bin)
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", storage])
            .args(self.authentication.then_some("--authentication"))
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("log file: {e}")))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu at {} (run scripts/install-tansu.sh): {e}", bin.display()));
        self.child = Some(child);
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(upstream).await.is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(std::process::Child::try_wait) {
                panic!("tansu exited ({status}) before listening on {listener}; see {}", self.log.display());
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("tansu did not listen on {listener}; see {}", self.log.display());
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.advertised_port)
    }

    /// The broker becomes unreachable: connections are cut and refused (proxied brokers only).
    pub async fn outage(&mut self) {
        self.proxy.as_mut().expect("a proxied broker (TestBroker::start)").cut().await;
    }

    /// The broker is reachable again, with the topics and offsets it had.
    pub async fn recover(&mut self) {
        self.proxy.as_mut().expect("a proxied broker (TestBroker::start)").restore().await;
    }

    /// Kills the broker process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` is SIGKILL on Unix.
            child.kill().unwrap_or_else(|e| panic!("cannot SIGKILL tansu: {e}"));
            let status = child.wait().unwrap_or_else(|e| panic!("cannot reap tansu: {e}"));
            assert!(!status.success(), "tansu was not killed: {status}");
        }
    }

    /// Starts the broker process again on the same port and storage (memory storage
    /// comes back empty) and waits until it accepts connections.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn_and_wait().await;
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("tansu's log and data are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
