//! Starts the real services on port 0, each on a fresh database of the real Postgres,
//! as zero2prod's `spawn_app` does; the pipeline tests add a real tansu broker and
//! analytics-service.

use std::{net::SocketAddr, time::Duration};

use auth_service::config::{AdminSeed, JwtConfig as AuthJwt, SigningKeySource};
use patient_service::config::OutboxConfig;
use pulsetrack_common::audit::AuditConfig;
use pulsetrack_common::{
    config::{ListenConfig, ServerLimits},
    db::DatabaseConfig,
    identity::Role,
    kafka::KafkaConfig,
    rate_limit::Rate,
    settings::{PasswordPolicy, SignupMode, TlsClientAuth},
    testing::{Storage, TestBroker, TestCa, TestDatabase, init_test_logs},
    token_check::TokenCheckConfig,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ISSUER: &str = "pulsetrack-auth";
pub const AUDIENCE: &str = "pulsetrack";
pub const ADMIN_EMAIL: &str = "admin@pulsetrack.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

pub fn listen_any() -> ListenConfig {
    ListenConfig::new("127.0.0.1", 0)
}

/// A service task that can be stopped (graceful shutdown) and awaited.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn spawn<F, Fut, E>(run_until: F) -> Self
    where
        F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Debug,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let fut = run_until(Box::pin(async move {
            let _ = rx.await;
        }));
        let task = tokio::spawn(async move {
            if let Err(e) = fut.await {
                panic!("service failed: {e:?}");
            }
        });
        Self { stop: Some(tx), task }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), &mut self.task).await;
    }
}

pub struct TestStack {
    pub gateway: String,
    pub auth: String,
    pub patient: String,
    pub billing_http: String,
    pub private_key_pem: String,
    pub client: Client,
    pub broker: Option<TestBroker>,
    pub billing: Option<Running>,
    pub billing_config: billing_service::config::Config,
    pub billing_db_url: String,
    pub patient_db_url: String,
    pub analytics_db_url: Option<String>,
    pub analytics: Option<Running>,
    pub analytics_config: Option<analytics_service::config::Config>,
    /// The gateway's settings, for a second copy ([`TestStack::spawn_gateway_process`]).
    pub gateway_config: api_gateway::config::Config,
    /// `GATEWAY_AUDIT_SECRET`, for a gateway process of its own.
    pub gateway_audit_secret: String,
    /// auth-service's settings, for a restart ([`TestStack::restart_auth`]).
    pub auth_config: auth_service::config::Config,
    /// With [`GatewayOverrides::tls`]: the CA every certificate chains to.
    pub ca: Option<TestCa>,
    _dbs: Vec<TestDatabase>,
}

/// Gateway settings a test may change; upstream URLs default to the real services.
pub struct GatewayOverrides {
    pub patient_url: Option<String>,
    pub upstream_timeout: Duration,
    pub max_body_bytes: usize,
    /// Start a tansu broker and analytics-service (the event pipeline).
    pub kafka: bool,
    /// With `kafka`: a broker reached directly (no proxy) on this storage, for tests
    /// that kill and restart the process; `None`: memory storage behind a proxy.
    pub direct_broker: Option<Storage>,
    /// Open by default, so that a signed-up test account is a USER (patient access).
    pub signup_mode: SignupMode,
    /// Basic by default, as under `deployer up`.
    pub password_policy: PasswordPolicy,
    pub sessions: auth_service::config::SessionConfig,
    /// As under `up`: an encryption key, and no role that must use a second factor.
    pub mfa: auth_service::config::MfaConfig,
    /// Access tokens' life (600 s, the default, unless set).
    pub token_ttl_seconds: u64,
    pub login_throttle: auth_service::config::LoginThrottleConfig,
    /// The gateway's per-caller limit (by default far above what a test sends).
    pub rate_limit: Rate,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The gateway's HTTP server limits.
    pub gateway_limits: ServerLimits,
    /// Every hop over TLS, as in the cloud: each service gets a certificate of one test
    /// CA and asks its clients for one; the gateway asks for none (as behind the ALB).
    pub tls: bool,
}

