//! billing-service configuration, from the environment (see README for the table).

use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig},
    db::DatabaseConfig,
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
        let http = ListenConfig::from_env(DEFAULT_HTTP_PORT)?;
        let grpc = ListenConfig { host: http.host.clone(), port: config::parse_or("GRPC_PORT", DEFAULT_GRPC_PORT)? };
        Ok(Self { http, grpc, database: DatabaseConfig::from_env("billing_service")? })
    }
}
