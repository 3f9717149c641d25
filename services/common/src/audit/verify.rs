//! Proof that the trail was not tampered with: walking the chain from its first entry
//! and checking every link, for `GET /audit/verify` and for `<service> verify-audit`
//! run by an operator against the service's database.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::{
    entry::{Entry, GENESIS, hex},
    store,
};
use crate::{
    config::ConfigError,
    db::{self, DatabaseConfig},
};

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
        let page: Vec<Entry> = store::page(pool, expected_seq, PAGE).await?;
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

/// `<binary> verify-audit`: walks the service's trail (database from the service's
/// own environment), prints the report as JSON and exits 0 when the chain is intact,
/// 1 when it is broken, 2 when it cannot be read. Returns when not asked for.
pub async fn exit_if_verify_requested(
    service: &'static str,
    database: impl FnOnce() -> Result<DatabaseConfig, ConfigError>,
) {
    if std::env::args().nth(1).as_deref() != Some("verify-audit") {
        return;
    }
    let code = match database() {
        Err(e) => {
            eprintln!("{service}: {e}");
            2
        }
        Ok(config) => match db::pool(&config) {
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
