//! The task that anchors a trail: it signs the head its writer last committed and
//! appends it to the service's anchors every interval, when the head moved, and once a
//! day when it did not (so that the newest anchor outlives the bucket's lifecycle).
//! At start it anchors the head already in the database: entries written before a
//! restart (or before the trail had a key) do not wait for the next write.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::PgPool;
use tokio::sync::watch;

use super::{
    anchor::Anchor,
    anchors::Anchors,
    key::AuditKey,
    store::{self, Head},
};

/// How often an unchanged head is anchored again.
const REANCHOR_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// The writer's head as it changes: what the anchoring task signs.
pub(super) type HeadWatch = watch::Receiver<Option<Head>>;

/// Anchors the head `heads` shows every `interval`, when it moved since the last
/// anchor. A failure is logged and tried again at the next tick: the entries stay
/// sealed meanwhile, and `verify` names an anchor that is overdue (`anchor-missing`).
pub(super) async fn anchor_every(
    interval: Duration,
    (service, pool): (&'static str, PgPool),
    key: AuditKey,
    anchors: Arc<Anchors>,
    mut heads: HeadWatch,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut anchored: Option<(i64, Instant)> = None;
    // The head already in the database, until the writer commits one of its own.
    let mut found = match store::read_head(&pool).await {
        Ok(head) => Some(head).filter(|h| h.seq > 0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the audit trail's head to anchor it at start");
            None
        }
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = heads.changed() => {
                // The writer is gone: anchor what it last wrote, then stop.
                if changed.is_err() {
                    let last = heads.borrow().clone();
                    if let Some(head) = last.filter(|h| anchored.is_none_or(|(seq, _)| seq != h.seq)) {
                        let _ = anchors.append(&Anchor::sign(&key, service, &head)).await;
                    }
                    return;
                }
                found = None;
                continue;
            }
        }
        let Some(head) = heads.borrow().clone().or_else(|| found.clone()) else { continue };
        if anchored.is_some_and(|(seq, at)| seq == head.seq && at.elapsed() < REANCHOR_EVERY) {
            continue;
        }
        match anchors.append(&Anchor::sign(&key, service, &head)).await {
            Ok(()) => {
                tracing::debug!(seq = head.seq, "audit head anchored");
                anchored = Some((head.seq, Instant::now()));
            }
            Err(e) => tracing::error!(error = %e, seq = head.seq, "the audit trail's head cannot be anchored"),
        }
    }
}
