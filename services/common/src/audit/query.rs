//! `GET /audit`'s filter: the query string as the caller sent it, checked field by
//! field so that a bad value is a 400 naming it, and the validated query the store
//! runs.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    FieldError,
    validate::{self, Validator},
};

/// The most entries one query returns.
pub const QUERY_LIMIT_MAX: i64 = 1000;
const QUERY_LIMIT_DEFAULT: i64 = 100;

/// `GET /audit` query, as raw strings so that a bad value is a 400 naming it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQueryParams {
    /// Entries about this patient.
    #[param(value_type = Option<Uuid>)]
    pub patient_id: Option<String>,
    /// Entries of this account id.
    #[param(schema_with = crate::openapi::actor)]
    pub actor: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// At most this many entries (1 to 1000, default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// A validated audit query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub patient_id: Option<Uuid>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
}

fn timestamp(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 timestamp (2026-12-05T10:00:00Z)".to_string())
}

impl AuditQueryParams {
    pub fn validate(self) -> Result<AuditQuery, Vec<FieldError>> {
        let mut v = Validator::new();
        let patient_id = v.field(
            "patientId",
            self.patient_id.map(|p| Uuid::parse_str(p.trim()).map_err(|_| "must be a UUID".to_string())).transpose(),
        );
        let actor = v.field(
            "actor",
            self.actor
                .map(|a| {
                    let a = a.trim().to_string();
                    if a.is_empty() || a.chars().count() > 200 {
                        Err("must be 1 to 200 characters".to_string())
                    } else {
                        validate::plain(&a).map(|()| a)
                    }
                })
                .transpose(),
        );
        let from = v.field("from", self.from.as_deref().map(timestamp).transpose());
        let to = v.field("to", self.to.as_deref().map(timestamp).transpose());
        let limit = v.field(
            "limit",
            self.limit.map_or(Ok(QUERY_LIMIT_DEFAULT), |l| match l.trim().parse::<i64>() {
                Ok(n) if (1..=QUERY_LIMIT_MAX).contains(&n) => Ok(n),
                _ => Err(format!("must be an integer from 1 to {QUERY_LIMIT_MAX}")),
            }),
        );
        v.finish()?;
        Ok(AuditQuery {
            patient_id: patient_id.flatten(),
            actor: actor.flatten(),
            from: from.flatten(),
            to: to.flatten(),
            limit: limit.unwrap_or(QUERY_LIMIT_DEFAULT),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_checked_and_named() {
        let q = |p: AuditQueryParams| p.validate().map_err(|e| e.into_iter().map(|f| f.field).collect::<Vec<_>>());
        assert_eq!(q(AuditQueryParams::default()).expect("defaults").limit, QUERY_LIMIT_DEFAULT);
        let bad = AuditQueryParams {
            patient_id: Some("nope".into()),
            actor: Some("a\u{202E}b".into()),
            from: Some("yesterday".into()),
            to: None,
            limit: Some("0".into()),
        };
        assert_eq!(q(bad).expect_err("bad"), ["patientId", "actor", "from", "limit"]);
    }
}
