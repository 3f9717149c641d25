//! The dispatcher: one delivery loop per destination, each pass a claim, a delivery
//! and its settling in one transaction.

use std::sync::Arc;

use pulsetrack_common::kafka::{KafkaConfig, PATIENT_TOPIC};
use sqlx::PgPool;

use super::{
    backpressure::Backpressure,
    claim::{self, BATCH},
    delivery::Deliverer,
    destination::Destination,
    settle::Settlement,
    wakeup::Wakeup,
};
use crate::config::{BillingTarget, OutboxConfig};

pub struct Dispatcher {
    pool: PgPool,
    wakeup: Wakeup,
    backpressure: Backpressure,
    deliverer: Deliverer,
    kafka: KafkaConfig,
    config: OutboxConfig,
}

impl Dispatcher {
    /// `billing`: billing-service's gRPC endpoint, the secret of the credential its
    /// calls carry, and the TLS they use.
    pub fn new(
        pool: PgPool,
        wakeup: Wakeup,
        backpressure: Backpressure,
        billing: &BillingTarget,
        kafka: KafkaConfig,
        config: OutboxConfig,
    ) -> anyhow::Result<Self> {
        let deliverer = Deliverer::new(billing, kafka.clone(), config.clone())?;
        Ok(Self { pool, wakeup, backpressure, deliverer, kafka, config })
    }

    /// Runs one delivery loop per destination until the process ends.
    pub fn spawn(self) {
        let this = Arc::new(self);
        for destination in Destination::ALL {
            let this = this.clone();
            tokio::spawn(async move { this.run(destination).await });
        }
    }

    async fn run(&self, destination: Destination) {
        loop {
            match self.drain(destination).await {
                // A full batch: there may be more.
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(destination = destination.as_str(), error = %e, "outbox pass failed"),
            }
            let _ = tokio::time::timeout(self.config.poll_interval, self.wakeup.of(destination).notified()).await;
        }
    }

    /// Delivers one batch of due rows; returns how many the claim read (a full batch:
    /// there may be more). One dispatcher at a time delivers a destination: the pass
    /// takes the destination's advisory lock in a transaction it holds while it
    /// delivers, and in that transaction deletes what was delivered and records what
    /// failed. The claim writes nothing (no lease in every row, no row locks), and until
    /// its DELETE the transaction has no transaction id, so it does not hold back the
    /// cleanup of the outbox's dead rows either. A replica that dies loses the lock the
    /// moment Postgres sees its connection close; one that hangs is ended by Postgres
    /// after [`OutboxConfig::claim_timeout`] idle.
    async fn drain(&self, destination: Destination) -> sqlx::Result<usize> {
        let mut tx = self.pool.begin().await?;
        if !claim::lock(&mut tx, destination, self.config.claim_timeout()).await? {
            // Another replica delivers this destination now. This replica's creates are
            // held by that dispatcher's lag too: the age of the oldest row still waiting
            // for its first attempt.
            let lag = claim::waiting_lag(&mut tx, destination).await?;
            self.backpressure.record(destination, lag);
            return Ok(0);
        }
        let rows = claim::due_rows(&mut tx, destination).await?;
        let claimed = rows.len();
        let rows = claim::first_per_patient(rows);
        self.backpressure.record(destination, claim::first_attempt_lag(&rows));
        if rows.is_empty() {
            return Ok(0);
        }
        let outcomes = self.deliverer.deliver(destination, &rows).await;
        let settlement = Settlement::of(&rows, outcomes, &self.config);
        settlement.write(&mut tx, destination).await?;
        tx.commit().await?;
        if settlement.missing_topic
            && let Err(e) = self.kafka.ensure_topics(&[PATIENT_TOPIC]).await
        {
            tracing::warn!(error = %e, "cannot create the patient topic yet");
        }
        Ok(claimed)
    }
}
