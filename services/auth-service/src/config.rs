//! auth-service configuration, from the environment (docs/src/configuration.md has the table).

use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Raw, Secret},
    db::DatabaseConfig,
    settings::{
        Admin, AuthService, JWT_PRIVATE_KEY, JWT_SIGNING_SECRET, PULSETRACK_ADMIN_EMAIL, PULSETRACK_ADMIN_PASSWORD,
        SignupMode,
    },
    validate,
};

use crate::repository::Lockout;

pub const DEFAULT_PORT: u16 = 4005;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    pub jwt: JwtConfig,
    pub admin: Option<AdminSeed>,
    /// What a self-signed-up account may do.
    pub signup_mode: SignupMode,
    pub login_throttle: LoginThrottleConfig,
}

/// How failed logins are slowed down: per account (in the database, so every replica
/// sees it) and per client address (in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottleConfig {
    pub lockout: Lockout,
    /// Failed logins one client address may make per minute (also its burst).
    pub failures_per_minute_per_address: u32,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self { lockout: Lockout::default(), failures_per_minute_per_address: 10 }
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: u64,
    /// Where the signing key comes from; there is no default (and no key is ever
    /// generated or stored by the service), so every replica and restart signs alike.
    pub key: SigningKeySource,
}

/// The token signing key's origin.
#[derive(Debug, Clone)]
pub enum SigningKeySource {
    /// `JWT_SIGNING_SECRET`: the Ed25519 key is derived from it (HKDF-SHA256).
    Secret(Secret<String>),
    /// `JWT_PRIVATE_KEY`: an Ed25519 PKCS#8 PEM.
    Pem(Secret<String>),
}

/// The shortest `JWT_SIGNING_SECRET` accepted (the stack generates 64 alphanumerics).
pub const MIN_SIGNING_SECRET_CHARS: usize = 32;

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
            jwt: JwtConfig::from_settings(settings)?,
            admin: AdminSeed::from_settings(&settings.admin)?,
            signup_mode: settings.signup_mode.parse_or(SignupMode::default())?,
            login_throttle: LoginThrottleConfig {
                failures_per_minute_per_address: {
                    let raw = &settings.tuning.login_failures_per_minute;
                    let n = raw.parse_or(LoginThrottleConfig::default().failures_per_minute_per_address)?;
                    if n == 0 {
                        return Err(raw.error("must be positive"));
                    }
                    n
                },
                ..LoginThrottleConfig::default()
            },
        })
    }
}

impl JwtConfig {
    pub fn from_settings(settings: &AuthService<Raw>) -> Result<Self, ConfigError> {
        let tuning = &settings.tuning;
        let ttl_seconds = tuning.jwt_ttl_seconds.parse_or(3600u64)?;
        if ttl_seconds == 0 {
            return Err(tuning.jwt_ttl_seconds.error("must be positive"));
        }
        Ok(Self {
            issuer: tuning.jwt.issuer.string_or("pulsetrack-auth"),
            audience: tuning.jwt.audience.string_or("pulsetrack"),
            ttl_seconds,
            key: SigningKeySource::from_settings(&settings.jwt_signing_secret, &tuning.jwt_private_key)?,
        })
    }
}

impl SigningKeySource {
    /// Exactly one of `JWT_SIGNING_SECRET` and `JWT_PRIVATE_KEY`.
    fn from_settings(secret: &Raw, pem: &Raw) -> Result<Self, ConfigError> {
        match (secret.optional(), pem.optional()) {
            (Some(secret), None) => Self::secret(secret),
            (None, Some(pem)) => Ok(Self::Pem(Secret::new(pem))),
            (Some(_), Some(_)) => {
                Err(secret.error(format!("set either {JWT_SIGNING_SECRET} or {JWT_PRIVATE_KEY}, not both")))
            }
            (None, None) => Err(secret.error(format!(
                "required: the token signing key comes from {JWT_SIGNING_SECRET} (a generated secret) \
                 or {JWT_PRIVATE_KEY} (an Ed25519 PKCS#8 PEM); none is generated"
            ))),
        }
    }

    /// A `JWT_SIGNING_SECRET` of at least [`MIN_SIGNING_SECRET_CHARS`] characters.
    pub fn secret(secret: String) -> Result<Self, ConfigError> {
        if secret.chars().count() < MIN_SIGNING_SECRET_CHARS {
            return Err(ConfigError::new(
                JWT_SIGNING_SECRET.name(),
                format!("must be at least {MIN_SIGNING_SECRET_CHARS} characters"),
            ));
        }
        Ok(Self::Secret(Secret::new(secret)))
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

    fn jwt(pairs: &[(pulsetrack_common::settings::Var, &str)]) -> Result<JwtConfig, ConfigError> {
        JwtConfig::from_settings(&config::from_pairs(pairs))
    }

    #[test]
    fn the_signing_key_comes_from_exactly_one_setting() {
        let long = "a".repeat(MIN_SIGNING_SECRET_CHARS);
        assert!(matches!(jwt(&[(JWT_SIGNING_SECRET, &long)]).map(|j| j.key), Ok(SigningKeySource::Secret(_))));
        assert!(matches!(jwt(&[(JWT_PRIVATE_KEY, "pem")]).map(|j| j.key), Ok(SigningKeySource::Pem(_))));
        let err = jwt(&[]).expect_err("no key");
        assert_eq!(err.variable, "JWT_SIGNING_SECRET");
        assert!(err.reason.contains("required"), "{err}");
        let err = jwt(&[(JWT_SIGNING_SECRET, &long), (JWT_PRIVATE_KEY, "pem")]).expect_err("both");
        assert!(err.reason.contains("not both"), "{err}");
        let short = &long[1..];
        assert_eq!(jwt(&[(JWT_SIGNING_SECRET, short)]).expect_err("short").variable, "JWT_SIGNING_SECRET");
    }
}
