//! Patients in patient-service's own database.
//!
//! Writes take a connection that is inside a transaction opened by the service layer
//! (`service.rs`): work that must commit together with a patient change (the billing
//! request and the patient event of the outbox) is written on the same connection.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    domain::{Patient, PatientInput},
    outbox::OutboxMessage,
};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn map_unique(e: sqlx::Error) -> RepoError {
    if pulsetrack_common::error::unique_violation(&e) == Some("patients_email_key") {
        RepoError::EmailTaken
    } else {
        RepoError::Database(e)
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

    /// Inserts `patient` and its outbox rows in one statement: one round trip and one
    /// commit (a statement is its own transaction), all or nothing.
    pub async fn insert_with_outbox(&self, patient: &Patient, outbox: &[OutboxMessage]) -> Result<(), RepoError> {
        let destinations: Vec<&str> = outbox.iter().map(|m| m.destination.as_str()).collect();
        let payloads: Vec<&[u8]> = outbox.iter().map(|m| m.payload.as_slice()).collect();
        sqlx::query(
            "WITH patient AS ( \
                 INSERT INTO patients (id, name, email, address, date_of_birth, registered_date) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id), \
             queued AS ( \
                 INSERT INTO outbox (destination, aggregate_id, payload, trace_parent) \
                 SELECT m.destination, patient.id, m.payload, $9 \
                 FROM patient, unnest($7::text[], $8::bytea[]) WITH ORDINALITY AS m(destination, payload, n) \
                 ORDER BY m.n) \
             SELECT id FROM patient",
        )
        .bind(patient.id)
        .bind(&patient.name)
        .bind(&patient.email)
        .bind(&patient.address)
        .bind(patient.date_of_birth)
        .bind(patient.registered_date)
        .bind(&destinations)
        .bind(&payloads)
        .bind(pulsetrack_common::trace_context::current_traceparent())
        .fetch_one(&self.pool)
        .await
        .map(|_| ())
        .map_err(map_unique)
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
