//! The audit trail (HIPAA §164.312(b) and (c)): every access to patient data and every
//! security event, who made it, how it ended. Each audited service keeps its own trail
//! in its own database (`audit_log`, the migrations in `services/common/sql/`); the
//! gateway merges them for `GET /api/audit`. [`Action`] lists what is recorded, and in
//! which trail.
//!
//! - **Not lost.** A handler answers only once its entry is committed
//!   ([`AuditLog::recorded`]); an entry that cannot be written turns the answer into a
//!   503, so no data leaves a service unrecorded.
//! - **Append-only.** The service's role may INSERT and SELECT, nothing else (`db`
//!   revokes the rest), and a trigger refuses UPDATE, DELETE and TRUNCATE from anyone.
//! - **Sealed with a key the database does not hold.** Entry `n` stores `hash` =
//!   HMAC-SHA256(`AUDIT_KEY`'s entry key, fields of n ‖ hash of n-1) with contiguous
//!   sequence numbers ([`key`], [`entry`]): whoever can write the table, its owner
//!   included, cannot add, change or re-chain an entry that verifies.
//! - **Anchored outside.** Every interval (at most a minute) the writer signs the head
//!   it committed (Ed25519, a key derived from the same secret) and appends it where
//!   the service may only add ([`Anchors`]: a file in the data folder, an S3 bucket
//!   with Object Lock); [`verify`] checks the chain against the newest anchor and names
//!   what it finds ([`Breach`]).
//! - **Cheap.** One writer task per process takes every entry waiting and commits them
//!   as one batch (group commit) with one INSERT: under load a read costs a share of
//!   one round trip and one commit, not a commit of its own. The writer keeps the
//!   chain's head; the primary key on the sequence number keeps replicas writing to one
//!   database on one chain (a batch that loses the race is chained again).
//!
//! One layer per file: `entry` (what is recorded and how it is sealed), `key` (the
//! keys), `hex`, `recorder` (the handle handlers record through, and its batching writer),
//! `store` (the SQL), `anchor` (signed heads), `anchoring` (the task that writes them),
//! `anchors` and `anchors_s3` (where they are kept), `query` (the `GET /audit`
//! filter), `verify` (the chain walked), `config` (the settings) and `routes` (the
//! HTTP endpoints).

mod anchor;
mod anchoring;
mod anchors;
mod anchors_s3;
mod config;
mod entry;
mod hex;
mod key;
mod query;
mod recorder;
mod refusals;
mod routes;
mod store;
mod verify;

pub use anchor::{Anchor, AnchorError};
pub use anchors::{Anchors, NewestAnchor};
pub use anchors_s3::S3Anchors;
pub use config::{AuditConfig, MAX_ANCHOR_INTERVAL};
pub use entry::{ANONYMOUS, Access, Action, Entry, NO_ROLE, SERVICE_ROLE};
pub use hex::hex;
pub use key::AuditKey;
pub use query::{AuditQuery, AuditQueryParams, QUERY_LIMIT_MAX};
pub use recorder::{AuditError, AuditLog};
pub use refusals::{MAX_REFUSALS_PER_REPORT, REFUSAL_STATUSES, REFUSALS_PATH, RefusalCount, RefusalReport, minute_of};
pub use routes::{list_as, routes, verify_as};
pub use verify::{Breach, Verification, VerifyError, exit_if_verify_requested, verify};

/// The table every audited service keeps; append-only (the services name it among
/// their database's append-only tables, [`crate::db::DatabaseConfig::with_append_only`]).
pub const AUDIT_TABLE: &str = "audit_log";

/// An audited service's database (`default_db` unless the settings name another), its
/// audit trail append-only for the service's role.
pub fn audited_database(
    settings: &crate::settings::Database<crate::config::Raw>,
    default_db: &str,
) -> Result<crate::db::DatabaseConfig, crate::config::ConfigError> {
    Ok(crate::db::DatabaseConfig::from_settings(settings, default_db)?.with_append_only(&[AUDIT_TABLE]))
}
