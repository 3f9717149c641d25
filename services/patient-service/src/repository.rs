//! Patients in patient-service's own database.
//!
//! Writes take a connection that is inside a transaction opened by the service layer
//! (`service.rs`): work that must commit together with a patient change (the billing
//! request and the patient event of the outbox) is written on the same connection.

use std::sync::Arc;

use pulsetrack_common::group_commit::Batch;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    domain::{Patient, PatientInput},
    outbox::OutboxMessage,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    #[error("email already registered")]
    EmailTaken,
    /// Shared: one failed statement can fail a whole batch of creates.
    #[error(transparent)]
    Database(Arc<sqlx::Error>),
}

impl From<sqlx::Error> for RepoError {
    fn from(e: sqlx::Error) -> Self {
        RepoError::Database(Arc::new(e))
    }
}

fn map_unique(e: sqlx::Error) -> RepoError {
    if pulsetrack_common::error::unique_violation(&e) == Some("patients_email_key") {
        RepoError::EmailTaken
    } else {
        e.into()
    }
}

/// A patient to create, with the outbox rows that commit with it and the traceparent of
/// the request that asked (its rows' deliveries continue that trace).
#[derive(Debug, Clone)]
pub struct NewPatient {
    pub patient: Patient,
    pub outbox: Vec<OutboxMessage>,
    pub trace_parent: Option<String>,
}

/// Creates are group-committed (`pulsetrack_common::group_commit`): the creates that
/// arrive while one batch is written go in the next, with one statement and one commit.
impl Batch for PatientRepository {
    type Item = NewPatient;
    type Outcome = Result<(), RepoError>;

    async fn commit(&mut self, batch: Vec<NewPatient>) -> Vec<Self::Outcome> {
        let created = |inserted: bool| if inserted { Ok(()) } else { Err(RepoError::EmailTaken) };
        match self.insert_many(&batch).await {
            Ok(inserted) => inserted.into_iter().map(created).collect(),
            // Values Postgres refused fail only the create that sent them: the batch is
            // written again one create at a time.
            Err(e) if batch.len() > 1 && pulsetrack_common::error::refused_data(&e) => {
                tracing::warn!(error = %e, creates = batch.len(), "a batch of creates was refused: writing them one by one");
                let mut outcomes = Vec::with_capacity(batch.len());
                for new in &batch {
                    outcomes.push(match self.insert_many(std::slice::from_ref(new)).await {
                        Ok(inserted) => created(inserted.first().copied().unwrap_or(false)),
                        Err(e) => Err(e.into()),
                    });
                }
                outcomes
            }
            Err(e) => {
                let e = RepoError::from(e);
                vec![Err(e); batch.len()]
            }
        }
    }
}

/// A batch of creates as columns, for `unnest`.
#[derive(Default)]
struct NewColumns<'a> {
    id: Vec<Uuid>,
    name: Vec<&'a str>,
    email: Vec<&'a str>,
    address: Vec<&'a str>,
    date_of_birth: Vec<chrono::NaiveDate>,
    registered_date: Vec<chrono::NaiveDate>,
    trace_parent: Vec<Option<&'a str>>,
    outbox_patient: Vec<Uuid>,
    outbox_destination: Vec<&'static str>,
    outbox_payload: Vec<&'a [u8]>,
}

impl<'a> NewColumns<'a> {
    fn push(&mut self, new: &'a NewPatient) {
        let p = &new.patient;
        self.id.push(p.id);
        self.name.push(&p.name);
        self.email.push(&p.email);
        self.address.push(&p.address);
        self.date_of_birth.push(p.date_of_birth);
        self.registered_date.push(p.registered_date);
        self.trace_parent.push(new.trace_parent.as_deref());
        for message in &new.outbox {
            self.outbox_patient.push(p.id);
            self.outbox_destination.push(message.destination.as_str());
            self.outbox_payload.push(&message.payload);
        }
    }
}

const COLUMNS: &str = "id, name, email, address, date_of_birth, registered_date";
/// The text a search matches: name and email, exactly the expression of the trigram
/// index `patients_search_trgm` (migration 0007), so that the planner can use it.
const SEARCHED: &str = "(name || E'\\n' || email)";

