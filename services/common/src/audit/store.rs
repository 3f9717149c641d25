//! The trail in Postgres (`audit_log`): appending a batch chained onto the current
//! head in one INSERT, and reading entries back. Every statement on the table is here,
//! so that the column list and the chain's guard (its primary key) live in one place.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    entry::{Access, Entry, GENESIS, SEALED_WITH_HMAC},
    key::AuditKey,
    query::AuditQuery,
};

/// The last entry of the chain: its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) seq: i64,
    pub(super) hash: Vec<u8>,
}

pub(super) async fn read_head(pool: &PgPool) -> Result<Head, sqlx::Error> {
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
pub(super) async fn append(
    pool: &PgPool,
    service: &str,
    key: &AuditKey,
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
        let (columns, at, last) = chain(service, key, &base, accesses);
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
fn chain(service: &str, key: &AuditKey, base: &Head, accesses: &[&Access]) -> (Columns, DateTime<Utc>, Head) {
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
            subject: access.subject.clone(),
            detail: access.detail.clone(),
            count: access.count,
            version: SEALED_WITH_HMAC,
            prev_hash: prev,
            hash: Vec::new(),
        };
        prev = entry.seal(key).map(|seal| seal.to_vec()).unwrap_or_default();
        columns.push(entry, prev.clone());
    }
    (columns, at, Head { seq, hash: prev })
}

async fn insert(pool: &PgPool, service: &str, columns: &Columns, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (seq, at, service, actor_id, actor_role, action, patient_ids, outcome, request_id, \
                                client_addr, subject, detail, count, version, prev_hash, hash) \
         SELECT seq, $2, $3, actor_id, actor_role, action, \
                CASE WHEN ids = '' THEN '{}'::uuid[] ELSE string_to_array(ids, ',')::uuid[] END, \
                outcome, request_id, client_addr, subject, detail, count, $16, prev_hash, hash \
         FROM unnest($1::int8[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int2[], $9::text[], \
                     $10::text[], $13::text[], $14::text[], $15::int4[], $11::bytea[], $12::bytea[]) \
              AS e(seq, actor_id, actor_role, action, ids, outcome, request_id, client_addr, subject, detail, count, \
                   prev_hash, hash)",
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
    .bind(&columns.subject)
    .bind(&columns.detail)
    .bind(&columns.count)
    .bind(SEALED_WITH_HMAC)
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
    subject: Vec<Option<String>>,
    detail: Vec<Option<String>>,
    count: Vec<i32>,
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
        self.subject.push(entry.subject);
        self.detail.push(entry.detail);
        self.count.push(entry.count);
        self.prev_hash.push(entry.prev_hash);
        self.hash.push(hash);
    }
}

/// The columns of an [`Entry`], for the queries that read them.
macro_rules! entry_columns {
    () => {
        "seq, at, service, actor_id, actor_role, action, patient_ids, outcome, request_id, client_addr, subject, \
         detail, count, version, prev_hash, hash"
    };
}

/// The entries matching `query`, newest first.
pub(super) async fn entries(pool: &PgPool, query: &AuditQuery) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        entry_columns!(),
        " FROM audit_log \
         WHERE ($1::uuid IS NULL OR patient_ids @> ARRAY[$1::uuid]) \
           AND ($2::text IS NULL OR actor_id = $2) \
           AND ($3::timestamptz IS NULL OR at >= $3) \
           AND ($4::timestamptz IS NULL OR at < $4) \
         ORDER BY seq DESC LIMIT $5"
    ))
    .bind(query.patient_id)
    .bind(&query.actor)
    .bind(query.from)
    .bind(query.to)
    .bind(query.limit)
    .fetch_all(pool)
    .await
}

/// At most `limit` entries from sequence number `from` on, in chain order.
pub(super) async fn page(pool: &PgPool, from: i64, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", entry_columns!(), " FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2"))
        .bind(from)
        .bind(limit)
        .fetch_all(pool)
        .await
}
