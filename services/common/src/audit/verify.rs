//! Proof that the trail was not tampered with: walking the chain from its first entry,
//! checking every seal with the service's key, and the end of the chain against the
//! newest anchor kept outside the database. For `GET /audit/verify` and for
//! `<service> verify-audit` run by an operator.
//!
//! What can go wrong, by name ([`Breach`]):
//! - `entry-forged`: an entry whose seal is not the one the key gives (changed in
//!   place, inserted, re-chained, or appended by someone without the key);
//! - `rewritten`: entries missing from the middle, or an anchored entry that is not
//!   the one anchored (the chain was replaced);
//! - `truncated`: the chain ends before the newest anchor;
//! - `anchor-missing`: entries older than the anchoring deadline that no anchor covers;
//! - `anchor-forged`: anchors where only the service adds that it did not sign (or, in
//!   S3, under a name that is not their own): someone else writes there.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::{
    anchor::{Anchor, AnchorError},
    config::AuditConfig,
    entry::{Entry, GENESIS, SEALED_WITH_HASH, SEALED_WITH_HMAC},
    hex::hex,
    store,
};
use crate::{
    config::ConfigError,
    db::{self, DatabaseConfig},
};

/// How a trail was found tampered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Breach {
    EntryForged,
    Rewritten,
    Truncated,
    AnchorMissing,
    AnchorForged,
}

/// Why a trail could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the audit trail: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot read the trail's anchors: {0}")]
    Anchors(#[from] AnchorError),
}

/// The result of walking a trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub service: String,
    /// Entries checked.
    pub entries: i64,
    pub intact: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach: Option<Breach>,
    /// The first entry that breaks the chain, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The seal of the last entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The newest anchor the chain was checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
    /// Anchors of this service that do not parse or whose signature does not verify.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub anchors_rejected: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Verification {
    fn broken(&mut self, breach: Breach, at: i64, reason: String) {
        self.intact = false;
        self.breach = Some(breach);
        self.broken_at = Some(at);
        self.reason = Some(reason);
    }
}

/// What is wrong with `entry`, the `expected_seq`th, chained onto `prev`; `None`: it holds.
fn check_entry(
    entry: &Entry,
    expected_seq: i64,
    prev: &[u8],
    keyed: bool,
    config: &AuditConfig,
) -> Option<(Breach, String)> {
    if entry.seq != expected_seq {
        return Some((Breach::Rewritten, format!("entry {expected_seq} is missing (the next one is {})", entry.seq)));
    }
    let legacy_shape = entry.subject.is_none() && entry.detail.is_none() && entry.count == 1;
    let forged = |why: &str| Some((Breach::EntryForged, why.to_string()));
    match entry.version {
        SEALED_WITH_HASH if keyed => forged("an unkeyed (version 1) entry after keyed ones"),
        SEALED_WITH_HASH if !legacy_shape => forged("a version 1 entry with fields version 1 never had"),
        SEALED_WITH_HASH | SEALED_WITH_HMAC => {
            if entry.prev_hash != prev {
                forged("its prevHash is not the previous entry's seal (inserted or re-chained)")
            } else if entry.seal(&config.key).is_none_or(|seal| seal.as_slice() != entry.hash) {
                forged("its seal does not match its contents under the service's key")
            } else {
                None
            }
        }
        other => forged(&format!("unknown entry version {other}")),
    }
}

/// Walks `service`'s trail in order, checks every entry (contiguous sequence numbers
/// from 1, each chained onto the one before and sealed with the key) and the chain
/// against the newest anchor.
pub async fn verify(pool: &PgPool, service: &str, config: &AuditConfig) -> Result<Verification, VerifyError> {
    const PAGE: i64 = 5000;
    let newest = config.anchors.newest(service, &config.key.verifying()).await?;
    let anchor = newest.anchor;
    let mut report = Verification {
        service: service.to_string(),
        entries: 0,
        intact: true,
        breach: None,
        broken_at: None,
        reason: None,
        head: None,
        anchor: anchor.clone(),
        anchors_rejected: newest.rejected,
    };
    let deadline = Utc::now() - chrono::Duration::from_std(config.anchor_deadline()).unwrap_or_default();
    let covered = anchor.as_ref().map_or(0, |a| a.seq);
    let (mut expected_seq, mut prev, mut keyed) = (1, GENESIS.to_vec(), false);
    loop {
        let page: Vec<Entry> = store::page(pool, expected_seq, PAGE).await?;
        let last_page = (page.len() as i64) < PAGE;
        for entry in page {
            if let Some((breach, reason)) = check_entry(&entry, expected_seq, &prev, keyed, config) {
                report.broken(breach, expected_seq, reason);
                return Ok(report);
            }
            if let Some(a) = anchor.as_ref().filter(|a| a.seq == entry.seq && a.hash != entry.hash) {
                let reason = format!("the trail's entry {} is not the one anchored: {}", entry.seq, a.describe());
                report.broken(Breach::Rewritten, entry.seq, reason);
                return Ok(report);
            }
            if entry.seq > covered && entry.at < deadline {
                let reason = format!(
                    "entry {} was written at {} and no anchor covers it ({})",
                    entry.seq,
                    entry.at,
                    anchor.as_ref().map_or("there is none".to_string(), |a| format!("the newest: {}", a.describe()))
                );
                report.broken(Breach::AnchorMissing, entry.seq, reason);
                return Ok(report);
            }
            keyed |= entry.version == SEALED_WITH_HMAC;
            report.entries += 1;
            expected_seq += 1;
            prev = entry.hash;
        }
        if last_page {
            break;
        }
    }
    if let Some(a) = anchor.as_ref().filter(|a| a.seq > report.entries) {
        let reason = format!("the trail ends at entry {} but its newest anchor is {}", report.entries, a.describe());
        report.broken(Breach::Truncated, report.entries + 1, reason);
        return Ok(report);
    }
    report.head = (report.entries > 0).then(|| hex(&prev));
    if report.anchors_rejected > 0 {
        let reason = format!(
            "{} of the newest anchors were not signed by this service's key (or not stored under their own name)",
            report.anchors_rejected
        );
        report.broken(Breach::AnchorForged, report.entries, reason);
    }
    Ok(report)
}

/// `<binary> verify-audit`: walks the service's trail (database, key and anchors from
/// the service's own environment), prints the report as JSON and exits 0 when the
/// trail is intact, 1 when it is not, 2 when it cannot be read. Returns when not asked for.
pub async fn exit_if_verify_requested(
    service: &'static str,
    settings: impl FnOnce() -> Result<(DatabaseConfig, AuditConfig), ConfigError>,
) {
    if std::env::args().nth(1).as_deref() != Some("verify-audit") {
        return;
    }
    let code = match settings() {
        Err(e) => {
            eprintln!("{service}: {e}");
            2
        }
        Ok((database, audit)) => match db::pool(&database) {
            Err(e) => {
                eprintln!("{service}: cannot reach the database: {e}");
                2
            }
            Ok(pool) => match verify(&pool, service, &audit).await {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
                    if report.intact { 0 } else { 1 }
                }
                Err(e) => {
                    eprintln!("{service}: {e}");
                    2
                }
            },
        },
    };
    std::process::exit(code);
}