#[derive(Clone)]
pub struct PatientRepository {
    pool: PgPool,
}

impl PatientRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn find(&self, id: Uuid) -> Result<Option<Patient>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM patients WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Up to `limit` patients matching `search`, in id (creation) order, from the
    /// `offset`th on or, with `after`, from the first one after that id (a keyset
    /// page: an index range however deep, where an offset reads and skips every row
    /// before it).
    pub async fn page(
        &self,
        search: Option<&str>,
        after: Option<Uuid>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Patient>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM patients \
             WHERE ($1::text IS NULL OR {SEARCHED} ILIKE $1) AND ($2::uuid IS NULL OR id > $2) \
             ORDER BY id LIMIT $3 OFFSET $4"
        )))
        .bind(search.map(like_pattern))
        .bind(after)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
    }

    /// How many patients match `search` (it reads every match: pages that need no total
    /// use keyset pagination instead).
    pub async fn count(&self, search: Option<&str>) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM patients WHERE $1::text IS NULL OR {SEARCHED} ILIKE $1"
        )))
        .bind(search.map(like_pattern))
        .fetch_one(&self.pool)
        .await
    }

    /// Inserts the patients of `batch` and their outbox rows in one statement: one
    /// round trip and one commit (a statement is its own transaction) for all of them.
    /// A patient whose email is taken (by an earlier patient, or one earlier in the
    /// batch) is skipped with its outbox rows; returns, per patient, whether it was
    /// inserted.
    pub async fn insert_many(&self, batch: &[NewPatient]) -> Result<Vec<bool>, sqlx::Error> {
        let mut columns = NewColumns::default();
        for new in batch {
            columns.push(new);
        }
        let inserted: Vec<Uuid> = sqlx::query_scalar(
            "WITH input AS ( \
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::date[], $6::date[], \
                                      $7::text[]) WITH ORDINALITY \
                     AS i(id, name, email, address, date_of_birth, registered_date, trace_parent, n)), \
             patient AS ( \
                 INSERT INTO patients (id, name, email, address, date_of_birth, registered_date) \
                 SELECT id, name, email, address, date_of_birth, registered_date FROM input ORDER BY n \
                 ON CONFLICT ON CONSTRAINT patients_email_key DO NOTHING \
                 RETURNING id), \
             queued AS ( \
                 INSERT INTO outbox (destination, aggregate_id, payload, trace_parent) \
                 SELECT m.destination, m.patient_id, m.payload, input.trace_parent \
                 FROM unnest($8::uuid[], $9::text[], $10::bytea[]) WITH ORDINALITY \
                     AS m(patient_id, destination, payload, n) \
                 JOIN patient ON patient.id = m.patient_id JOIN input ON input.id = m.patient_id \
                 ORDER BY m.n) \
             SELECT id FROM patient",
        )
        .bind(&columns.id)
        .bind(&columns.name)
        .bind(&columns.email)
        .bind(&columns.address)
        .bind(&columns.date_of_birth)
        .bind(&columns.registered_date)
        .bind(&columns.trace_parent)
        .bind(&columns.outbox_patient)
        .bind(&columns.outbox_destination)
        .bind(&columns.outbox_payload)
        .fetch_all(&self.pool)
        .await?;
        let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
        Ok(batch.iter().map(|new| inserted.contains(&new.patient.id)).collect())
    }

    /// `None` when no patient has this id. A `None` registered date keeps the stored one.
    pub async fn update(conn: &mut PgConnection, id: Uuid, input: &PatientInput) -> Result<Option<Patient>, RepoError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE patients SET name = $2, email = $3, address = $4, date_of_birth = $5, \
             registered_date = COALESCE($6, registered_date), updated_at = now() \
             WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(&input.name)
        .bind(&input.email)
        .bind(&input.address)
        .bind(input.date_of_birth)
        .bind(input.registered_date)
        .fetch_optional(conn)
        .await
        .map_err(map_unique)
    }

    /// The deleted patient, or `None` when no patient has this id.
    pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<Option<Patient>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("DELETE FROM patients WHERE id = $1 RETURNING {COLUMNS}")))
            .bind(id)
            .fetch_optional(conn)
            .await
    }
}

/// `%text%` with LIKE's metacharacters escaped, so a search is a plain substring match.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
