//! The claim: a pass takes its destination's advisory lock and reads the batch of due
//! rows it will deliver, writing nothing (no lease in every row, no row locks).

use std::time::Duration;

use pulsetrack_common::trace_context;
use sqlx::PgConnection;
use uuid::Uuid;

use super::destination::{Destination, OUTBOX_LOCKS};

/// The most rows one pass delivers. Smaller passes report the lag to [`Backpressure`]
/// sooner: at 100 clients, 500 kept the create -> analytics delay at p99 1.06 s where
/// 1,000 gave 1.42 s (bench/ISSUE17.md).
///
/// [`Backpressure`]: super::backpressure::Backpressure
pub(super) const BATCH: i64 = 500;

#[derive(sqlx::FromRow)]
pub(super) struct ClaimedRow {
    pub(super) id: i64,
    pub(super) aggregate_id: Uuid,
    pub(super) payload: Vec<u8>,
    pub(super) attempts: i32,
    /// The writing request's trace, continued by the delivery.
    trace_parent: Option<String>,
    /// How long the row had waited when this pass claimed it.
    age_s: f64,
}

impl ClaimedRow {
    /// The span a delivery of this row runs in: a child of the request that wrote it.
    pub(super) fn delivery_span(&self, destination: Destination) -> tracing::Span {
        let span = tracing::info_span!("outbox.deliver", destination = destination.as_str(),
            patient_id = %self.aggregate_id, outbox_id = self.id, trace_id = tracing::field::Empty);
        trace_context::adopt(&span, trace_context::from_traceparent(self.trace_parent.as_deref()));
        span
    }
}

/// Takes `destination`'s advisory lock for the transaction `conn` is in, and lets
/// Postgres end that transaction after `claim_timeout` idle; false when another
/// dispatcher holds the lock.
pub(super) async fn lock(
    conn: &mut PgConnection,
    destination: Destination,
    claim_timeout: Duration,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock($1, $2) \
         FROM set_config('idle_in_transaction_session_timeout', $3, true)",
    )
    .bind(OUTBOX_LOCKS)
    .bind(destination.lock_key())
    .bind(format!("{}ms", claim_timeout.as_millis()))
    .fetch_one(conn)
    .await
}

/// The age of the oldest row of `destination` still waiting for its first attempt.
pub(super) async fn waiting_lag(conn: &mut PgConnection, destination: Destination) -> sqlx::Result<Duration> {
    let waited: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox \
         WHERE destination = $1 AND dead_at IS NULL AND attempts = 0 ORDER BY id LIMIT 1",
    )
    .bind(destination.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(Duration::try_from_secs_f64(waited.unwrap_or(0.0)).unwrap_or_default())
}

/// Up to [`BATCH`] due rows of `destination`, in id order.
pub(super) async fn due_rows(conn: &mut PgConnection, destination: Destination) -> sqlx::Result<Vec<ClaimedRow>> {
    // Only the oldest pending row of a patient is eligible: a row waits while an
    // older one for the same patient is pending, so one patient's events reach Kafka
    // in the order they happened. An older pending row is either due, and then in
    // this pass before it (rows come in id order; a first attempt is always due),
    // which `first_per_patient` sees, or it failed and waits for its retry, which
    // the NOT EXISTS finds in the small index of failed rows (`outbox_retrying`,
    // empty while deliveries succeed; migration 0009).
    sqlx::query_as(
        "SELECT id, aggregate_id, payload, attempts, trace_parent, \
                extract(epoch FROM now() - created_at)::float8 AS age_s FROM outbox o \
         WHERE destination = $1 AND dead_at IS NULL AND (attempts = 0 OR next_attempt_at <= now()) \
         AND NOT EXISTS (SELECT 1 FROM outbox failed WHERE failed.destination = o.destination \
             AND failed.aggregate_id = o.aggregate_id AND failed.id < o.id \
             AND failed.attempts > 0 AND failed.dead_at IS NULL) \
         ORDER BY id LIMIT $2",
    )
    .bind(destination.as_str())
    .bind(BATCH)
    .fetch_all(conn)
    .await
}

/// Of rows in id order, each patient's first only: a later row of the same patient
/// waits for the next pass, after the earlier one was delivered.
pub(super) fn first_per_patient(rows: Vec<ClaimedRow>) -> Vec<ClaimedRow> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    rows.into_iter().filter(|row| seen.insert(row.aggregate_id)).collect()
}

/// The dispatcher's lag for [`Backpressure`]: the age of the oldest of `rows` on its
/// first attempt.
///
/// [`Backpressure`]: super::backpressure::Backpressure
pub(super) fn first_attempt_lag(rows: &[ClaimedRow]) -> Duration {
    // Rows on their first attempt only: a retried row is old by nature (it waited out
    // its backoff), and counting it would hold creates back for an outage.
    let oldest = rows.iter().filter(|r| r.attempts == 0).map(|r| r.age_s).fold(0.0, f64::max);
    Duration::try_from_secs_f64(oldest).unwrap_or_default()
}
