//! The audit trail (HIPAA §164.312(b)): every access to patient data, who made it, how
//! it ended. Each service that holds patient data keeps its own trail in its own
//! database (`audit_log`, the migration in `services/common/sql/audit_log.sql`); the
//! gateway merges them for `GET /api/audit`.
//!
//! - **Not lost.** A handler answers only once its entry is committed
//!   ([`AuditLog::recorded`]); an entry that cannot be written turns the answer into a
//!   503, so no data leaves a service unrecorded.
//! - **Append-only.** The service's role may INSERT and SELECT, nothing else (`db.rs`
//!   revokes the rest), and a trigger refuses UPDATE, DELETE and TRUNCATE from anyone.
//! - **Tamper-evident.** Entry `n` stores `hash = SHA-256(fields of n ‖ hash of n-1)`
//!   with contiguous sequence numbers, so an edited, inserted or removed row breaks the
//!   chain; [`verify`] walks it (`<service> verify-audit`, `GET /api/audit/verify`).
//! - **Cheap.** One writer task per process takes every entry waiting and commits them
//!   as one batch (group commit) with one INSERT: under load a read costs a share of
//!   one round trip and one commit, not a commit of its own. The writer keeps the
//!   chain's head; the primary key on the sequence number keeps replicas writing to one
//!   database on one chain (a batch that loses the race is chained again).

use std::{fmt, net::IpAddr, time::Duration};

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    ApiError, FieldError,
    error::database_error,
    group_commit::{Batch, GroupCommit, GroupCommitError},
    identity::{Caller, Permission},
    validate::{self, Validator},
};

/// The table every audited service keeps.
pub const AUDIT_TABLE: &str = "audit_log";
/// The `prev_hash` of the first entry.
const GENESIS: [u8; 32] = [0; 32];
/// The most entries committed in one batch.
const BATCH_MAX: usize = 512;
/// Entries waiting for the writer; past this a request waits for room.
const QUEUE: usize = 8192;
/// How long a request waits for its entry to be committed before it answers 503.
const RECORD_TIMEOUT: Duration = Duration::from_secs(5);
/// The most entries one query returns.
pub const QUERY_LIMIT_MAX: i64 = 1000;
const QUERY_LIMIT_DEFAULT: i64 = 100;

/// What was done with patient data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    PatientList,
    PatientSearch,
    PatientRead,
    PatientCreate,
    PatientUpdate,
    PatientDelete,
    BillingRead,
    AnalyticsSummaryRead,
    AnalyticsEventsRead,
    AuditRead,
    AuditVerify,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::PatientList,
        Action::PatientSearch,
        Action::PatientRead,
        Action::PatientCreate,
        Action::PatientUpdate,
        Action::PatientDelete,
        Action::BillingRead,
        Action::AnalyticsSummaryRead,
        Action::AnalyticsEventsRead,
        Action::AuditRead,
        Action::AuditVerify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::PatientList => "PATIENT_LIST",
            Action::PatientSearch => "PATIENT_SEARCH",
            Action::PatientRead => "PATIENT_READ",
            Action::PatientCreate => "PATIENT_CREATE",
            Action::PatientUpdate => "PATIENT_UPDATE",
            Action::PatientDelete => "PATIENT_DELETE",
            Action::BillingRead => "BILLING_READ",
            Action::AnalyticsSummaryRead => "ANALYTICS_SUMMARY_READ",
            Action::AnalyticsEventsRead => "ANALYTICS_EVENTS_READ",
            Action::AuditRead => "AUDIT_READ",
            Action::AuditVerify => "AUDIT_VERIFY",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One access, as the handler knows it.
#[derive(Debug, Clone)]
pub struct Access {
    pub actor_id: String,
    pub actor_role: String,
    pub action: Action,
    pub patient_ids: Vec<Uuid>,
    /// The HTTP status the caller got.
    pub outcome: u16,
    pub request_id: Option<String>,
    pub client_addr: Option<IpAddr>,
}

impl Access {
    pub fn new(caller: &Caller, action: Action, patient_ids: Vec<Uuid>, outcome: StatusCode) -> Self {
        Self {
            actor_id: caller.identity.user_id.clone(),
            actor_role: caller.identity.role.as_str().to_string(),
            action,
            patient_ids,
            outcome: outcome.as_u16(),
            request_id: caller.request_id.clone(),
            client_addr: caller.client_addr,
        }
    }
}

