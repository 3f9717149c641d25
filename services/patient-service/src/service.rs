//! Use cases: each patient change and the outbox rows it implies (the billing request,
//! the `PatientEvent`) commit in one database transaction. The HTTP response never
//! waits on billing or Kafka: the outbox dispatcher delivers after the commit.

use std::time::Duration;

use pulsetrack_common::{group_commit::GroupCommit, trace_context};
use pulsetrack_proto::event_type;
use uuid::Uuid;

use crate::{
    domain::{ListParams, Patient, PatientInput, PatientPage},
    error::Error,
    outbox::{self, Backpressure, Wakeup},
    repository::{NewPatient, PatientRepository},
};

/// The most creates written in one statement.
const CREATE_BATCH_MAX: usize = 256;
/// Creates waiting for the writer; past this a request waits for room.
const CREATE_QUEUE: usize = 4096;
/// How long a create waits for its commit (queueing included) before it answers 503.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PatientService {
    repo: PatientRepository,
    /// Creates are group-committed: see `PatientRepository`'s `Batch`.
    creates: GroupCommit<PatientRepository>,
    wakeup: Wakeup,
    backpressure: Backpressure,
}

impl PatientService {
    /// Also starts the writer of creates (on the current Tokio runtime).
    pub fn new(repo: PatientRepository, wakeup: Wakeup, backpressure: Backpressure) -> Self {
        let creates = GroupCommit::spawn(repo.clone(), CREATE_BATCH_MAX, CREATE_QUEUE);
        Self { repo, creates, wakeup, backpressure }
    }

    pub async fn get(&self, id: Uuid) -> Result<Patient, Error> {
        self.repo.find(id).await?.ok_or(Error::NotFound(id))
    }

    pub async fn list(&self, params: ListParams) -> Result<PatientPage, Error> {
        let (search, size) = (params.search.as_deref(), params.size);
        let offset = if params.after.is_some() { 0 } else { params.page * size };
        // One row more than the page says whether another page follows, without counting.
        let mut content = self.repo.page(search, params.after, offset, size + 1).await?;
        let page_len = usize::try_from(size).unwrap_or(usize::MAX);
        let more = content.len() > page_len;
        content.truncate(page_len);
        let next_cursor = content.last().filter(|_| more).map(|p| p.id);
        let numbered = match params.after {
            Some(_) => None,
            None => Some(self.repo.count(search).await?),
        };
        Ok(PatientPage {
            content,
            size,
            next_cursor,
            page: numbered.map(|_| params.page),
            total_elements: numbered,
            total_pages: numbered.map(|total| (total + size - 1) / size),
        })
    }

    pub async fn create(&self, input: PatientInput) -> Result<Patient, Error> {
        // While the pipeline is behind, creates wait for it (bounded): see `Backpressure`.
        // Before anything is stamped: the event's `occurred_at` is when the create went
        // ahead, not when it arrived.
        let held = self.backpressure.admit().await;
        if !held.is_zero() {
            tracing::debug!(held_ms = held.as_millis(), "create held back: the outbox dispatcher is behind");
        }
        let patient = Patient {
            id: Uuid::now_v7(),
            name: input.name,
            email: input.email,
            address: input.address,
            date_of_birth: input.date_of_birth,
            // Validation fills it on create (today when the client sent none).
            registered_date: input.registered_date.unwrap_or_else(|| chrono::Utc::now().date_naive()),
        };
        let outbox =
            vec![outbox::billing_message(&patient), outbox::event_message(&patient, event_type::PATIENT_CREATED)];
        let new = NewPatient { patient, outbox, trace_parent: trace_context::current_traceparent() };
        let patient = new.patient.clone();
        self.creates.submit(new, CREATE_TIMEOUT).await??;
        self.wakeup.wake();
        tracing::debug!(patient_id = %patient.id, "patient created");
        Ok(patient)
    }

    pub async fn update(&self, id: Uuid, input: PatientInput) -> Result<Patient, Error> {
        let mut tx = self.repo.pool().begin().await?;
        let patient = PatientRepository::update(&mut tx, id, &input).await?.ok_or(Error::NotFound(id))?;
        outbox::enqueue(&mut tx, &patient, &[outbox::event_message(&patient, event_type::PATIENT_UPDATED)]).await?;
        tx.commit().await?;
        self.wakeup.wake();
        tracing::debug!(patient_id = %patient.id, "patient updated");
        Ok(patient)
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        let mut tx = self.repo.pool().begin().await?;
        let patient = PatientRepository::delete(&mut tx, id).await?.ok_or(Error::NotFound(id))?;
        // Its billing account is closed, and analytics keeps its events without the
        // name and email.
        let messages = [outbox::billing_close_message(&patient), outbox::deleted_event_message(&patient)];
        outbox::enqueue(&mut tx, &patient, &messages).await?;
        tx.commit().await?;
        self.wakeup.wake();
        tracing::debug!(patient_id = %patient.id, "patient deleted");
        Ok(())
    }
}
