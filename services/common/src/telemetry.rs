//! Tracing setup: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for one JSON
//! object per line (what a log shipper wants), anything else for human-readable lines.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{
    config::{self, Raw},
    settings::Logging,
};

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(service: &str) {
    let logging: Logging<Raw> = config::from_env();
    let filter =
        logging.filter.value.and_then(|f| EnvFilter::try_new(f).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    let json = logging.format.optional().is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true)).try_init()
    } else {
        registry.with(fmt::layer().with_target(false)).try_init()
    };
    if result.is_ok() {
        tracing::info!(service, "tracing initialised");
    }
}
