//! The trail's head kept outside its database: every interval the writer signs the
//! head it last committed (sequence number and seal) and appends it where the
//! service may only add (`anchors`, the task in `anchoring`). `verify` then checks the chain against the
//! newest anchor, so that removing entries from the end, or replacing the chain with
//! one that verifies on its own, no longer goes unnoticed (Certificate Transparency's
//! signed tree heads, RFC 9162, on a chain).

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{
    hex::{hex, hex_bytes},
    key::AuditKey,
    store::Head,
};

/// Why anchors cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("anchor file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("anchor bucket: {0}")]
    S3(String),
    #[error("the anchoring task failed: {0}")]
    Task(String),
}

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
