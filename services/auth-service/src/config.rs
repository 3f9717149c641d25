//! auth-service configuration, from the environment (see README for the table).

use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Raw, Secret},
    db::DatabaseConfig,
    settings::{Admin, AuthService, AuthTuning, PULSETRACK_ADMIN_EMAIL, PULSETRACK_ADMIN_PASSWORD},
    validate,
};

pub const DEFAULT_PORT: u16 = 4005;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    pub jwt: JwtConfig,
    pub admin: Option<AdminSeed>,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: u64,
    /// Ed25519 private key, PKCS#8 PEM. `None`: the key kept in the database is used
    /// (generated on first start), so tokens survive restarts and replicas agree.
    pub private_key_pem: Option<Secret<String>>,
}

/// The admin account created at startup when it does not exist yet.
#[derive(Debug, Clone)]
pub struct AdminSeed {
    pub email: String,
    pub password: Secret<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    pub fn from_settings(settings: &AuthService<Raw>) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: ListenConfig::from_settings(&settings.listen, DEFAULT_PORT)?,
            database: DatabaseConfig::from_settings(&settings.database, "auth_service")?,
            jwt: JwtConfig::from_settings(&settings.tuning)?,
            admin: AdminSeed::from_settings(&settings.admin)?,
        })
    }
}

impl JwtConfig {
    pub fn from_settings(tuning: &AuthTuning<Raw>) -> Result<Self, ConfigError> {
        let ttl_seconds = tuning.jwt_ttl_seconds.parse_or(3600u64)?;
        if ttl_seconds == 0 {
            return Err(tuning.jwt_ttl_seconds.error("must be positive"));
        }
        Ok(Self {
            issuer: tuning.jwt.issuer.string_or("pulsetrack-auth"),
            audience: tuning.jwt.audience.string_or("pulsetrack"),
            ttl_seconds,
            private_key_pem: tuning.jwt_private_key.optional().map(Secret::new),
        })
    }
}

impl AdminSeed {
    /// Both `PULSETRACK_ADMIN_EMAIL` and `PULSETRACK_ADMIN_PASSWORD`, or neither.
    fn from_settings(admin: &Admin<Raw>) -> Result<Option<Self>, ConfigError> {
        match (admin.email.optional(), admin.password.optional()) {
            (None, None) => Ok(None),
            (Some(email), Some(password)) => Self::new(email, password).map(Some),
            (Some(_), None) => Err(admin.password.error(format!("required with {}", admin.email.var))),
            (None, Some(_)) => Err(admin.email.error(format!("required with {}", admin.password.var))),
        }
    }

    pub fn new(email: String, password: String) -> Result<Self, ConfigError> {
        let email = validate::email(Some(email)).map_err(|r| ConfigError::new(PULSETRACK_ADMIN_EMAIL.name(), r))?;
        crate::password::check_policy(&password).map_err(|r| ConfigError::new(PULSETRACK_ADMIN_PASSWORD.name(), r))?;
        Ok(Self { email, password: Secret::new(password) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_seed_needs_both_variables() {
        let admin: Admin<Raw> = config::from_pairs(&[(PULSETRACK_ADMIN_EMAIL, "admin@example.com")]);
        let err = AdminSeed::from_settings(&admin).expect_err("password missing");
        assert_eq!(
            err.to_string(),
            "invalid configuration: PULSETRACK_ADMIN_PASSWORD: required with PULSETRACK_ADMIN_EMAIL"
        );
        assert!(AdminSeed::from_settings(&config::from_pairs(&[])).expect("neither").is_none());
    }
}
