//! The handle a service records through: a handler's access waits for its entry to be
//! committed, while one writer task per process commits every entry waiting as one
//! batch (group commit), so that under load a read costs a share of one commit.

use std::time::Duration;

use axum::http::StatusCode;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    entry::{Access, Action, Entry},
    query::AuditQuery,
    store::{self, Head},
};
use crate::{
    ApiError,
    group_commit::{Batch, GroupCommit, GroupCommitError},
    identity::Caller,
};

/// The most entries committed in one batch.
const BATCH_MAX: usize = 512;
/// Entries waiting for the writer; past this a request waits for room.
const QUEUE: usize = 8192;
/// How long a request waits for its entry to be committed before it answers 503.
const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an entry could not be recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("the audit trail cannot be written: {0}")]
    Write(String),
    /// The writer stopped, or did not commit the entry in time.
    #[error("audit entry not recorded: {0}")]
    Queue(#[from] GroupCommitError),
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        tracing::error!(error = %e, "access refused: its audit entry could not be recorded");
        ApiError::service_unavailable("the audit trail is unavailable, retry later").retry_after(1)
    }
}

/// A service's audit trail: the writer's queue and the pool it reads from.
#[derive(Clone)]
pub struct AuditLog {
    service: &'static str,
    writer: GroupCommit<Writer>,
    pool: PgPool,
}

impl AuditLog {
    /// Starts the writer for `service`'s trail on `pool`.
    pub fn spawn(pool: PgPool, service: &'static str) -> Self {
        let writer = Writer { pool: pool.clone(), service, head: None };
        Self { service, writer: GroupCommit::spawn(writer, BATCH_MAX, QUEUE), pool }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The pool the trail is read from, for `GET /audit/verify` to walk it.
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records `access`; returns once it is committed.
    pub async fn record(&self, access: Access) -> Result<(), AuditError> {
        self.writer.submit(access, RECORD_TIMEOUT).await?
    }

    /// Records the outcome of a handler's `result` (`ok` when it succeeded, the error's
    /// status otherwise) and returns the result once the entry is committed; when the
    /// entry cannot be written the caller gets 503 instead of the data.
    pub async fn recorded<T>(
        &self,
        caller: &Caller,
        action: Action,
        ok: StatusCode,
        patient_ids: Vec<Uuid>,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let outcome = match &result {
            Ok(_) => ok,
            Err(e) => e.status,
        };
        self.record(Access::new(caller, action, patient_ids, outcome)).await?;
        result
    }

    /// The entries matching `query`, newest first.
    pub async fn query(&self, query: &AuditQuery) -> Result<Vec<Entry>, sqlx::Error> {
        store::entries(&self.pool, query).await
    }
}

/// The writer: commits every entry waiting (up to [`BATCH_MAX`]) as one chained
/// batch; all of them succeed or fail together.
struct Writer {
    pool: PgPool,
    service: &'static str,
    /// The chain's last entry as this writer knows it; `None`: read it before appending.
    head: Option<Head>,
}

impl Batch for Writer {
    type Item = Access;
    type Outcome = Result<(), AuditError>;

    async fn commit(&mut self, accesses: Vec<Access>) -> Vec<Self::Outcome> {
        let entries: Vec<&Access> = accesses.iter().collect();
        let result = store::append(&self.pool, self.service, &mut self.head, &entries).await.map_err(|e| {
            for a in &accesses {
                tracing::error!(error = %e, actor_id = %a.actor_id, action = %a.action, patient_ids = ?a.patient_ids,
                    outcome = a.outcome, request_id = ?a.request_id, "audit entry not written");
            }
            AuditError::Write(e.to_string())
        });
        vec![result; accesses.len()]
    }
}
