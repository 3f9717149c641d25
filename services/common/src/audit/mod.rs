//! The audit trail (HIPAA §164.312(b)): every access to patient data, who made it, how
//! it ended. Each service that holds patient data keeps its own trail in its own
//! database (`audit_log`, the migration in `services/common/sql/audit_log.sql`); the
//! gateway merges them for `GET /api/audit`.
//!
//! - **Not lost.** A handler answers only once its entry is committed
//!   ([`AuditLog::recorded`]); an entry that cannot be written turns the answer into a
//!   503, so no data leaves a service unrecorded.
//! - **Append-only.** The service's role may INSERT and SELECT, nothing else (`db`
//!   revokes the rest), and a trigger refuses UPDATE, DELETE and TRUNCATE from anyone.
//! - **Tamper-evident.** Entry `n` stores `hash = SHA-256(fields of n ‖ hash of n-1)`
//!   with contiguous sequence numbers, so an edited, inserted or removed row breaks the
//!   chain; [`verify`] walks it (`<service> verify-audit`, `GET /api/audit/verify`).
//! - **Cheap.** One writer task per process takes every entry waiting and commits them
//!   as one batch (group commit) with one INSERT: under load a read costs a share of
//!   one round trip and one commit, not a commit of its own. The writer keeps the
//!   chain's head; the primary key on the sequence number keeps replicas writing to one
//!   database on one chain (a batch that loses the race is chained again).
//!
//! One layer per file: `entry` (what is recorded and how it is hashed), `recorder`
//! (the handle handlers record through, and its batching writer), `store` (the SQL),
//! `query` (the `GET /audit` filter), `verify` (the chain walked) and `routes` (the
//! HTTP endpoints).

mod entry;
mod query;
mod recorder;
mod routes;
mod store;
mod verify;

pub use entry::{Access, Action, Entry, hex};
pub use query::{AuditQuery, AuditQueryParams, QUERY_LIMIT_MAX};
pub use recorder::{AuditError, AuditLog};
pub use routes::routes;
pub use verify::{Verification, exit_if_verify_requested, verify};

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
