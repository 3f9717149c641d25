//! Delivery of a `PatientEvent` to Kafka, and how the broker's errors map to delivery
//! errors.

use std::time::Duration;

use pulsetrack_common::{
    kafka::{PATIENT_TOPIC, is_fatal, is_transient, is_unknown_topic},
    trace_context,
};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

use super::error::DeliveryError;
use crate::outbox::claim::ClaimedRow;

/// Sends `row`'s event to the `patient` topic, keyed by patient (one patient's events
/// stay in one partition, in order), waiting at most `timeout` for the broker.
pub(super) async fn send(producer: &FutureProducer, row: &ClaimedRow, timeout: Duration) -> Result<(), DeliveryError> {
    let key = row.aggregate_id.to_string();
    // analytics' span continues this delivery's trace.
    let mut headers = OwnedHeaders::new();
    for (name, value) in trace_context::current_fields() {
        headers = headers.insert(Header { key: &name, value: Some(&value) });
    }
    let record = FutureRecord::to(PATIENT_TOPIC).key(&key).payload(&row.payload).headers(headers);
    match producer.send(record, timeout).await {
        Ok(_) => Ok(()),
        Err((e, _)) if is_unknown_topic(&e) => Err(DeliveryError::MissingTopic(e.to_string())),
        Err((e, _)) if is_fatal(&e) => Err(DeliveryError::FatalProducer(e.to_string())),
        Err((e, _)) if is_transient(&e) => Err(DeliveryError::Transient(e.to_string())),
        Err((e, _)) => Err(DeliveryError::Retry(e.to_string())),
    }
}