impl Default for GatewayOverrides {
    fn default() -> Self {
        Self {
            patient_url: None,
            upstream_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            kafka: false,
            direct_broker: None,
            signup_mode: SignupMode::Open,
            password_policy: PasswordPolicy::Basic,
            sessions: Default::default(),
            mfa: auth_service::config::MfaConfig {
                encryption_key: Some(pulsetrack_common::config::Secret::new(
                    "the-tests-mfa-encryption-key-0123456789abcdef".into(),
                )),
                required_roles: Default::default(),
            },
            token_ttl_seconds: auth_service::config::DEFAULT_TTL_SECONDS,
            login_throttle: Default::default(),
            rate_limit: Rate { per_second: 1e6, burst: 1e6 },
            trusted_proxies: Vec::new(),
            gateway_limits: ServerLimits::default(),
            tls: false,
        }
    }
}

pub async fn spawn_stack() -> TestStack {
    spawn_stack_with(GatewayOverrides::default()).await
}

/// The whole system with the event pipeline: broker, billing and analytics included.
pub async fn spawn_pipeline() -> TestStack {
    spawn_stack_with(GatewayOverrides { kafka: true, ..Default::default() }).await
}

/// Test outbox timings: fast retries so outage tests recover quickly.
pub fn test_outbox() -> OutboxConfig {
    OutboxConfig {
        poll_interval: Duration::from_millis(100),
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        billing_deadline: Duration::from_secs(2),
        kafka_delivery_timeout: Duration::from_secs(2),
    }
}

