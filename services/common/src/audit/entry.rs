//! What the trail holds: the actions worth recording, one access as a handler knows
//! it, and the stored entry with the hash that chains it to the one before, so that
//! an edited entry no longer matches its hash.

use std::{fmt, net::IpAddr};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::identity::Caller;

/// The `prev_hash` of the first entry.
pub(super) const GENESIS: [u8; 32] = [0; 32];

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
    fn hashes_travel_as_hex() {
        let mut e = entry();
        e.hash = e.compute_hash().to_vec();
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["hash"].as_str().map(str::len), Some(64));
        let back: Entry = serde_json::from_value(json).expect("back");
        assert_eq!(back, e);
    }
}
