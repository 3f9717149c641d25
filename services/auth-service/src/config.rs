//! auth-service configuration, from the environment (docs/src/configuration.md has the table).

use std::{collections::BTreeSet, time::Duration};

use pulsetrack_common::{
    audit::{AuditConfig, audited_database},
    config::{self, ConfigError, ListenConfig, Raw, Secret},
    db::DatabaseConfig,
    identity::Role,
    published_secrets::refuse_published,
    service_auth::ServiceSecret,
    settings::{
        Admin, AuthService, JWT_PRIVATE_KEY, JWT_SIGNING_SECRET, PULSETRACK_ADMIN_EMAIL, PULSETRACK_ADMIN_PASSWORD,
        PasswordPolicy, SignupMode,
    },
    validate,
};

use crate::repository::Lockout;

pub const DEFAULT_PORT: u16 = 4005;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    /// The service's own audit trail's key and anchors.
    pub audit: AuditConfig,
    /// `GATEWAY_AUDIT_SECRET`: what the gateway's refusal reports are checked with.
    pub gateway_audit: ServiceSecret,
    pub jwt: JwtConfig,
    pub admin: Option<AdminSeed>,
    /// What a self-signed-up account may do.
    pub signup_mode: SignupMode,
    /// What a new password must be.
    pub password_policy: PasswordPolicy,
    pub sessions: SessionConfig,
    pub mfa: MfaConfig,
    pub login_throttle: LoginThrottleConfig,
}

/// The second factor: the secret its encryption key is derived from, and the roles
/// that must use it.
#[derive(Debug, Clone, Default)]
pub struct MfaConfig {
    /// `MFA_ENCRYPTION_KEY`; without it, enrolment is refused (and so is a login of an
    /// account whose role requires a second factor it cannot enrol).
    pub encryption_key: Option<Secret<String>>,
    /// `REQUIRE_MFA_ROLES`.
    pub required_roles: BTreeSet<Role>,
}

impl MfaConfig {
    fn from_settings(settings: &AuthService<Raw>) -> Result<Self, ConfigError> {
        let raw = &settings.require_mfa_roles;
        let required_roles = raw
            .string_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("none"))
            .map(|s| s.to_uppercase().parse::<Role>().map_err(|e| raw.error(e)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let encryption_key = settings.mfa_encryption_key.optional().map(Secret::new);
        if let Some(key) = &encryption_key {
            refuse_published(key.expose()).map_err(|reason| settings.mfa_encryption_key.error(reason))?;
            crate::mfa::SealKey::from_secret(key.expose())
                .map_err(|e| settings.mfa_encryption_key.error(e.to_string()))?;
        } else if !required_roles.is_empty() {
            return Err(settings
                .mfa_encryption_key
                .error(format!("required with {}: a second factor cannot be enrolled without it", raw.var)));
        }
        Ok(Self { encryption_key, required_roles })
    }
}

/// How long a session lives (automatic logoff), enforced at refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session with no refresh for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after its login, whatever its use.
    pub max_age: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { idle_timeout: Duration::from_secs(1800), max_age: Duration::from_secs(43_200) }
    }
}

impl SessionConfig {
    fn from_settings(tuning: &pulsetrack_common::settings::AuthTuning<Raw>) -> Result<Self, ConfigError> {
        let seconds = |raw: &Raw, default: Duration| -> Result<Duration, ConfigError> {
            let n: u64 = raw.parse_or(default.as_secs())?;
            if n == 0 {
                return Err(raw.error("must be positive"));
            }
            Ok(Duration::from_secs(n))
        };
        let defaults = Self::default();
        Ok(Self {
            idle_timeout: seconds(&tuning.session_idle_timeout_seconds, defaults.idle_timeout)?,
            max_age: seconds(&tuning.session_max_age_seconds, defaults.max_age)?,
        })
    }
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

/// An access token's life unless `JWT_TTL_SECONDS` says otherwise.
pub const DEFAULT_TTL_SECONDS: u64 = 600;
/// The longest access token life accepted.
pub const MAX_TTL_SECONDS: u64 = 900;

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

    /// The database alone, for `migrate` (which serves nothing, so it needs no signing
    /// secret).
    pub fn database_from_env() -> Result<DatabaseConfig, ConfigError> {
        audited_database(&config::from_env::<AuthService<Raw>>().database, "auth_service")
    }

    /// The database and the trail's key and anchors, for `verify-audit`.
    pub fn trail_from_env() -> Result<(DatabaseConfig, AuditConfig), ConfigError> {
        let settings = config::from_env::<AuthService<Raw>>();
        Ok((audited_database(&settings.database, "auth_service")?, AuditConfig::from_settings(&settings.audit)?))
    }

