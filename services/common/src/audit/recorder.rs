//! The handle a service records through: a handler's access waits for its entry to be
//! committed, while one writer task per process commits every entry waiting as one
//! batch (group commit), so that under load a read costs a share of one commit.

use std::time::Duration;

use axum::http::StatusCode;
use sqlx::PgPool;
use uuid::Uuid;

use tokio::sync::watch;

use super::{
    anchoring::anchor_every,
    config::AuditConfig,
    entry::{Access, Action, Entry},
    key::AuditKey,
    query::AuditQuery,
    store::{self, Head},
    verify::{Verification, verify},
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

/// A service's audit trail: the writer's queue, the pool it reads from, and its key
/// and anchors.
#[derive(Clone)]
pub struct AuditLog {
    service: &'static str,
    writer: GroupCommit<Writer>,
    pool: PgPool,
    config: AuditConfig,
}

impl AuditLog {
    /// Starts the writer for `service`'s trail on `pool`, and the task that anchors
    /// the head it writes.
    pub fn spawn(pool: PgPool, service: &'static str, config: &AuditConfig) -> Self {
        let (heads, watching) = watch::channel(None);
        let writer = Writer { pool: pool.clone(), service, key: config.key.clone(), head: None, heads };
        tokio::spawn(anchor_every(
            config.anchor_interval,
            (service, pool.clone()),
            config.key.clone(),
            config.anchors.clone(),
            watching,
        ));
        Self { service, writer: GroupCommit::spawn(writer, BATCH_MAX, QUEUE), pool, config: config.clone() }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Walks the trail against its newest anchor.
    pub async fn verify(&self) -> Result<Verification, super::verify::VerifyError> {
        verify(&self.pool, self.service, &self.config).await
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
        self.recorded_as(Access::new(caller, action, patient_ids, ok), ok, result).await
    }

    /// Records `access` with the outcome of `result` (`ok` when it succeeded, the
    /// error's status otherwise), and returns the result once the entry is committed.
    pub async fn recorded_as<T>(
        &self,
        mut access: Access,
        ok: StatusCode,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        access.outcome = match &result {
            Ok(_) => ok,
            Err(e) => e.status,
        }
        .as_u16();
        self.record(access).await?;
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
    key: AuditKey,
    /// The chain's last entry as this writer knows it; `None`: read it before appending.
    head: Option<Head>,
    /// The head this writer last committed, for the anchoring task.
    heads: watch::Sender<Option<Head>>,
}

impl Batch for Writer {
    type Item = Access;
    type Outcome = Result<(), AuditError>;

    async fn commit(&mut self, accesses: Vec<Access>) -> Vec<Self::Outcome> {
        let entries: Vec<&Access> = accesses.iter().collect();
        let result = store::append(&self.pool, self.service, &self.key, &mut self.head, &entries).await;
        if result.is_ok() {
            self.heads.send_replace(self.head.clone());
        }
        let result = result.map_err(|e| {
            for a in &accesses {
                tracing::error!(error = %e, actor_id = %a.actor_id, action = %a.action, patient_ids = ?a.patient_ids,
                    outcome = a.outcome, request_id = ?a.request_id, "audit entry not written");
            }
            AuditError::Write(e.to_string())
        });
        vec![result; accesses.len()]
    }
}
