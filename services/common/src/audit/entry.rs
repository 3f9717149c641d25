//! What the trail holds: the actions worth recording, one access as a handler knows
//! it, and the stored entry with the hash that chains it to the one before, so that
//! an edited entry no longer matches its hash.

use std::{fmt, net::IpAddr};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{hex::hex_bytes, key::AuditKey};
use crate::identity::Caller;

/// The `prev_hash` of the first entry.
pub(super) const GENESIS: [u8; 32] = [0; 32];

/// Declares [`Action`]: each variant with its name in the trail, and which trail
/// records it (for the docs' list, checked against them).
macro_rules! actions {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal in $trail:literal, )*) => {
        /// What was done: an access to patient data, or a security event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum Action {
            $( $(#[$doc])* $variant, )*
        }

        impl Action {
            pub const ALL: &[Action] = &[$( Action::$variant, )*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( Action::$variant => $name, )*
                }
            }

            /// The trail (service) that records it; `*` for every audited service.
            pub fn trail(self) -> &'static str {
                match self {
                    $( Action::$variant => $trail, )*
                }
            }
        }
    };
}

actions! {
    PatientList = "PATIENT_LIST" in "patient-service",
    PatientSearch = "PATIENT_SEARCH" in "patient-service",
    PatientRead = "PATIENT_READ" in "patient-service",
    PatientCreate = "PATIENT_CREATE" in "patient-service",
    PatientUpdate = "PATIENT_UPDATE" in "patient-service",
    PatientDelete = "PATIENT_DELETE" in "patient-service",
    BillingRead = "BILLING_READ" in "billing-service",
    /// An account opened over gRPC: the patient's name and email disclosed by patient-service.
    BillingAccountOpen = "BILLING_ACCOUNT_OPEN" in "billing-service",
    /// An account closed over gRPC, at patient-service's request.
    BillingAccountClose = "BILLING_ACCOUNT_CLOSE" in "billing-service",
    AnalyticsSummaryRead = "ANALYTICS_SUMMARY_READ" in "analytics-service",
    AnalyticsEventsRead = "ANALYTICS_EVENTS_READ" in "analytics-service",
    AuditRead = "AUDIT_READ" in "*",
    AuditVerify = "AUDIT_VERIFY" in "*",
    Signup = "SIGNUP" in "auth-service",
    LoginSuccess = "LOGIN_SUCCESS" in "auth-service",
    /// With the reason in `detail`.
    LoginFailure = "LOGIN_FAILURE" in "auth-service",
    /// An email address locked after failed logins.
    Lockout = "LOCKOUT" in "auth-service",
    /// A spent refresh token presented again: the session ends.
    RefreshReuse = "REFRESH_REUSE" in "auth-service",
    Logout = "LOGOUT" in "auth-service",
    PasswordChange = "PASSWORD_CHANGE" in "auth-service",
    /// An ADMIN issued a reset token for an account.
    PasswordResetIssue = "PASSWORD_RESET_ISSUE" in "auth-service",
    /// A reset token used: the account's password set.
    PasswordReset = "PASSWORD_RESET" in "auth-service",
    TotpEnrol = "TOTP_ENROL" in "auth-service",
    RoleChange = "ROLE_CHANGE" in "auth-service",
    StatusChange = "STATUS_CHANGE" in "auth-service",
    /// Sessions ended for any other reason than a logout (by an ADMIN, a role or status
    /// change, a limit reached); the reason in `detail`, how many in `count`.
    SessionEnd = "SESSION_END" in "auth-service",
    UserList = "USER_LIST" in "auth-service",
    SessionList = "SESSION_LIST" in "auth-service",
    /// The gateway's own 401, 403 and 429, one entry per client, route, status and
    /// minute, with how many in `count`.
    GatewayRefusal = "GATEWAY_REFUSAL" in "auth-service",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One access or event, as the handler knows it.
#[derive(Debug, Clone)]
pub struct Access {
    pub actor_id: String,
    pub actor_role: String,
    pub action: Action,
    pub patient_ids: Vec<Uuid>,
    /// The HTTP status the caller got (gRPC calls: the HTTP status of their code).
    pub outcome: u16,
    pub request_id: Option<String>,
    pub client_addr: Option<IpAddr>,
    /// What the action was done to, other than patients: an account id, a route.
    pub subject: Option<String>,
    /// Why or how: a login failure's reason, a role change's old and new role.
    pub detail: Option<String>,
    /// How many events the entry stands for (aggregated refusals); 1 otherwise.
    pub count: i32,
}

impl Access {
    pub fn new(caller: &Caller, action: Action, patient_ids: Vec<Uuid>, outcome: StatusCode) -> Self {
        Self {
            request_id: caller.request_id.clone(),
            client_addr: caller.client_addr,
            ..Self::by(&caller.identity.user_id, caller.identity.role.as_str(), action, outcome).patients(patient_ids)
        }
    }

    /// An event of `actor_id` (a user id, a service's name, or [`ANONYMOUS`]) in `actor_role`.
    pub fn by(actor_id: &str, actor_role: &str, action: Action, outcome: StatusCode) -> Self {
        Self {
            actor_id: actor_id.to_string(),
            actor_role: actor_role.to_string(),
            action,
            patient_ids: Vec::new(),
            outcome: outcome.as_u16(),
            request_id: None,
            client_addr: None,
            subject: None,
            detail: None,
            count: 1,
        }
    }

    pub fn subject(mut self, subject: impl ToString) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn patients(mut self, patient_ids: Vec<Uuid>) -> Self {
        self.patient_ids = patient_ids;
        self
    }

    pub fn from_client(mut self, request_id: Option<String>, client_addr: Option<IpAddr>) -> Self {
        self.request_id = request_id;
        self.client_addr = client_addr;
        self
    }
}

/// The actor of an event no account can be named for (a login with an unknown email).
pub const ANONYMOUS: &str = "anonymous";
/// The role of an actor that is a service, not an account.
pub const SERVICE_ROLE: &str = "SERVICE";
/// The role of an actor without an account.
pub const NO_ROLE: &str = "NONE";

/// How an entry is sealed: 1, SHA-256 without a key (entries written before the
/// key existed: only a prefix of a trail may be); 2, HMAC-SHA256 with the service's
/// [`AuditKey`].
pub const SEALED_WITH_HASH: i16 = 1;
pub const SEALED_WITH_HMAC: i16 = 2;

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
    pub subject: Option<String>,
    pub detail: Option<String>,
    pub count: i32,
    /// 1: `hash` is SHA-256 (entries from before the trail had a key); 2: HMAC-SHA256.
    pub version: i16,
    /// The previous entry's `hash`, hex.
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub prev_hash: Vec<u8>,
    /// The seal over the entry's fields and `prevHash`, hex.
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub hash: Vec<u8>,
}

