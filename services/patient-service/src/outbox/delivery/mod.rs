//! Delivery: sends a pass's claimed rows to their receiver (billing-service over gRPC,
//! Kafka for events), each bounded so that no delivery outlives its claim, and tells
//! one outcome per row.

mod billing;
mod error;
mod event;
mod producer;

use std::{future::Future, time::Duration};

use futures_util::future::join_all;
use pulsetrack_common::kafka::KafkaConfig;
use tracing::Instrument as _;

pub(super) use self::error::DeliveryError;
use self::{billing::Billing, producer::Producer};
use super::{claim::ClaimedRow, destination::Destination};
use crate::config::{BillingTarget, OutboxConfig};

/// The receivers' clients: billing-service's and the Kafka producer.
pub(super) struct Deliverer {
    billing: Billing,
    producer: Producer,
    config: OutboxConfig,
}

impl Deliverer {
    pub(super) fn new(billing: &BillingTarget, kafka: KafkaConfig, config: OutboxConfig) -> anyhow::Result<Self> {
        let billing = Billing::connect_lazy(billing, config.billing_deadline)?;
        let producer = Producer::new(kafka, config.kafka_delivery_timeout)?;
        Ok(Self { billing, producer, config })
    }

    /// Delivers `rows` to `destination`; returns one outcome per row, in order.
    pub(super) async fn deliver(
        &self,
        destination: Destination,
        rows: &[ClaimedRow],
    ) -> Vec<Result<(), DeliveryError>> {
        // A delivery never outlives its claim.
        let bound = self.config.delivery_bound();
        match destination {
            Destination::Billing => self.open_accounts(rows, bound).await,
            Destination::BillingClose => self.close_accounts(rows, bound).await,
            Destination::PatientEvent => self.send_events(rows, bound).await,
        }
    }

    async fn open_accounts(&self, rows: &[ClaimedRow], bound: Duration) -> Vec<Result<(), DeliveryError>> {
        // One call and one commit in billing-service for the whole batch.
        let spans: Vec<tracing::Span> = rows.iter().map(|r| r.delivery_span(Destination::Billing)).collect();
        let outcomes =
            tokio::time::timeout(bound, self.billing.open_accounts(rows, &spans)).await.unwrap_or_else(|_| {
                let reason = format!("no answer within {} ms", bound.as_millis());
                rows.iter().map(|_| Err(DeliveryError::Transient(reason.clone()))).collect()
            });
        drop(spans);
        outcomes
    }

    async fn close_accounts(&self, rows: &[ClaimedRow], bound: Duration) -> Vec<Result<(), DeliveryError>> {
        join_all(rows.iter().map(|r| {
            within(bound, self.billing.close_account(r)).instrument(r.delivery_span(Destination::BillingClose))
        }))
        .await
    }

    /// Sends the events of `rows`, then replaces the producer if it went fatal or stalled.
    async fn send_events(&self, rows: &[ClaimedRow], bound: Duration) -> Vec<Result<(), DeliveryError>> {
        let producer = self.producer.get();
        let outcomes = join_all(rows.iter().map(|r| {
            within(bound, event::send(&producer, r, self.config.kafka_delivery_timeout))
                .instrument(r.delivery_span(Destination::PatientEvent))
        }))
        .await;
        let saw_fatal = outcomes.iter().any(|o| matches!(o, Err(DeliveryError::FatalProducer(_))));
        self.producer.heal(&producer, saw_fatal, outcomes.iter().any(Result::is_ok));
        outcomes
    }
}

/// `delivery`, or a transient failure when it takes longer than `bound`.
async fn within(
    bound: Duration,
    delivery: impl Future<Output = Result<(), DeliveryError>>,
) -> Result<(), DeliveryError> {
    tokio::time::timeout(bound, delivery)
        .await
        .unwrap_or_else(|_| Err(DeliveryError::Transient(format!("no answer within {} ms", bound.as_millis()))))
}
