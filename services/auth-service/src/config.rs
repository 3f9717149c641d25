//! auth-service configuration, from the environment (see README for the table).

use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Secret},
    db::DatabaseConfig,
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
        Ok(Self {
            listen: ListenConfig::from_env(DEFAULT_PORT)?,
            database: DatabaseConfig::from_env("auth_service")?,
            jwt: JwtConfig::from_env()?,
            admin: AdminSeed::from_env()?,
        })
    }
}

impl JwtConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let ttl_seconds = config::parse_or("JWT_TTL_SECONDS", 3600u64)?;
        if ttl_seconds == 0 {
            return Err(ConfigError::new("JWT_TTL_SECONDS", "must be positive"));
        }
        Ok(Self {
            issuer: config::string_or("JWT_ISSUER", "pulsetrack-auth"),
            audience: config::string_or("JWT_AUDIENCE", "pulsetrack"),
            ttl_seconds,
            private_key_pem: config::optional("JWT_PRIVATE_KEY").map(Secret::new),
        })
    }
}

impl AdminSeed {
    /// Both `PULSETRACK_ADMIN_EMAIL` and `PULSETRACK_ADMIN_PASSWORD`, or neither.
    fn from_env() -> Result<Option<Self>, ConfigError> {
        let email = config::optional("PULSETRACK_ADMIN_EMAIL");
        let password = config::optional("PULSETRACK_ADMIN_PASSWORD");
        match (email, password) {
            (None, None) => Ok(None),
            (Some(email), Some(password)) => Self::new(email, password).map(Some),
            (Some(_), None) => {
                Err(ConfigError::new("PULSETRACK_ADMIN_PASSWORD", "required with PULSETRACK_ADMIN_EMAIL"))
            }
            (None, Some(_)) => {
                Err(ConfigError::new("PULSETRACK_ADMIN_EMAIL", "required with PULSETRACK_ADMIN_PASSWORD"))
            }
        }
    }

    pub fn new(email: String, password: String) -> Result<Self, ConfigError> {
        let email = validate::email(Some(email)).map_err(|r| ConfigError::new("PULSETRACK_ADMIN_EMAIL", r))?;
        crate::password::check_policy(&password).map_err(|r| ConfigError::new("PULSETRACK_ADMIN_PASSWORD", r))?;
        Ok(Self { email, password: Secret::new(password) })
    }
}
