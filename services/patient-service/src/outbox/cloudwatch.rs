//! The outbox's gauges for CloudWatch, as embedded-metric-format lines on stdout
//! (the stack alarms on them).

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use super::gauges::gauges;

/// How often the outbox's gauges go to CloudWatch.
const CLOUDWATCH_EVERY: Duration = Duration::from_secs(60);

/// One CloudWatch embedded-metric-format document: the awslogs driver ships stdout to
/// CloudWatch Logs, which turns such a line into metrics (`namespace`,
/// `OutboxOldestPendingAgeSeconds` and `OutboxPending`, by `Destination`).
pub fn emf_line(namespace: &str, destination: &str, pending: i64, oldest_age_s: f64, at_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Destination"]],
                "Metrics": [
                    {"Name": "OutboxOldestPendingAgeSeconds", "Unit": "Seconds"},
                    {"Name": "OutboxPending", "Unit": "Count"}
                ]
            }]
        },
        "Destination": destination,
        "OutboxOldestPendingAgeSeconds": oldest_age_s,
        "OutboxPending": pending
    })
    .to_string()
}

/// Publishes the outbox's gauges to CloudWatch every minute, as embedded-metric-format
/// lines on stdout (the stack alarms when the oldest pending row gets old). A minute
/// the database does not answer publishes nothing: the alarm treats missing data as
/// breaching.
pub fn publish_to_cloudwatch(pool: PgPool, namespace: String) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CLOUDWATCH_EVERY);
        loop {
            every.tick().await;
            match gauges(&pool).await {
                Ok(rows) => {
                    let at_ms = Utc::now().timestamp_millis();
                    for row in rows {
                        println!(
                            "{}",
                            emf_line(&namespace, &row.destination, row.pending, row.oldest_pending_age_s, at_ms)
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the outbox for CloudWatch"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cloudwatch_line_is_an_embedded_metric_format_document() {
        let line = emf_line("PulseTrack", "billing", 3, 12.5, 1_764_000_000_000);
        let doc: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "PulseTrack");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Destination"]]));
        // Every metric named in the directive, and every dimension, is a member.
        for metric in directive["Metrics"].as_array().expect("metrics") {
            assert!(doc[metric["Name"].as_str().expect("name")].is_number(), "{line}");
        }
        assert_eq!(doc["Destination"], "billing");
        assert_eq!(
            (doc["OutboxPending"].as_i64(), doc["OutboxOldestPendingAgeSeconds"].as_f64()),
            (Some(3), Some(12.5))
        );
        assert!(!line.contains('\n'), "one line");
    }
}
