//! Use cases: each patient change runs in one database transaction. This is the seam
//! for the transactional outbox: the billing request and the `PatientEvent` for a
//! change will be inserted here, on the same transaction as the change itself.

use uuid::Uuid;

use crate::{
    domain::{ListParams, Patient, PatientInput, PatientPage},
    error::Error,
    repository::PatientRepository,
};

#[derive(Clone)]
pub struct PatientService {
    repo: PatientRepository,
}

impl PatientService {
    pub fn new(repo: PatientRepository) -> Self {
        Self { repo }
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
        let mut tx = self.repo.pool().begin().await?;
        let patient = PatientRepository::insert(&mut tx, &input).await?;
        tx.commit().await?;
        tracing::info!(patient_id = %patient.id, "patient created");
        Ok(patient)
    }

    pub async fn update(&self, id: Uuid, input: PatientInput) -> Result<Patient, Error> {
        let mut tx = self.repo.pool().begin().await?;
        let patient = PatientRepository::update(&mut tx, id, &input).await?.ok_or(Error::NotFound(id))?;
        tx.commit().await?;
        tracing::info!(patient_id = %patient.id, "patient updated");
        Ok(patient)
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        let mut tx = self.repo.pool().begin().await?;
        let patient = PatientRepository::delete(&mut tx, id).await?.ok_or(Error::NotFound(id))?;
        tx.commit().await?;
        tracing::info!(patient_id = %patient.id, "patient deleted");
        Ok(())
    }
}
