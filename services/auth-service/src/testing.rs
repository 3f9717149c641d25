//! A real auth-service for other services' tests: started on port 0 against a fresh
//! database, with a seeded ADMIN who creates accounts of any role. A service under
//! test verifies the tokens it issues with its JWKS and revocation feed, as deployed.

use pulsetrack_common::{
    audit::AuditConfig,
    config::ListenConfig,
    db::DatabaseConfig,
    identity::Role,
    service_auth::ServiceSecret,
    settings::{PasswordPolicy, SignupMode},
    testing::TestDatabase,
    token_check::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, TokenCheckConfig},
};
use serde_json::json;

use crate::{
    Application,
    config::{AdminSeed, Config, JwtConfig, SigningKeySource},
};

const ADMIN_EMAIL: &str = "admin@pulsetrack.test";
const PASSWORD: &str = "correct-horse-battery";

/// A running auth-service (it stops with the test's runtime).
pub struct TestAuth {
    pub url: String,
    client: reqwest::Client,
    _db: TestDatabase,
}

impl TestAuth {
    pub async fn start() -> Self {
        let db = TestDatabase::create("auth").await;
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let config = Config {
            listen: ListenConfig::new("127.0.0.1", 0),
            database: DatabaseConfig::with_url(db.url()),
            audit: AuditConfig::for_tests(),
            gateway_audit: ServiceSecret::new(secret.clone()).expect("a long enough secret"),
            jwt: JwtConfig {
                issuer: DEFAULT_ISSUER.into(),
                audience: DEFAULT_AUDIENCE.into(),
                ttl_seconds: 600,
                key: SigningKeySource::secret(secret).expect("a long enough secret"),
            },
            admin: Some(AdminSeed::new(ADMIN_EMAIL.into(), PASSWORD.into()).expect("admin seed")),
            signup_mode: SignupMode::Open,
            password_policy: PasswordPolicy::Basic,
            sessions: Default::default(),
            mfa: Default::default(),
            login_throttle: Default::default(),
        };
        let server = Application::build(config).await.expect("auth-service starts");
        let url = format!("http://{}", server.local_addr());
        tokio::spawn(server.run_until(std::future::pending()));
        Self { url, client: reqwest::Client::new(), _db: db }
    }

    /// How a service under test checks this auth-service's tokens.
    pub fn token_check(&self) -> TokenCheckConfig {
        let url = self.url.parse().expect("a URL");
        TokenCheckConfig::with_jwks(url, DEFAULT_ISSUER.into(), DEFAULT_AUDIENCE.into()).expect("token check")
    }

    /// A fresh account of `role` (the ADMIN itself for [`Role::Admin`]), logged in:
    /// its access token.
    pub async fn token(&self, role: Role) -> String {
        let admin = self.login(ADMIN_EMAIL).await;
        if role == Role::Admin {
            return admin;
        }
        let email = format!("{}-{}@pulsetrack.test", role.as_str().to_lowercase(), uuid::Uuid::new_v4().simple());
        let body = json!({"email": email, "username": "tester", "password": PASSWORD, "role": role.as_str()});
        let created = self.client.post(format!("{}/auth/signup", self.url)).bearer_auth(&admin).json(&body).send();
        let status = created.await.expect("signup").status();
        assert_eq!(status, reqwest::StatusCode::CREATED, "the ADMIN creates a {role}");
        self.login(&email).await
    }

    async fn login(&self, email: &str) -> String {
        let body = json!({"email": email, "password": PASSWORD});
        let response = self.client.post(format!("{}/auth/login", self.url)).json(&body).send().await.expect("login");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "login of {email}");
        let answer: serde_json::Value = response.json().await.expect("json");
        answer["token"].as_str().expect("a token").to_string()
    }
}
