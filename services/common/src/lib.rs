//! What every PulseTrack service shares, so that no service copies it:
//! configuration from the environment, tracing, request ids, the Postgres pool and
//! migrations, `/health` and `/ready`, graceful shutdown, the HTTP server wrapper, the
//! client-safe error body, the JSON extractor that reports the failing field, and the
//! credentials services present to each other on internal calls.

pub mod audit;
pub mod config;
pub mod db;
pub mod error;
pub mod group_commit;
pub mod health;
pub mod healthcheck;
pub mod http_client;
pub mod identity;
pub mod json;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
pub mod openapi;
pub mod pool_wait;
pub mod published_secrets;
pub mod rate_limit;
pub mod request_id;
pub mod revocation;
pub mod server;
pub mod service_auth;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
pub mod token_check;
pub mod trace_context;
pub mod validate;

#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "testing")]
pub mod testing_moto;
#[cfg(feature = "testing")]
pub mod testing_postgres;

pub use error::{ApiError, FieldError};
pub use health::Readiness;
pub use json::JsonBody;
/// The services' settings: every variable name, and each service's settings as a type.
pub use pulsetrack_settings as settings;
pub use server::HttpServer;
