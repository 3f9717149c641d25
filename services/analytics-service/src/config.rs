//! analytics-service configuration, from the environment (docs/src/configuration.md has the table).

use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Raw},
    db::DatabaseConfig,
    kafka::KafkaConfig,
    settings::AnalyticsService,
};

pub const DEFAULT_PORT: u16 = 4002;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    pub kafka: KafkaConfig,
    /// Consumer group (`KAFKA_GROUP_ID`, default `analytics-service`).
    pub group_id: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    pub fn from_settings(settings: &AnalyticsService<Raw>) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: ListenConfig::from_settings(&settings.listen, DEFAULT_PORT)?,
            database: DatabaseConfig::from_settings(&settings.database, "analytics_service")?
                .with_append_only(&[pulsetrack_common::audit::AUDIT_TABLE]),
            kafka: KafkaConfig::from_settings(&settings.kafka)?,
            group_id: settings.tuning.group_id.string_or("analytics-service"),
        })
    }
}
