//! Billing accounts in billing-service's own database.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingAccount {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub name: String,
    pub email: String,
    /// ACTIVE, SUSPENDED or CLOSED.
    #[schema(example = "ACTIVE")]
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// An account to open: the patient's id, name and email, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAccount<'a> {
    pub patient_id: Uuid,
    pub name: &'a str,
    pub email: &'a str,
}

#[derive(Clone)]
pub struct AccountRepository {
    pool: PgPool,
}

impl AccountRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The patient's account, created ACTIVE if it does not exist. One statement, so
    /// concurrent or repeated calls for one patient all get the same account.
    pub async fn open(&self, patient_id: Uuid, name: &str, email: &str) -> Result<BillingAccount, sqlx::Error> {
        // An existing account (a closed one included) is returned as it is.
        self.upsert(patient_id, name, email, "ACTIVE", "patient_id = EXCLUDED.patient_id").await
    }

    /// The accounts of many patients (each patient id once), created ACTIVE where none
    /// exists, in one statement: one commit for a whole outbox batch. The accounts come
    /// back in no particular order.
    pub async fn open_many(&self, accounts: &[NewAccount<'_>]) -> Result<Vec<BillingAccount>, sqlx::Error> {
        let ids: Vec<Uuid> = accounts.iter().map(|_| Uuid::now_v7()).collect();
        let patients: Vec<Uuid> = accounts.iter().map(|a| a.patient_id).collect();
        let names: Vec<&str> = accounts.iter().map(|a| a.name).collect();
        let emails: Vec<&str> = accounts.iter().map(|a| a.email).collect();
        sqlx::query_as(
            "INSERT INTO billing_accounts (id, patient_id, name, email, status) \
             SELECT id, patient_id, name, email, 'ACTIVE' \
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS a(id, patient_id, name, email) \
             ON CONFLICT (patient_id) DO UPDATE SET patient_id = EXCLUDED.patient_id \
             RETURNING id, patient_id, name, email, status, created_at",
        )
        .bind(&ids)
        .bind(&patients)
        .bind(&names)
        .bind(&emails)
        .fetch_all(&self.pool)
        .await
    }

    /// The patient's account, CLOSED; created CLOSED when the close arrives before the
    /// open (which then finds it and leaves it closed). One statement, idempotent.
    pub async fn close(&self, patient_id: Uuid, name: &str, email: &str) -> Result<BillingAccount, sqlx::Error> {
        self.upsert(patient_id, name, email, "CLOSED", "status = 'CLOSED'").await
    }

    /// Inserts the account with `status`, or applies `on_conflict` (an `UPDATE SET`
    /// list, one of the two literals above) to the patient's existing one.
    async fn upsert(
        &self,
        patient_id: Uuid,
        name: &str,
        email: &str,
        status: &str,
        on_conflict: &'static str,
    ) -> Result<BillingAccount, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO billing_accounts (id, patient_id, name, email, status) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (patient_id) DO UPDATE SET {on_conflict} \
             RETURNING id, patient_id, name, email, status, created_at"
        )))
        .bind(Uuid::now_v7())
        .bind(patient_id)
        .bind(name)
        .bind(email)
        .bind(status)
        .fetch_one(&self.pool)
        .await
    }

    pub async fn find_by_patient(&self, patient_id: Uuid) -> Result<Option<BillingAccount>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, patient_id, name, email, status, created_at FROM billing_accounts WHERE patient_id = $1",
        )
        .bind(patient_id)
        .fetch_optional(&self.pool)
        .await
    }
}
