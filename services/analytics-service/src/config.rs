//! analytics-service configuration, from the environment (see README for the table).

use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig},
    db::DatabaseConfig,
    kafka::KafkaConfig,
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
        Ok(Self {
            listen: ListenConfig::from_env(DEFAULT_PORT)?,
            database: DatabaseConfig::from_env("analytics_service")?,
            kafka: KafkaConfig::from_env()?,
            group_id: config::string_or("KAFKA_GROUP_ID", "analytics-service"),
        })
    }
}
