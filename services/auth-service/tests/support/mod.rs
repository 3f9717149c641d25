//! What the auth-service tests share: a configuration on a test database.

use auth_service::config::{Config, JwtConfig, SigningKeySource};
use pulsetrack_common::{audit::AuditConfig, config::ListenConfig, db::DatabaseConfig, service_auth::ServiceSecret};

/// auth-service on port 0 and `database_url`, its key derived from `secret`, with the
/// defaults of everything else and no admin seeded.
pub fn config(database_url: &str, secret: &str) -> Config {
    Config {
        listen: ListenConfig::new("127.0.0.1", 0),
        database: DatabaseConfig::with_url(database_url),
        audit: AuditConfig::for_tests(),
        gateway_audit: ServiceSecret::new(secret.into()).expect("secret"),
        jwt: JwtConfig {
            issuer: "pulsetrack-auth".into(),
            audience: "pulsetrack".into(),
            ttl_seconds: 60,
            key: SigningKeySource::secret(secret.into()).expect("secret"),
        },
        admin: None,
        signup_mode: Default::default(),
        password_policy: Default::default(),
        sessions: Default::default(),
        mfa: Default::default(),
        login_throttle: Default::default(),
    }
}
