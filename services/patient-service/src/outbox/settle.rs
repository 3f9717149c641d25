//! Settling a pass, in its transaction: delivered rows are deleted, failed ones get
//! their next attempt (exponential backoff) or are marked dead.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use super::{claim::ClaimedRow, delivery::DeliveryError, destination::Destination};
use crate::config::OutboxConfig;

/// Rows whose deliveries failed this many times in a row with the same error, none of
/// them plainly transient, are marked dead (kept, with the reason, and counted).
pub const DEAD_AFTER_SAME_FAILURES: i32 = 10;

/// What a pass's deliveries came to.
pub(super) struct Settlement {
    /// Ids of the rows delivered.
    delivered: Vec<i64>,
    failed: FailedRows,
    /// Whether a delivery found the patient topic missing (to be created after the commit).
    pub(super) missing_topic: bool,
}

impl Settlement {
    /// Sorts the outcomes of `rows` (one per row, in order) into delivered and failed.
    pub(super) fn of(rows: &[ClaimedRow], outcomes: Vec<Result<(), DeliveryError>>, config: &OutboxConfig) -> Self {
        let mut delivered = Vec::with_capacity(rows.len());
        let mut failed = FailedRows::default();
        let mut missing_topic = false;
        for (row, outcome) in rows.iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.push(row.id),
                Err(error) => {
                    missing_topic |= matches!(error, DeliveryError::MissingTopic(_));
                    failed.push(row, &error, backoff(config, row.attempts));
                }
            }
        }
        Self { delivered, failed, missing_topic }
    }

    /// Deletes the delivered rows and records the failed ones, on the connection of
    /// the pass's transaction (the caller commits).
    pub(super) async fn write(&self, conn: &mut PgConnection, destination: Destination) -> sqlx::Result<()> {
        if !self.delivered.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)").bind(&self.delivered).execute(&mut *conn).await?;
        }
        if let Some(first) = self.failed.reasons.first() {
            tracing::warn!(destination = destination.as_str(), failed = self.failed.ids.len(),
                delivered = self.delivered.len(), first_reason = %first, "deliveries failed; will retry");
            record_failures(conn, destination, &self.failed).await?;
        }
        Ok(())
    }
}

/// The failures of one pass, as columns for one `UPDATE ... FROM unnest(...)`.
#[derive(Default)]
struct FailedRows {
    ids: Vec<i64>,
    reasons: Vec<String>,
    delays: Vec<f64>,
    counts: Vec<bool>,
    rejects: Vec<bool>,
}

impl FailedRows {
    fn push(&mut self, row: &ClaimedRow, error: &DeliveryError, delay: Duration) {
        self.ids.push(row.id);
        self.reasons.push(error.reason().to_string());
        self.delays.push(delay.as_secs_f64());
        self.counts.push(error.counts());
        self.rejects.push(matches!(error, DeliveryError::Reject(_)));
    }
}

/// Records failed deliveries on rows the pass's transaction holds; marks dead the
/// rejected ones and those failing the same way too often.
async fn record_failures(conn: &mut PgConnection, destination: Destination, failed: &FailedRows) -> sqlx::Result<()> {
    let dead: Vec<(i64, Uuid, i32, String)> = sqlx::query_as(
        "UPDATE outbox o SET attempts = o.attempts + 1, \
             same_failures = CASE WHEN o.last_error = f.reason THEN o.same_failures + 1 ELSE 1 END, \
             last_error = f.reason, \
             next_attempt_at = now() + make_interval(secs => f.delay), \
             dead_at = CASE WHEN f.reject OR (f.counts AND o.last_error = f.reason AND o.same_failures + 1 >= $6) \
                 THEN now() END \
         FROM unnest($1::int8[], $2::text[], $3::float8[], $4::bool[], $5::bool[]) AS f(id, reason, delay, counts, reject) \
         WHERE o.id = f.id \
         RETURNING o.id, o.aggregate_id, o.attempts, f.reason, o.dead_at IS NOT NULL AS dead",
    )
    .bind(&failed.ids)
    .bind(&failed.reasons)
    .bind(&failed.delays)
    .bind(&failed.counts)
    .bind(&failed.rejects)
    .bind(DEAD_AFTER_SAME_FAILURES)
    .fetch_all(conn)
    .await?
    .into_iter()
    .filter_map(|(id, aggregate, attempts, reason, dead): (i64, Uuid, i32, String, bool)| {
        dead.then_some((id, aggregate, attempts, reason))
    })
    .collect();
    for (id, patient_id, attempts, reason) in dead {
        tracing::error!(destination = destination.as_str(), outbox_id = id, %patient_id, attempts, %reason,
            "outbox row is dead: it will not be delivered (kept with its reason)");
    }
    Ok(())
}

/// `base * 2^attempts`, capped at `max`.
fn backoff(config: &OutboxConfig, attempts: i32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.clamp(0, 20) as u32);
    config.base_backoff.saturating_mul(factor).min(config.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let config = OutboxConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..OutboxConfig::default()
        };
        let delays: Vec<u128> = (0..6).map(|a| backoff(&config, a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&config, i32::MAX), Duration::from_secs(1));
    }
}
