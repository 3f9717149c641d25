//! The trail's head kept outside its database: every interval the writer signs the
//! head it last committed (sequence number and seal) and appends it where the
//! service may only add ([`Anchors`]). `verify` then checks the chain against the
//! newest anchor, so that removing entries from the end, or replacing the chain with
//! one that verifies on its own, no longer goes unnoticed (Certificate Transparency's
//! signed tree heads, RFC 9162, on a chain).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{
    anchors::Anchors,
    entry::{hex, hex_bytes},
    key::AuditKey,
    store::Head,
};

/// A trail's head as its service signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    pub service: String,
    pub seq: i64,
    /// The seal of entry `seq`, hex.
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub hash: Vec<u8>,
    /// When it was anchored.
    pub at: DateTime<Utc>,
    /// Ed25519 over the fields above, hex.
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub signature: Vec<u8>,
}

impl Anchor {
    /// What the signature covers, each field length-prefixed.
    fn message(service: &str, seq: i64, hash: &[u8], at: DateTime<Utc>) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [b"pulsetrack audit anchor v1".as_slice(), service.as_bytes(), &seq.to_be_bytes(), hash] {
            out.extend((field.len() as u64).to_be_bytes());
            out.extend(field);
        }
        out.extend(at.timestamp_micros().to_be_bytes());
        out
    }

    /// `service`'s head, signed now.
    pub(super) fn sign(key: &AuditKey, service: &str, head: &Head) -> Self {
        let at = DateTime::<Utc>::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
        let signature = key.sign(&Self::message(service, head.seq, &head.hash, at)).to_vec();
        Self { service: service.to_string(), seq: head.seq, hash: head.hash.clone(), at, signature }
    }

    /// Whether the service holding `key` signed exactly this.
    pub fn verifies(&self, key: &VerifyingKey) -> bool {
        let Ok(signature) = Signature::from_slice(&self.signature) else { return false };
        key.verify_strict(&Self::message(&self.service, self.seq, &self.hash, self.at), &signature).is_ok()
    }

    pub fn describe(&self) -> String {
        format!("entry {} ({}…) anchored at {}", self.seq, &hex(&self.hash)[..12.min(self.hash.len() * 2)], self.at)
    }
}

/// The writer's head as it changes: what the anchoring task signs.
pub(super) type HeadWatch = watch::Receiver<Option<Head>>;

/// Anchors the head `heads` shows every `interval`, when it moved since the last
/// anchor. A failure is logged and tried again at the next tick: the entries stay
/// sealed meanwhile, and `verify` names an anchor that is overdue (`anchor-missing`).
pub(super) async fn anchor_every(
    interval: Duration,
    service: &'static str,
    key: AuditKey,
    anchors: Arc<Anchors>,
    mut heads: HeadWatch,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut anchored: Option<i64> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = heads.changed() => {
                // The writer is gone: anchor what it last wrote, then stop.
                if changed.is_err() {
                    let last = heads.borrow().clone();
                    if let Some(head) = last.filter(|h| Some(h.seq) != anchored) {
                        let _ = anchors.append(&Anchor::sign(&key, service, &head)).await;
                    }
                    return;
                }
                continue;
            }
        }
        let Some(head) = heads.borrow().clone() else { continue };
        if Some(head.seq) == anchored {
            continue;
        }
        match anchors.append(&Anchor::sign(&key, service, &head)).await {
            Ok(()) => {
                tracing::debug!(seq = head.seq, "audit head anchored");
                anchored = Some(head.seq);
            }
            Err(e) => tracing::error!(error = %e, seq = head.seq, "the audit trail's head cannot be anchored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_verifies_with_its_key_only_and_covers_every_field() {
        let key = AuditKey::generate();
        let head = Head { seq: 7, hash: vec![3; 32] };
        let anchor = Anchor::sign(&key, "patient-service", &head);
        assert!(anchor.verifies(&key.verifying()));
        assert!(!anchor.verifies(&AuditKey::generate().verifying()));
        for changed in [
            Anchor { seq: 8, ..anchor.clone() },
            Anchor { service: "billing-service".into(), ..anchor.clone() },
            Anchor { hash: vec![4; 32], ..anchor.clone() },
            Anchor { at: anchor.at + chrono::Duration::microseconds(1), ..anchor.clone() },
            Anchor { signature: vec![0; 64], ..anchor.clone() },
            Anchor { signature: vec![1; 3], ..anchor.clone() },
        ] {
            assert!(!changed.verifies(&key.verifying()), "{changed:?}");
        }
        let json = serde_json::to_string(&anchor).expect("json");
        assert_eq!(serde_json::from_str::<Anchor>(&json).expect("back"), anchor);
    }
}