pub async fn spawn_stack_with(overrides: GatewayOverrides) -> TestStack {
    init_test_logs();
    let ca = overrides.tls.then(TestCa::new);
    let listen = |client_auth| ListenConfig { tls: ca.as_ref().map(|ca| ca.tls(client_auth)), ..listen_any() };
    let scheme = if ca.is_some() { "https" } else { "http" };
    let auth_db = TestDatabase::create("auth").await;
    let patient_db = TestDatabase::create("patient").await;
    let billing_db = TestDatabase::create("billing").await;
    // As deployed: auth-service derives its key from a generated secret; the tests
    // forge tokens with the same (derived) key.
    let signing_secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let private_key_pem =
        auth_service::tokens::private_key_pem(&auth_service::tokens::derive_signing_key(&signing_secret)).expect("key");
    // As deployed: the gateway reports its refusals to auth-service with credentials
    // of a secret both hold.
    let gateway_audit_secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let service_secret = |s: &str| pulsetrack_common::service_auth::ServiceSecret::new(s.into()).expect("long enough");

    let auth_config = auth_service::config::Config {
        listen: listen(TlsClientAuth::Required),
        database: DatabaseConfig::with_url(auth_db.url()),
        audit: AuditConfig::for_tests(),
        gateway_audit: service_secret(&gateway_audit_secret),
        jwt: AuthJwt {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            ttl_seconds: overrides.token_ttl_seconds,
            key: SigningKeySource::secret(signing_secret).expect("a long enough secret"),
        },
        admin: Some(AdminSeed::new(ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()).expect("admin seed")),
        signup_mode: overrides.signup_mode,
        password_policy: overrides.password_policy,
        sessions: overrides.sessions,
        mfa: overrides.mfa,
        login_throttle: overrides.login_throttle,
    };
    let auth = auth_service::Application::build(auth_config.clone()).await.expect("auth-service starts");
    let auth_addr = auth.local_addr();
    tokio::spawn(auth.run_until(std::future::pending()));
    let auth_url = format!("{scheme}://{auth_addr}");
    // Every service verifies tokens with auth-service's JWKS and revocation feed, as in
    // production.
    let token_check = TokenCheckConfig::with_jwks(auth_url.parse().expect("uri"), ISSUER.into(), AUDIENCE.into())
        .expect("token check");

    // As deployed: patient-service mints its credential for billing-service's gRPC
    // calls with the secret billing-service verifies it with.
    let billing_grpc_secret = pulsetrack_common::service_auth::ServiceSecret::new(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
    .expect("a long enough secret");
    let mut billing_config = billing_service::config::Config {
        http: listen(TlsClientAuth::Required),
        grpc: listen(TlsClientAuth::Required),
        database: DatabaseConfig::with_url(billing_db.url()),
        audit: AuditConfig::for_tests(),
        token_check: token_check.clone(),
        grpc_secret: billing_grpc_secret.clone(),
        grpc_reflection: false,
    };
    let billing = billing_service::Application::build(billing_config.clone()).await.expect("billing-service starts");
    // Pin the ports, so a restarted billing-service comes back where patient-service looks.
    billing_config.http.port = billing.http_addr().port();
    billing_config.grpc.port = billing.grpc_addr().port();
    let billing_http = format!("{scheme}://{}", billing.http_addr());
    let billing_grpc = format!("{scheme}://{}", billing.grpc_addr());
    let billing = Running::spawn(|stop| billing.run_until(stop));

    let broker = match (overrides.kafka, overrides.direct_broker) {
        (false, _) => None,
        (true, None) => Some(TestBroker::start().await),
        (true, Some(storage)) => Some(TestBroker::start_direct(storage).await),
    };
    let kafka = match &broker {
        Some(broker) => KafkaConfig::local(broker.brokers()),
        // No pipeline in this test: events wait in the outbox, as in a broker outage.
        None => KafkaConfig::local(closed_port_addr().to_string()),
    };

    let mut dbs = vec![auth_db, billing_db];
    let mut analytics_db_url = None;
    let (analytics, analytics_config, analytics_http) = if overrides.kafka {
        let analytics_db = TestDatabase::create("analytics").await;
        let mut config = analytics_service::config::Config {
            listen: listen(TlsClientAuth::Required),
            database: DatabaseConfig::with_url(analytics_db.url()),
            audit: AuditConfig::for_tests(),
            kafka: kafka.clone(),
            token_check: token_check.clone(),
            group_id: "analytics-service".into(),
        };
        analytics_db_url = Some(analytics_db.url().to_string());
        dbs.push(analytics_db);
        let app = analytics_service::Application::build(config.clone()).await.expect("analytics-service starts");
        config.listen.port = app.local_addr().port();
        let url = format!("{scheme}://{}", app.local_addr());
        (Some(Running::spawn(|stop| app.run_until(stop))), Some(config), url)
    } else {
        (None, None, format!("http://{}", closed_port_addr()))
    };

    let patient_listen = listen(TlsClientAuth::Required);
    let patient_config = patient_service::config::Config {
        billing: patient_service::config::BillingTarget {
            url: billing_grpc,
            secret: billing_grpc_secret,
            tls: patient_listen.tls.clone(),
        },
        listen: patient_listen,
        database: DatabaseConfig::with_url(patient_db.url()),
        audit: AuditConfig::for_tests(),
        kafka,
        token_check: token_check.clone(),
        outbox: test_outbox(),
        cloudwatch_namespace: None,
    };
    let patient_db_url = patient_db.url().to_string();
    dbs.push(patient_db);
    let patient = patient_service::Application::build(patient_config).await.expect("patient-service starts");
    let patient_addr = patient.local_addr();
    tokio::spawn(patient.run_until(std::future::pending()));

    let patient_url = overrides.patient_url.unwrap_or_else(|| format!("{scheme}://{patient_addr}"));
    let gateway_config = api_gateway::config::Config {
        listen: ListenConfig { limits: overrides.gateway_limits, ..listen(TlsClientAuth::None) },
        token_check,
        patient_url: patient_url.parse().expect("uri"),
        billing_url: billing_http.parse().expect("uri"),
        analytics_url: analytics_http.parse().expect("uri"),
        upstream_timeout: overrides.upstream_timeout,
        max_body_bytes: overrides.max_body_bytes,
        rate_limit: overrides.rate_limit,
        trusted_proxies: overrides.trusted_proxies,
        audit_secret: service_secret(&gateway_audit_secret),
    };
    let gateway = api_gateway::Application::build(gateway_config.clone()).await.expect("gateway starts");
    let gateway_addr = gateway.local_addr();
    tokio::spawn(gateway.run_until(std::future::pending()));

    let billing_db_url = dbs[1].url().to_string();
    TestStack {
        gateway: format!("{scheme}://{gateway_addr}"),
        auth: auth_url,
        patient: format!("{scheme}://{patient_addr}"),
        billing_http,
        private_key_pem,
        client: test_client(ca.as_ref()),
        broker,
        billing: Some(billing),
        billing_config,
        billing_db_url,
        patient_db_url,
        analytics_db_url,
        analytics,
        analytics_config,
        gateway_config,
        gateway_audit_secret,
        auth_config,
        ca,
        _dbs: dbs,
    }
}

impl TestStack {
    /// Another copy of the gateway as a process of its own (the api-gateway binary,
    /// configured by its environment as in production), in front of the same services;
    /// returns it (killed when dropped) and its URL.
    pub async fn spawn_gateway_process(&self) -> (GatewayProcess, String) {
        use pulsetrack_common::settings::{
            ANALYTICS_SERVICE_URL, AUTH_SERVICE_URL, BILLING_SERVICE_URL, GATEWAY_AUDIT_SECRET, HOST, JWT_AUDIENCE,
            JWT_ISSUER, PATIENT_SERVICE_URL, PORT, RATE_LIMIT_PER_SECOND,
        };
        let c = &self.gateway_config;
        let port = closed_port_addr().port().to_string();
        let url = |u: &http::Uri| u.to_string().trim_end_matches('/').to_string();
        let env = [
            (HOST, "127.0.0.1".to_string()),
            (PORT, port.clone()),
            (AUTH_SERVICE_URL, url(&c.token_check.auth_url)),
            (PATIENT_SERVICE_URL, url(&c.patient_url)),
            (BILLING_SERVICE_URL, url(&c.billing_url)),
            (ANALYTICS_SERVICE_URL, url(&c.analytics_url)),
            (JWT_ISSUER, c.token_check.issuer.clone()),
            (JWT_AUDIENCE, c.token_check.audience.clone()),
            (RATE_LIMIT_PER_SECOND, "1000000".to_string()),
            (GATEWAY_AUDIT_SECRET, self.gateway_audit_secret.clone()),
        ];
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_api-gateway"))
            .env_clear()
            .envs(env.iter().map(|(var, value)| (var.name(), value)))
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("the api-gateway binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let process = GatewayProcess(child);
        eventually("the gateway process ready", Duration::from_secs(20), || async {
            let ready = self.client.get(format!("{base}/ready")).send().await;
            ready.is_ok_and(|r| r.status() == StatusCode::OK).then_some(())
        })
        .await;
        (process, base)
    }

    /// Another auth-service on the same database with `config` (a restart with new
    /// settings); returns its URL.
    pub async fn spawn_auth(&self, config: auth_service::config::Config) -> String {
        let auth = auth_service::Application::build(config).await.expect("auth-service starts");
        let url = format!("http://{}", auth.local_addr());
        tokio::spawn(auth.run_until(std::future::pending()));
        url
    }

    pub async fn stop_billing(&mut self) {
        if let Some(running) = self.billing.take() {
            running.stop().await;
        }
    }

    pub async fn start_billing(&mut self) {
        let app = billing_service::Application::build(self.billing_config.clone()).await.expect("billing restarts");
        self.billing = Some(Running::spawn(|stop| app.run_until(stop)));
    }

    pub async fn stop_analytics(&mut self) {
        if let Some(running) = self.analytics.take() {
            running.stop().await;
        }
    }

    pub async fn start_analytics(&mut self) {
        let config = self.analytics_config.clone().expect("pipeline stack");
        let app = analytics_service::Application::build(config).await.expect("analytics restarts");
        self.analytics = Some(Running::spawn(|stop| app.run_until(stop)));
    }

    pub fn broker(&mut self) -> &mut TestBroker {
        self.broker.as_mut().expect("pipeline stack")
    }
}

/// A gateway process, killed when dropped.
pub struct GatewayProcess(std::process::Child);

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tests' client: with a CA, it trusts that CA only (the gateway then speaks TLS).
fn test_client(ca: Option<&TestCa>) -> Client {
    let mut builder = Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        let root = reqwest::Certificate::from_pem(ca.ca_pem.as_bytes()).expect("CA");
        builder = builder.tls_built_in_root_certs(false).add_root_certificate(root);
    }
    builder.build().expect("client")
}

/// A free loopback port with nothing listening on it.
pub fn closed_port_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    /// A public signup (202 whether or not the address was free).
    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post_json("/auth/signup", &json!({"email": email, "username": "tester", "password": password})).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json("/auth/login", &json!({"email": email, "password": password})).await
    }

    /// Signs up (if needed) and logs in; returns the bearer token.
    pub async fn user_token(&self, email: &str) -> String {
        let session = self.user_session(email).await;
        session["token"].as_str().expect("token").to_string()
    }

    /// Signs up (if needed) and logs in; returns the whole login answer.
    pub async fn user_session(&self, email: &str) -> Value {
        let password = "correct-horse-battery";
        assert_eq!(self.signup(email, password).await.status(), StatusCode::ACCEPTED, "signup");
        let response = self.login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login");
        json_of(response).await
    }

    /// An account of `role`, created by the ADMIN; returns its bearer token.
    pub async fn token_with_role(&self, email: &str, role: Role) -> String {
        let password = "correct-horse-battery";
        let admin = self.admin_token().await;
        let body = json!({"email": email, "username": "tester", "password": password, "role": role.as_str()});
        let response = self.client.post(self.url("/auth/signup")).bearer_auth(&admin).json(&body).send().await;
        let status = response.expect("signup").status();
        assert_eq!(status, StatusCode::CREATED, "signup of a {role}");
        token_of(self.login(email, password).await).await
    }

    pub async fn admin_token(&self) -> String {
        token_of(self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).await
    }

    pub async fn authed(&self, method: reqwest::Method, path: &str, token: &str, body: Option<&Value>) -> Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    pub async fn create_patient(&self, token: &str, body: &Value) -> Response {
        self.authed(reqwest::Method::POST, "/api/patients", token, Some(body)).await
    }
}

pub async fn token_of(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::OK, "login failed");
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_string()
}

pub fn patient_body(email: &str) -> Value {
    json!({
        "name": "Ada Lovelace",
        "email": email,
        "address": "12 St James's Square, London",
        "dateOfBirth": "1990-05-17",
        "registeredDate": "2026-01-15"
    })
}

/// Polls `check` until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn json_of(response: Response) -> Value {
    response.json().await.expect("json body")
}

/// `base`'s `/metrics`, checked to be Prometheus's text exposition format.
pub async fn scrape(stack: &TestStack, base: &str) -> String {
    let response = stack.client.get(format!("{base}/metrics")).send().await.expect("scrape");
    assert_eq!(response.status(), StatusCode::OK, "{base}/metrics");
    assert!(
        response.headers()["content-type"].to_str().is_ok_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "exposition format"
    );
    response.text().await.expect("text")
}

/// The value of the sample `name` (with its labels, exactly as exposed).
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
