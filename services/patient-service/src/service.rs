//! Use cases: each patient change and the outbox rows it implies (the billing request,
//! the `PatientEvent`) commit in one database transaction. The HTTP response never
//! waits on billing or Kafka: the outbox dispatcher delivers after the commit.

use pulsetrack_proto::event_type;
use uuid::Uuid;

use crate::{
    domain::{ListParams, Patient, PatientInput, PatientPage},
    error::Error,
    outbox::{self, Wakeup},
    repository::PatientRepository,
};

#[derive(Clone)]
pub struct PatientService {
    repo: PatientRepository,
    wakeup: Wakeup,
}

impl PatientService {
    pub fn new(repo: PatientRepository, wakeup: Wakeup) -> Self {
        Self { repo, wakeup }
    }

    pub async fn get(&self, id: Uuid) -> Result<Patient, Error> {
        self.repo.find(id).await?.ok_or(Error::NotFound(id))
    }

    pub async fn list(&self, params: ListParams) -> Result<PatientPage, Error> {
        let (content, total_elements) = self.repo.list(&params).await?;
        let total_pages = (total_elements + params.size - 1) / params.size;
        Ok(PatientPage { content, page: params.page, size: params.size, total_elements, total_pages })
    }

    pub async fn create(&self, input: PatientInput) -> Result<Patient, Error> {
        let patient = Patient {
            id: Uuid::now_v7(),
            name: input.name,
            email: input.email,
            address: input.address,
            date_of_birth: input.date_of_birth,
            // Validation fills it on create (today when the client sent none).
            registered_date: input.registered_date.unwrap_or_else(|| chrono::Utc::now().date_naive()),
        };
        let messages =
            [outbox::billing_message(&patient), outbox::event_message(&patient, event_type::PATIENT_CREATED)];
        self.repo.insert_with_outbox(&patient, &messages).await?;
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
