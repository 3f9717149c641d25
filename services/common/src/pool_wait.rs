//! How long requests wait for a Postgres connection: `db_pool_acquire_wait_seconds`.
//!
//! sqlx measures every acquire itself and reports it as a tracing event (target
//! [`ACQUIRE_TARGET`], field [`WAIT_FIELD`], emitted at TRACE for every acquire when
//! the pool is built with `acquire_time_level`, as [`crate::db::pool`] does, and at
//! WARN for a slow one). [`layer`] turns those events into a histogram; it is part of
//! the subscriber [`crate::telemetry::install`] sets up, and filtered to that one
//! target, so the log lines' own filter never sees or prints them. A process has one
//! pool per service it runs, hence one histogram per process.

use std::sync::LazyLock;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tracing::{
    Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    Layer,
    filter::{Filtered, Targets},
    layer::Context,
};

/// The target of sqlx's acquire events.
pub const ACQUIRE_TARGET: &str = "sqlx::pool::acquire";
/// Their field holding the time the acquire took.
pub const WAIT_FIELD: &str = "acquired_after_secs";

/// Seconds from asking the pool for a connection to holding one: 50 µs to ~6.5 s,
/// past the default acquire timeout (3 s).
pub(crate) static ACQUIRE_WAIT: LazyLock<Histogram> =
    LazyLock::new(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 18)));

/// The layer recording sqlx's acquire times into [`ACQUIRE_WAIT`].
pub fn layer<S: Subscriber>() -> Filtered<AcquireWait, Targets, S> {
    AcquireWait.with_filter(Targets::new().with_target(ACQUIRE_TARGET, Level::TRACE))
}

pub struct AcquireWait;

impl<S: Subscriber> Layer<S> for AcquireWait {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut wait = WaitField(None);
        event.record(&mut wait);
        if let Some(seconds) = wait.0 {
            ACQUIRE_WAIT.observe(seconds);
        }
    }
}

struct WaitField(Option<f64>);

impl Visit for WaitField {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == WAIT_FIELD {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}
