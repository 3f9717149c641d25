//! Starts the real auth-service, patient-service and api-gateway on port 0, each on a
//! fresh database of the real Postgres, as zero2prod's `spawn_app` does.

use std::{net::SocketAddr, time::Duration};

use api_gateway::config::{JwtConfig as GatewayJwt, KeySource};
use auth_service::config::{AdminSeed, JwtConfig as AuthJwt};
use pulsetrack_common::{
    config::{ListenConfig, Secret},
    db::DatabaseConfig,
    testing::{TestDatabase, init_test_logs},
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub const ISSUER: &str = "pulsetrack-auth";
pub const AUDIENCE: &str = "pulsetrack";
pub const ADMIN_EMAIL: &str = "admin@pulsetrack.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

pub fn listen_any() -> ListenConfig {
    ListenConfig { host: "127.0.0.1".into(), port: 0 }
}

pub struct TestStack {
    pub gateway: String,
    pub auth: String,
    pub patient: String,
    pub private_key_pem: String,
    pub client: Client,
    _dbs: (TestDatabase, TestDatabase),
}

/// Gateway settings a test may change; upstream URLs default to the real services.
pub struct GatewayOverrides {
    pub patient_url: Option<String>,
    pub upstream_timeout: Duration,
    pub max_body_bytes: usize,
}

impl Default for GatewayOverrides {
    fn default() -> Self {
        Self { patient_url: None, upstream_timeout: Duration::from_secs(10), max_body_bytes: 64 * 1024 }
    }
}

pub async fn spawn_stack() -> TestStack {
    spawn_stack_with(GatewayOverrides::default()).await
}

pub async fn spawn_stack_with(overrides: GatewayOverrides) -> TestStack {
    init_test_logs();
    let auth_db = TestDatabase::create("auth").await;
    let patient_db = TestDatabase::create("patient").await;
    let private_key_pem = auth_service::tokens::generate_private_key_pem().expect("key");

    let auth_config = auth_service::config::Config {
        listen: listen_any(),
        database: DatabaseConfig::with_url(auth_db.url()),
        jwt: AuthJwt {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            ttl_seconds: 3600,
            private_key_pem: Some(Secret::new(private_key_pem.clone())),
        },
        admin: Some(AdminSeed::new(ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()).expect("admin seed")),
    };
    let auth = auth_service::Application::build(auth_config).await.expect("auth-service starts");
    let auth_addr = auth.local_addr();
    tokio::spawn(auth.run_until(std::future::pending()));

    let patient_config =
        patient_service::config::Config { listen: listen_any(), database: DatabaseConfig::with_url(patient_db.url()) };
    let patient = patient_service::Application::build(patient_config).await.expect("patient-service starts");
    let patient_addr = patient.local_addr();
    tokio::spawn(patient.run_until(std::future::pending()));

    let auth_url = format!("http://{auth_addr}");
    let patient_url = overrides.patient_url.unwrap_or_else(|| format!("http://{patient_addr}"));
    let gateway_config = api_gateway::config::Config {
        listen: listen_any(),
        auth_url: auth_url.parse().expect("uri"),
        patient_url: patient_url.parse().expect("uri"),
        jwt: GatewayJwt {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            keys: KeySource::Jwks(format!("{auth_url}/.well-known/jwks.json").parse().expect("uri")),
        },
        upstream_timeout: overrides.upstream_timeout,
        max_body_bytes: overrides.max_body_bytes,
    };
    let gateway = api_gateway::Application::build(gateway_config).await.expect("gateway starts");
    let gateway_addr = gateway.local_addr();
    tokio::spawn(gateway.run_until(std::future::pending()));

    TestStack {
        gateway: format!("http://{gateway_addr}"),
        auth: auth_url,
        patient: format!("http://{patient_addr}"),
        private_key_pem,
        client: Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        _dbs: (auth_db, patient_db),
    }
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

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post_json("/auth/signup", &json!({"email": email, "username": "tester", "password": password})).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json("/auth/login", &json!({"email": email, "password": password})).await
    }

    /// Signs up (if needed) and logs in; returns the bearer token.
    pub async fn user_token(&self, email: &str) -> String {
        let password = "correct-horse-battery";
        let status = self.signup(email, password).await.status();
        assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT, "signup: {status}");
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

pub async fn json_of(response: Response) -> Value {
    response.json().await.expect("json body")
}