/// Feeds fields into a MAC or hash, each length-prefixed so that no two different
/// entries encode alike.
fn encode(e: &Entry, version: i16, out: &mut dyn FnMut(&[u8])) {
    let mut field = |bytes: &[u8]| {
        out(&(bytes.len() as u64).to_be_bytes());
        out(bytes);
    };
    field(if version == SEALED_WITH_HASH { b"pulsetrack audit v1" } else { b"pulsetrack audit v2" });
    field(&e.seq.to_be_bytes());
    field(&e.at.timestamp_micros().to_be_bytes());
    field(e.service.as_bytes());
    field(e.actor_id.as_bytes());
    field(e.actor_role.as_bytes());
    field(e.action.as_bytes());
    field(&(e.patient_ids.len() as u64).to_be_bytes());
    for id in &e.patient_ids {
        field(id.as_bytes());
    }
    field(&e.outcome.to_be_bytes());
    let mut optionals = vec![&e.request_id, &e.client_addr];
    if version != SEALED_WITH_HASH {
        optionals.extend([&e.subject, &e.detail]);
    }
    for optional in optionals {
        match optional {
            Some(value) => {
                field(&[1]);
                field(value.as_bytes());
            }
            None => field(&[0]),
        }
    }
    if version != SEALED_WITH_HASH {
        field(&e.count.to_be_bytes());
        field(&e.version.to_be_bytes());
    }
    field(&e.prev_hash);
}

impl Entry {
    /// The seal this entry must carry, by its version: HMAC-SHA256 under `key` of its
    /// fields and the previous entry's seal (version 2), or their plain SHA-256
    /// (version 1, which covers fewer fields); `None` for an unknown version.
    pub fn seal(&self, key: &AuditKey) -> Option<[u8; 32]> {
        match self.version {
            SEALED_WITH_HASH => {
                let mut h = Sha256::new();
                encode(self, SEALED_WITH_HASH, &mut |b| h.update(b));
                Some(h.finalize().into())
            }
            SEALED_WITH_HMAC => {
                let mut mac = key.mac();
                encode(self, SEALED_WITH_HMAC, &mut |b| mac.update(b));
                Some(mac.finalize().into_bytes().into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::hex::hex;

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
            subject: None,
            detail: Some("d".into()),
            count: 1,
            version: SEALED_WITH_HMAC,
            prev_hash: GENESIS.to_vec(),
            hash: Vec::new(),
        }
    }

    #[test]
    fn every_field_is_covered_by_the_seal() {
        let key = AuditKey::generate();
        let base = entry().seal(&key);
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
            Entry { subject: Some("s".into()), ..entry() },
            Entry { detail: None, ..entry() },
            Entry { count: 2, ..entry() },
            Entry { version: SEALED_WITH_HASH, ..entry() },
            Entry { prev_hash: vec![1; 32], ..entry() },
            // Moving bytes between adjacent fields changes the seal too.
            Entry { actor_id: "u".into(), actor_role: "1CLINICIAN".into(), ..entry() },
        ];
        for e in changed {
            assert_ne!(e.seal(&key), base, "{e:?}");
        }
        assert_eq!(entry().seal(&key), base);
        assert_ne!(entry().seal(&AuditKey::generate()), base, "another key, another seal");
        assert_eq!(Entry { version: 3, ..entry() }.seal(&key), None);
    }

    #[test]
    fn version_one_is_the_unkeyed_hash_it_always_was() {
        // What entries written before the key existed carry: the same hash as then
        // (computed independently of this code, from the encoding the file documents).
        let v1 = Entry { version: SEALED_WITH_HASH, detail: None, ..entry() };
        let (a, b) = (v1.seal(&AuditKey::generate()), v1.seal(&AuditKey::generate()));
        assert_eq!(a, b, "no key involved");
        assert_eq!(hex(&a.expect("v1")), "f69462df6e2da69fb5e1772501a7b6b89695fa94a5494127f1e26cb7f74a91a2");
    }

    #[test]
    fn actions_have_distinct_names_matching_their_json() {
        let mut names = std::collections::BTreeSet::new();
        for &action in Action::ALL {
            let json = serde_json::to_string(&action).expect("serializes");
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert!(names.insert(action.as_str()), "{action} twice");
        }
    }

    #[test]
    fn seals_travel_as_hex() {
        let mut e = entry();
        e.hash = e.seal(&AuditKey::generate()).expect("v2").to_vec();
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["hash"].as_str().map(str::len), Some(64));
        let back: Entry = serde_json::from_value(json).expect("back");
        assert_eq!(back, e);
    }
}
