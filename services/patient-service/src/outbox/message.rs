//! The write side of the outbox: the rows a patient change queues (billing requests,
//! `PatientEvent`s), written in the change's own transaction.

use chrono::Utc;
use prost::Message;
use pulsetrack_proto::{billing::BillingRequest, patient_events::PatientEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use super::destination::Destination;
use crate::domain::Patient;

/// One outbox row to be written with a patient change.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub destination: Destination,
    pub payload: Vec<u8>,
}

/// The billing account request for a new patient.
pub fn billing_message(patient: &Patient) -> OutboxMessage {
    OutboxMessage { destination: Destination::Billing, payload: billing_request(patient).encode_to_vec() }
}

/// The request that closes a deleted patient's billing account.
pub fn billing_close_message(patient: &Patient) -> OutboxMessage {
    OutboxMessage { destination: Destination::BillingClose, payload: billing_request(patient).encode_to_vec() }
}

fn billing_request(patient: &Patient) -> BillingRequest {
    BillingRequest { patient_id: patient.id.to_string(), name: patient.name.clone(), email: patient.email.clone() }
}

/// The `PATIENT_DELETED` event: the patient's id only, no personal data (analytics then
/// removes the name and email from the patient's earlier events).
pub fn deleted_event_message(patient: &Patient) -> OutboxMessage {
    let anonymous = Patient { name: String::new(), email: String::new(), ..patient.clone() };
    event_message(&anonymous, pulsetrack_proto::event_type::PATIENT_DELETED)
}

/// A `PatientEvent` of `event_type` with a fresh event id.
pub fn event_message(patient: &Patient, event_type: &str) -> OutboxMessage {
    let now = Utc::now();
    let event = PatientEvent {
        patient_id: patient.id.to_string(),
        name: patient.name.clone(),
        email: patient.email.clone(),
        event_type: event_type.to_string(),
        event_id: Uuid::now_v7().to_string(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
    };
    OutboxMessage { destination: Destination::PatientEvent, payload: event.encode_to_vec() }
}

/// Queues `messages` about `patient` (same transaction as the change), in order.
pub async fn enqueue(conn: &mut PgConnection, patient: &Patient, messages: &[OutboxMessage]) -> sqlx::Result<()> {
    let destinations: Vec<&str> = messages.iter().map(|m| m.destination.as_str()).collect();
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
    sqlx::query(
        "INSERT INTO outbox (destination, aggregate_id, payload, trace_parent) \
         SELECT m.destination, $1, m.payload, $4 \
         FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS m(destination, payload, n) ORDER BY m.n",
    )
    .bind(patient.id)
    .bind(&destinations)
    .bind(&payloads)
    .bind(pulsetrack_common::trace_context::current_traceparent())
    .execute(conn)
    .await
    .map(|_| ())
}