/// One entry of the trail, as stored and as returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub service: String,
    pub actor_id: String,
    pub actor_role: String,
    pub action: String,
    pub patient_ids: Vec<Uuid>,
    pub outcome: i16,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// SHA-256, hex.
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub prev_hash: Vec<u8>,
    /// SHA-256 of the entry's fields and `prevHash`, hex.
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub hash: Vec<u8>,
}

impl Entry {
    /// The hash this entry must carry: its fields and the previous entry's hash, each
    /// length-prefixed so that no two different entries encode alike.
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(b"pulsetrack audit v1");
        field(&self.seq.to_be_bytes());
        field(&self.at.timestamp_micros().to_be_bytes());
        field(self.service.as_bytes());
        field(self.actor_id.as_bytes());
        field(self.actor_role.as_bytes());
        field(self.action.as_bytes());
        field(&(self.patient_ids.len() as u64).to_be_bytes());
        for id in &self.patient_ids {
            field(id.as_bytes());
        }
        field(&self.outcome.to_be_bytes());
        for optional in [&self.request_id, &self.client_addr] {
            match optional {
                Some(value) => {
                    field(&[1]);
                    field(value.as_bytes());
                }
                None => field(&[0]),
            }
        }
        field(&self.prev_hash);
        h.finalize().into()
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("odd hex length"));
        }
        text.as_bytes()
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|digits| u8::from_str_radix(digits, 16).ok())
                    .ok_or_else(|| D::Error::custom("not a hex string"))
            })
            .collect()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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
        sqlx::query_as(
            "SELECT seq, at, service, actor_id, actor_role, action, patient_ids, outcome, request_id, \
                    client_addr, prev_hash, hash \
             FROM audit_log \
             WHERE ($1::uuid IS NULL OR patient_ids @> ARRAY[$1::uuid]) \
               AND ($2::text IS NULL OR actor_id = $2) \
               AND ($3::timestamptz IS NULL OR at >= $3) \
               AND ($4::timestamptz IS NULL OR at < $4) \
             ORDER BY seq DESC LIMIT $5",
        )
        .bind(query.patient_id)
        .bind(&query.actor)
        .bind(query.from)
        .bind(query.to)
        .bind(query.limit)
        .fetch_all(&self.pool)
        .await
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
        let result = append(&self.pool, self.service, &mut self.head, &entries).await.map_err(|e| {
            for a in &accesses {
                tracing::error!(error = %e, actor_id = %a.actor_id, action = %a.action, patient_ids = ?a.patient_ids,
                    outcome = a.outcome, request_id = ?a.request_id, "audit entry not written");
            }
            AuditError::Write(e.to_string())
        });
        vec![result; accesses.len()]
    }
}

/// The last entry of the chain: its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    seq: i64,
    hash: Vec<u8>,
}

async fn read_head(pool: &PgPool) -> Result<Head, sqlx::Error> {
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(pool).await?;
    Ok(head.map_or(Head { seq: 0, hash: GENESIS.to_vec() }, |(seq, hash)| Head { seq, hash }))
}

/// How often an append is tried again after another writer took the sequence numbers
/// it chose.
const APPEND_TRIES: usize = 8;

