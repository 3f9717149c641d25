//! billing-service configuration, from the environment (docs/src/configuration.md has the table).

use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Raw},
    db::DatabaseConfig,
    settings::BillingService,
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
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    pub fn from_settings(settings: &BillingService<Raw>) -> Result<Self, ConfigError> {
        let http = ListenConfig::from_settings(&settings.listen, DEFAULT_HTTP_PORT)?;
        let grpc = ListenConfig::new(http.host.clone(), settings.grpc_port.parse_or(DEFAULT_GRPC_PORT)?);
        let database = DatabaseConfig::from_settings(&settings.database, "billing_service")?
            .with_append_only(&[pulsetrack_common::audit::AUDIT_TABLE]);
        Ok(Self { http, grpc, database })
    }
}
