//! analytics-service configuration, from the environment (docs/src/configuration.md has the table).

use pulsetrack_common::{
    audit::{AuditConfig, audited_database},
    config::{self, ConfigError, ListenConfig, Raw},
    db::DatabaseConfig,
    kafka::KafkaConfig,
    settings::AnalyticsService,
    token_check::TokenCheckConfig,
};

pub const DEFAULT_PORT: u16 = 4002;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    /// The audit trail's key and anchors.
    pub audit: AuditConfig,
    pub kafka: KafkaConfig,
    /// How the routes verify their callers' tokens.
    pub token_check: TokenCheckConfig,
    /// Consumer group (`KAFKA_GROUP_ID`, default `analytics-service`).
    pub group_id: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    /// The database alone, for `verify-audit` and `migrate` (which serve nothing).
    pub fn database_from_env() -> Result<DatabaseConfig, ConfigError> {
        audited_database(&config::from_env::<AnalyticsService<Raw>>().database, "analytics_service")
    }

    /// The database and the trail's key and anchors, for `verify-audit`.
    pub fn trail_from_env() -> Result<(DatabaseConfig, AuditConfig), ConfigError> {
        let settings = config::from_env::<AnalyticsService<Raw>>();
        Ok((audited_database(&settings.database, "analytics_service")?, AuditConfig::from_settings(&settings.audit)?))
    }

    pub fn from_settings(settings: &AnalyticsService<Raw>) -> Result<Self, ConfigError> {
        let listen = ListenConfig::from_settings(&settings.listen, DEFAULT_PORT)?;
        Ok(Self {
            database: audited_database(&settings.database, "analytics_service")?,
            audit: AuditConfig::from_settings(&settings.audit)?,
            kafka: KafkaConfig::from_settings(&settings.kafka)?,
            token_check: TokenCheckConfig::from_settings(&settings.token_check, listen.tls.is_some())?,
            group_id: settings.tuning.group_id.string_or("analytics-service"),
            listen,
        })
    }
}