    pub fn from_settings(settings: &AuthService<Raw>) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: ListenConfig::from_settings(&settings.listen, DEFAULT_PORT)?,
            database: audited_database(&settings.database, "auth_service")?,
            jwt: JwtConfig::from_settings(settings)?,
            audit: AuditConfig::from_settings(&settings.audit)?,
            gateway_audit: ServiceSecret::from_setting(&settings.gateway_audit_caller.secret)?,
            admin: AdminSeed::from_settings(&settings.admin)?,
            signup_mode: settings.signup_mode.parse_or(SignupMode::default())?,
            password_policy: settings.password_policy.parse_or(PasswordPolicy::default())?,
            sessions: SessionConfig::from_settings(&settings.tuning)?,
            mfa: MfaConfig::from_settings(settings)?,
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
        let ttl_seconds = tuning.jwt_ttl_seconds.parse_or(DEFAULT_TTL_SECONDS)?;
        if !(1..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
            return Err(tuning.jwt_ttl_seconds.error(format!(
                "must be from 1 to {MAX_TTL_SECONDS} seconds: an access token outlives a revocation by at most \
                 its life, and a session lives on through refresh tokens"
            )));
        }
        Ok(Self {
            issuer: tuning.jwt.issuer.string_or(pulsetrack_common::token_check::DEFAULT_ISSUER),
            audience: tuning.jwt.audience.string_or(pulsetrack_common::token_check::DEFAULT_AUDIENCE),
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

    /// A `JWT_SIGNING_SECRET` of at least [`MIN_SIGNING_SECRET_CHARS`] characters, not
    /// one PulseTrack ever published.
    pub fn secret(secret: String) -> Result<Self, ConfigError> {
        if secret.chars().count() < MIN_SIGNING_SECRET_CHARS {
            return Err(ConfigError::new(
                JWT_SIGNING_SECRET.name(),
                format!("must be at least {MIN_SIGNING_SECRET_CHARS} characters"),
            ));
        }
        refuse_published(&secret).map_err(|reason| ConfigError::new(JWT_SIGNING_SECRET.name(), reason))?;
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

    #[test]
    fn secrets_published_with_pulsetrack_are_refused() {
        use pulsetrack_common::{published_secrets::PUBLISHED_SECRETS, settings::MFA_ENCRYPTION_KEY};
        for published in PUBLISHED_SECRETS {
            let err = jwt(&[(JWT_SIGNING_SECRET, published)]).expect_err("published");
            assert_eq!(err.variable, "JWT_SIGNING_SECRET");
            assert!(err.reason.contains("published"), "{err}");
            let err = MfaConfig::from_settings(&config::from_pairs(&[(MFA_ENCRYPTION_KEY, published)]))
                .expect_err("published");
            assert_eq!(err.variable, "MFA_ENCRYPTION_KEY");
        }
    }

    #[test]
    fn required_second_factor_roles_are_role_names_and_need_the_encryption_key() {
        use pulsetrack_common::settings::{MFA_ENCRYPTION_KEY, REQUIRE_MFA_ROLES};
        let mfa =
            |pairs: &[(pulsetrack_common::settings::Var, &str)]| MfaConfig::from_settings(&config::from_pairs(pairs));
        let key = "k".repeat(32);
        let set = mfa(&[(REQUIRE_MFA_ROLES, "ADMIN, auditor,"), (MFA_ENCRYPTION_KEY, &key)]).expect("roles");
        assert_eq!(set.required_roles, BTreeSet::from([Role::Admin, Role::Auditor]));
        assert!(mfa(&[(REQUIRE_MFA_ROLES, "none")]).expect("none").required_roles.is_empty());
        assert_eq!(
            mfa(&[(REQUIRE_MFA_ROLES, "ROOT"), (MFA_ENCRYPTION_KEY, &key)]).expect_err("bad").variable,
            "REQUIRE_MFA_ROLES"
        );
        assert_eq!(mfa(&[(REQUIRE_MFA_ROLES, "ADMIN")]).expect_err("no key").variable, "MFA_ENCRYPTION_KEY");
        assert_eq!(mfa(&[(MFA_ENCRYPTION_KEY, "short")]).expect_err("short").variable, "MFA_ENCRYPTION_KEY");
    }

    #[test]
    fn access_tokens_live_ten_minutes_unless_set_and_never_over_fifteen() {
        use pulsetrack_common::settings::JWT_TTL_SECONDS;
        let long = "a".repeat(MIN_SIGNING_SECRET_CHARS);
        assert_eq!(jwt(&[(JWT_SIGNING_SECRET, &long)]).map(|j| j.ttl_seconds).ok(), Some(600));
        assert_eq!(
            jwt(&[(JWT_SIGNING_SECRET, &long), (JWT_TTL_SECONDS, "900")]).map(|j| j.ttl_seconds).ok(),
            Some(900)
        );
        for refused in ["901", "3600", "0"] {
            let err = jwt(&[(JWT_SIGNING_SECRET, &long), (JWT_TTL_SECONDS, refused)]).expect_err(refused);
            assert_eq!(err.variable, "JWT_TTL_SECONDS");
        }
    }

    #[test]
    fn sessions_end_after_thirty_idle_minutes_and_twelve_hours_unless_set() {
        use pulsetrack_common::settings::{SESSION_IDLE_TIMEOUT_SECONDS, SESSION_MAX_AGE_SECONDS};
        let tuning = |pairs: &[(pulsetrack_common::settings::Var, &str)]| {
            SessionConfig::from_settings(&config::from_pairs(pairs))
        };
        assert_eq!(tuning(&[]).ok(), Some(SessionConfig::default()));
        assert_eq!(SessionConfig::default().idle_timeout, Duration::from_secs(1800));
        assert_eq!(SessionConfig::default().max_age, Duration::from_secs(43_200));
        let set = tuning(&[(SESSION_IDLE_TIMEOUT_SECONDS, "2"), (SESSION_MAX_AGE_SECONDS, "5")]).expect("set");
        assert_eq!((set.idle_timeout, set.max_age), (Duration::from_secs(2), Duration::from_secs(5)));
        assert_eq!(tuning(&[(SESSION_MAX_AGE_SECONDS, "0")]).expect_err("zero").variable, "SESSION_MAX_AGE_SECONDS");
    }
}
