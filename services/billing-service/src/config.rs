//! billing-service configuration, from the environment (docs/src/configuration.md has the table).

use pulsetrack_common::{
    audit::{AuditConfig, audited_database},
    config::{self, ConfigError, ListenConfig, Raw},
    db::DatabaseConfig,
    service_auth::ServiceSecret,
    settings::BillingService,
    token_check::TokenCheckConfig,
};

pub const DEFAULT_HTTP_PORT: u16 = 4001;
pub const DEFAULT_GRPC_PORT: u16 = 9001;

#[derive(Debug, Clone)]
pub struct Config {
    /// `/health`, `/ready` and the account lookup.
    pub http: ListenConfig,
    /// The `BillingService` gRPC server (`GRPC_PORT`).
    pub grpc: ListenConfig,
    pub database: DatabaseConfig,
    /// The audit trail's key and anchors.
    pub audit: AuditConfig,
    /// How the HTTP routes verify their callers' tokens.
    pub token_check: TokenCheckConfig,
    /// `BILLING_GRPC_SECRET`: what the callers' service credentials are verified with;
    /// required, so that billing-service never serves its gRPC methods to anyone.
    pub grpc_secret: ServiceSecret,
    /// `GRPC_REFLECTION`: whether gRPC server reflection is served (default off).
    pub grpc_reflection: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    /// The database alone, for `verify-audit` (which serves nothing, so it needs no
    /// `BILLING_GRPC_SECRET`).
    pub fn database_from_env() -> Result<DatabaseConfig, ConfigError> {
        audited_database(&config::from_env::<BillingService<Raw>>().database, "billing_service")
    }

    /// The database and the trail's key and anchors, for `verify-audit`.
    pub fn trail_from_env() -> Result<(DatabaseConfig, AuditConfig), ConfigError> {
        let settings = config::from_env::<BillingService<Raw>>();
        Ok((audited_database(&settings.database, "billing_service")?, AuditConfig::from_settings(&settings.audit)?))
    }

    pub fn from_settings(settings: &BillingService<Raw>) -> Result<Self, ConfigError> {
        let http = ListenConfig::from_settings(&settings.listen, DEFAULT_HTTP_PORT)?;
        // The gRPC port has the HTTP listener's TLS identity.
        let grpc = ListenConfig {
            tls: http.tls.clone(),
            ..ListenConfig::new(http.host.clone(), settings.grpc_port.parse_or(DEFAULT_GRPC_PORT)?)
        };
        Ok(Self {
            token_check: TokenCheckConfig::from_settings(&settings.token_check, http.tls.is_some())?,
            http,
            grpc,
            database: audited_database(&settings.database, "billing_service")?,
            audit: AuditConfig::from_settings(&settings.audit)?,
            grpc_secret: ServiceSecret::from_setting(&settings.billing_caller.secret)?,
            grpc_reflection: settings.tuning.grpc_reflection.parse_or(false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use pulsetrack_common::settings::{AUDIT_ANCHORS, AUDIT_KEY, BILLING_GRPC_SECRET, GRPC_REFLECTION, Var};

    use super::*;

    /// The settings `pairs`, after an audit key and anchors.
    fn config(pairs: &[(Var, &str)]) -> Result<Config, ConfigError> {
        let key = "k".repeat(40);
        let mut all = vec![(AUDIT_KEY, key.as_str()), (AUDIT_ANCHORS, "file:/var/lib/pulsetrack/anchors.jsonl")];
        all.extend_from_slice(pairs);
        Config::from_settings(&config::from_pairs(&all))
    }

    #[test]
    fn it_needs_the_grpc_secret_never_shows_it_and_serves_reflection_only_when_asked() {
        assert_eq!(config(&[]).expect_err("no secret").variable, "BILLING_GRPC_SECRET");
        for published in pulsetrack_common::published_secrets::PUBLISHED_SECRETS {
            let err = config(&[(BILLING_GRPC_SECRET, published)]).expect_err("published");
            assert!(err.variable == "BILLING_GRPC_SECRET" && err.reason.contains("published"), "{err}");
        }
        let secret = "b".repeat(40);
        let with = |pairs: &[(Var, &str)]| {
            let mut all = vec![(BILLING_GRPC_SECRET, secret.as_str())];
            all.extend_from_slice(pairs);
            config(&all)
        };
        let plain = with(&[]).expect("valid");
        assert!(!format!("{plain:?}").contains(&secret), "the secret is redacted");
        assert!(!plain.grpc_reflection, "reflection is off by default");
        assert!(with(&[(GRPC_REFLECTION, "true")]).expect("on").grpc_reflection);
        assert_eq!(with(&[(GRPC_REFLECTION, "yes")]).expect_err("not a bool").variable, "GRPC_REFLECTION");
    }
}
