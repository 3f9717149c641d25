//! The outbox's Prometheus gauges, read from the table at each scrape.

use sqlx::PgPool;

use super::{backpressure::Backpressure, destination::Destination, gauges::gauges};

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct DestinationLabel {
    destination: &'static str,
}

/// The outbox's gauges, read at each scrape: `outbox_pending`, `outbox_dead` and
/// `outbox_oldest_pending_age_seconds`, by destination, and `outbox_create_hold_seconds`.
pub fn register_metrics(metrics: &pulsetrack_common::metrics::Metrics, pool: PgPool, backpressure: Backpressure) {
    use prometheus_client::metrics::{family::Family, gauge::Gauge};
    type AgeGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
    let hold = AgeGauge::default();
    metrics.register(
        "outbox_create_hold_seconds",
        "How long each create is held now so that the outbox dispatcher keeps up (backpressure)",
        hold.clone(),
    );
    let pending = Family::<DestinationLabel, Gauge>::default();
    let dead = Family::<DestinationLabel, Gauge>::default();
    let oldest = Family::<DestinationLabel, AgeGauge>::default();
    metrics.register("outbox_pending", "Outbox rows still to be delivered", pending.clone());
    metrics.register("outbox_dead", "Outbox rows given up on (kept with their reason)", dead.clone());
    metrics.register(
        "outbox_oldest_pending_age_seconds",
        "How long the oldest row still to be delivered has waited",
        oldest.clone(),
    );
    metrics.on_scrape(move || {
        let (pool, pending, dead, oldest) = (pool.clone(), pending.clone(), dead.clone(), oldest.clone());
        hold.set(backpressure.hold().as_secs_f64());
        async move {
            match gauges(&pool).await {
                Ok(rows) => {
                    for row in rows {
                        let Some(destination) = Destination::ALL.into_iter().find(|d| d.as_str() == row.destination)
                        else {
                            continue;
                        };
                        let label = DestinationLabel { destination: destination.as_str() };
                        pending.get_or_create(&label).set(row.pending);
                        dead.get_or_create(&label).set(row.dead);
                        oldest.get_or_create(&label).set(row.oldest_pending_age_s);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the outbox for the metrics"),
            }
        }
    });
}
