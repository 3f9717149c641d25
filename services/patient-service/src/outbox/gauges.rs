//! How much the outbox holds, per destination, read from the table: the one query
//! behind `/health`, `/metrics` and the CloudWatch lines.

use sqlx::PgPool;

use super::destination::Destination;

/// Outbox depth of one destination, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    /// Rows still to be delivered (waiting, claimed or backing off).
    pub pending: i64,
    /// Rows given up on (rejected, or failing the same way too often).
    pub dead: i64,
}

/// `{"billing": {"pending": n, "dead": n}, "patient-event": {...}}`.
pub async fn depths(pool: &PgPool) -> sqlx::Result<serde_json::Value> {
    let map: serde_json::Map<String, serde_json::Value> = gauges(pool)
        .await?
        .into_iter()
        .map(|g| (g.destination, serde_json::json!(Depth { pending: g.pending, dead: g.dead })))
        .collect();
    Ok(serde_json::Value::Object(map))
}

/// One destination's outbox gauges.
#[derive(sqlx::FromRow)]
pub(super) struct Gauges {
    pub(super) destination: String,
    pub(super) pending: i64,
    pub(super) dead: i64,
    pub(super) oldest_pending_age_s: f64,
}

/// The outbox's backlog, dead rows and oldest pending age per destination, now (for
/// `/metrics` and CloudWatch).
pub(super) async fn gauges(pool: &PgPool) -> sqlx::Result<Vec<Gauges>> {
    sqlx::query_as(
        "SELECT d.destination, count(o.id) FILTER (WHERE o.dead_at IS NULL) AS pending, \
         count(o.id) FILTER (WHERE o.dead_at IS NOT NULL) AS dead, \
         coalesce(extract(epoch FROM now() - min(o.created_at) FILTER (WHERE o.dead_at IS NULL)), 0)::float8 \
             AS oldest_pending_age_s \
         FROM unnest($1::text[]) AS d(destination) LEFT JOIN outbox o ON o.destination = d.destination \
         GROUP BY d.destination ORDER BY d.destination",
    )
    .bind(Destination::ALL.map(Destination::as_str))
    .fetch_all(pool)
    .await
}