/// Appends `accesses` to the chain with one INSERT (one round trip, one commit). The
/// head is the one this writer last wrote or read; the primary key guards the chain:
/// when another writer (a replica on the same database) appended meanwhile, the insert
/// hits an existing sequence number, nothing is written, and the batch is chained
/// again onto the head read afresh. After any other error the head is read again too.
async fn append(
    pool: &PgPool,
    service: &str,
    head: &mut Option<Head>,
    accesses: &[&Access],
) -> Result<(), sqlx::Error> {
    let mut tries = 0;
    loop {
        tries += 1;
        let base = match head.take() {
            Some(known) => known,
            None => read_head(pool).await?,
        };
        let (columns, at, last) = chain(service, &base, accesses);
        match insert(pool, service, &columns, at).await {
            Ok(()) => {
                *head = Some(last);
                return Ok(());
            }
            Err(e) if taken_sequence(&e) && tries < APPEND_TRIES => {
                tracing::debug!(seq = base.seq + 1, "another writer appended first: chaining onto its entries");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` is the primary key refusing a sequence number that is taken.
fn taken_sequence(e: &sqlx::Error) -> bool {
    crate::error::unique_violation(e) == Some("audit_log_pkey")
}

/// The batch's entries chained onto `base`, as columns, with their time and the new head.
fn chain(service: &str, base: &Head, accesses: &[&Access]) -> (Columns, DateTime<Utc>, Head) {
    // Microseconds, as Postgres stores them, so that the hash verifies after a read.
    let at = DateTime::<Utc>::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
    let mut columns = Columns::default();
    let (mut seq, mut prev) = (base.seq, base.hash.clone());
    for access in accesses {
        seq += 1;
        let entry = Entry {
            seq,
            at,
            service: service.to_string(),
            actor_id: access.actor_id.clone(),
            actor_role: access.actor_role.clone(),
            action: access.action.as_str().to_string(),
            patient_ids: access.patient_ids.clone(),
            outcome: i16::try_from(access.outcome).unwrap_or(i16::MAX),
            request_id: access.request_id.clone(),
            client_addr: access.client_addr.map(|a| a.to_string()),
            prev_hash: prev,
            hash: Vec::new(),
        };
        prev = entry.compute_hash().to_vec();
        columns.push(entry, prev.clone());
    }
    (columns, at, Head { seq, hash: prev })
}

async fn insert(pool: &PgPool, service: &str, columns: &Columns, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (seq, at, service, actor_id, actor_role, action, patient_ids, outcome, request_id, \
                                client_addr, prev_hash, hash) \
         SELECT seq, $2, $3, actor_id, actor_role, action, \
                CASE WHEN ids = '' THEN '{}'::uuid[] ELSE string_to_array(ids, ',')::uuid[] END, \
                outcome, request_id, client_addr, prev_hash, hash \
         FROM unnest($1::int8[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int2[], $9::text[], \
                     $10::text[], $11::bytea[], $12::bytea[]) \
              AS e(seq, actor_id, actor_role, action, ids, outcome, request_id, client_addr, prev_hash, hash)",
    )
    .bind(&columns.seq)
    .bind(at)
    .bind(service)
    .bind(&columns.actor_id)
    .bind(&columns.actor_role)
    .bind(&columns.action)
    .bind(&columns.patient_ids)
    .bind(&columns.outcome)
    .bind(&columns.request_id)
    .bind(&columns.client_addr)
    .bind(&columns.prev_hash)
    .bind(&columns.hash)
    .execute(pool)
    .await
    .map(|_| ())
}

/// A batch as columns, for one `INSERT ... SELECT FROM unnest(...)`.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    actor_id: Vec<String>,
    actor_role: Vec<String>,
    action: Vec<String>,
    patient_ids: Vec<String>,
    outcome: Vec<i16>,
    request_id: Vec<Option<String>>,
    client_addr: Vec<Option<String>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, entry: Entry, hash: Vec<u8>) {
        self.seq.push(entry.seq);
        self.actor_id.push(entry.actor_id);
        self.actor_role.push(entry.actor_role);
        self.action.push(entry.action);
        self.patient_ids.push(entry.patient_ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","));
        self.outcome.push(entry.outcome);
        self.request_id.push(entry.request_id);
        self.client_addr.push(entry.client_addr);
        self.prev_hash.push(entry.prev_hash);
        self.hash.push(hash);
    }
}

/// The result of walking a trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub service: String,
    /// Entries checked.
    pub entries: i64,
    pub intact: bool,
    /// The first entry that breaks the chain, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The hash of the last entry: kept somewhere else, it also shows that no entry was
    /// removed from the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}

/// Walks `service`'s trail in order and checks every entry: contiguous sequence
/// numbers from 1, each `prev_hash` equal to the hash before it, each hash equal to the
/// hash of its fields.
pub async fn verify(pool: &PgPool, service: &str) -> Result<Verification, sqlx::Error> {
    const PAGE: i64 = 5000;
    let mut report = Verification {
        service: service.to_string(),
        entries: 0,
        intact: true,
        broken_at: None,
        reason: None,
        head: None,
    };
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_vec();
    loop {
        let page: Vec<Entry> = sqlx::query_as(
            "SELECT seq, at, service, actor_id, actor_role, action, patient_ids, outcome, request_id, \
                    client_addr, prev_hash, hash \
             FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        let last_page = (page.len() as i64) < PAGE;
        for entry in page {
            let broken = if entry.seq != expected_seq {
                Some(format!("entry {expected_seq} is missing (the next one is {})", entry.seq))
            } else if entry.prev_hash != prev {
                Some("its prev_hash is not the previous entry's hash".to_string())
            } else if entry.hash != entry.compute_hash() {
                Some("its hash does not match its contents (the entry was changed)".to_string())
            } else {
                None
            };
            if let Some(reason) = broken {
                report.intact = false;
                report.broken_at = Some(expected_seq);
                report.reason = Some(reason);
                return Ok(report);
            }
            report.entries += 1;
            expected_seq += 1;
            prev = entry.hash;
        }
        if last_page {
            break;
        }
    }
    report.head = (report.entries > 0).then(|| hex(&prev));
    Ok(report)
}

/// `GET /audit` query, as raw strings so that a bad value is a 400 naming it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQueryParams {
    /// Entries about this patient.
    #[param(value_type = Option<Uuid>)]
    pub patient_id: Option<String>,
    /// Entries of this account id.
    #[param(schema_with = crate::openapi::actor)]
    pub actor: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// At most this many entries (1 to 1000, default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// A validated audit query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub patient_id: Option<Uuid>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
}

fn timestamp(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 timestamp (2026-12-05T10:00:00Z)".to_string())
}

impl AuditQueryParams {
    pub fn validate(self) -> Result<AuditQuery, Vec<FieldError>> {
        let mut v = Validator::new();
        let patient_id = v.field(
            "patientId",
            self.patient_id.map(|p| Uuid::parse_str(p.trim()).map_err(|_| "must be a UUID".to_string())).transpose(),
        );
        let actor = v.field(
            "actor",
            self.actor
                .map(|a| {
                    let a = a.trim().to_string();
                    if a.is_empty() || a.chars().count() > 200 {
                        Err("must be 1 to 200 characters".to_string())
                    } else {
                        validate::plain(&a).map(|()| a)
                    }
                })
                .transpose(),
        );
        let from = v.field("from", self.from.as_deref().map(timestamp).transpose());
        let to = v.field("to", self.to.as_deref().map(timestamp).transpose());
        let limit = v.field(
            "limit",
            self.limit.map_or(Ok(QUERY_LIMIT_DEFAULT), |l| match l.trim().parse::<i64>() {
                Ok(n) if (1..=QUERY_LIMIT_MAX).contains(&n) => Ok(n),
                _ => Err(format!("must be an integer from 1 to {QUERY_LIMIT_MAX}")),
            }),
        );
        v.finish()?;
        Ok(AuditQuery {
            patient_id: patient_id.flatten(),
            actor: actor.flatten(),
            from: from.flatten(),
            to: to.flatten(),
            limit: limit.unwrap_or(QUERY_LIMIT_DEFAULT),
        })
    }
}

/// `GET /audit` (the entries, newest first) and `GET /audit/verify` (the chain walked),
/// both for callers holding `audit:read`; both are themselves audited.
pub fn routes(audit: AuditLog) -> Router {
    Router::new().route("/audit", get(list)).route("/audit/verify", get(check)).with_state(audit)
}

async fn list(
    State(audit): State<AuditLog>,
    caller: Caller,
    query: Result<Query<AuditQueryParams>, QueryRejection>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    let mut patients = Vec::new();
    let result = async {
        caller.require(Permission::AuditRead)?;
        let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let query = params.validate().map_err(ApiError::validation)?;
        patients.extend(query.patient_id);
        audit.query(&query).await.map_err(|e| database_error(&e))
    }
    .await;
    audit.recorded(&caller, Action::AuditRead, StatusCode::OK, patients, result).await.map(Json)
}

async fn check(State(audit): State<AuditLog>, caller: Caller) -> Result<Json<Verification>, ApiError> {
    let result = async {
        caller.require(Permission::AuditRead)?;
        verify(&audit.pool, audit.service).await.map_err(|e| database_error(&e))
    }
    .await;
    audit.recorded(&caller, Action::AuditVerify, StatusCode::OK, Vec::new(), result).await.map(Json)
}

/// `<binary> verify-audit`: walks the service's trail (database from the service's
/// own environment), prints the report as JSON and exits 0 when the chain is intact,
/// 1 when it is broken, 2 when it cannot be read. Returns when not asked for.
pub async fn exit_if_verify_requested(
    service: &'static str,
    database: impl FnOnce() -> Result<crate::db::DatabaseConfig, crate::config::ConfigError>,
) {
    if std::env::args().nth(1).as_deref() != Some("verify-audit") {
        return;
    }
    let code = match database() {
        Err(e) => {
            eprintln!("{service}: {e}");
            2
        }
        Ok(config) => match crate::db::pool(&config) {
            Err(e) => {
                eprintln!("{service}: cannot reach the database: {e}");
                2
            }
            Ok(pool) => match verify(&pool, service).await {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
                    if report.intact { 0 } else { 1 }
                }
                Err(e) => {
                    eprintln!("{service}: cannot read the audit trail: {e}");
                    2
                }
            },
        },
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            seq: 1,
            at: DateTime::<Utc>::from_timestamp_micros(1_764_000_000_123_456).expect("time"),
            service: "patient-service".into(),
            actor_id: "u1".into(),
            actor_role: "CLINICIAN".into(),
            action: Action::PatientRead.as_str().into(),
            patient_ids: vec![Uuid::nil()],
            outcome: 200,
            request_id: Some("r1".into()),
            client_addr: None,
            prev_hash: GENESIS.to_vec(),
            hash: Vec::new(),
        }
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = entry().compute_hash();
        let changed: Vec<Entry> = vec![
            Entry { seq: 2, ..entry() },
            Entry { at: entry().at + chrono::Duration::microseconds(1), ..entry() },
            Entry { service: "billing-service".into(), ..entry() },
            Entry { actor_id: "u2".into(), ..entry() },
            Entry { actor_role: "ADMIN".into(), ..entry() },
            Entry { action: "PATIENT_LIST".into(), ..entry() },
            Entry { patient_ids: vec![], ..entry() },
            Entry { outcome: 404, ..entry() },
            Entry { request_id: None, ..entry() },
            Entry { client_addr: Some("10.0.0.1".into()), ..entry() },
            Entry { prev_hash: vec![1; 32], ..entry() },
            // Moving bytes between adjacent fields changes the hash too.
            Entry { actor_id: "u".into(), actor_role: "1CLINICIAN".into(), ..entry() },
        ];
        for e in changed {
            assert_ne!(e.compute_hash(), base, "{e:?}");
        }
        assert_eq!(entry().compute_hash(), base);
    }

    #[test]
    fn actions_have_distinct_names_matching_their_json() {
        for action in Action::ALL {
            let json = serde_json::to_string(&action).expect("serializes");
            assert_eq!(json, format!("\"{}\"", action.as_str()));
        }
    }

    #[test]
    fn query_parameters_are_checked_and_named() {
        let q = |p: AuditQueryParams| p.validate().map_err(|e| e.into_iter().map(|f| f.field).collect::<Vec<_>>());
        assert_eq!(q(AuditQueryParams::default()).expect("defaults").limit, QUERY_LIMIT_DEFAULT);
        let bad = AuditQueryParams {
            patient_id: Some("nope".into()),
            actor: Some("a\u{202E}b".into()),
            from: Some("yesterday".into()),
            to: None,
            limit: Some("0".into()),
        };
        assert_eq!(q(bad).expect_err("bad"), ["patientId", "actor", "from", "limit"]);
    }

    #[test]
    fn hashes_travel_as_hex() {
        let mut e = entry();
        e.hash = e.compute_hash().to_vec();
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["hash"].as_str().map(str::len), Some(64));
        let back: Entry = serde_json::from_value(json).expect("back");
        assert_eq!(back, e);
    }
}
