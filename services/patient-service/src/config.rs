//! patient-service configuration, from the environment (see README for the table).

use pulsetrack_common::{
    config::{ConfigError, ListenConfig},
    db::DatabaseConfig,
};

pub const DEFAULT_PORT: u16 = 4000;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: ListenConfig::from_env(DEFAULT_PORT)?,
            database: DatabaseConfig::from_env("patient_service")?,
        })
    }
}
