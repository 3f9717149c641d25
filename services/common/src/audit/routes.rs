//! The trail over HTTP: `GET /audit` and `GET /audit/verify` on every audited
//! service, for the gateway to merge. Reading the trail is itself an access to patient
//! data, so both reads are recorded like any other.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    routing::get,
};

use super::{
    entry::{Action, Entry},
    query::AuditQueryParams,
    recorder::AuditLog,
    verify::{Verification, VerifyError},
};
use crate::{
    ApiError,
    error::database_error,
    identity::{Caller, Permission},
};

/// `GET /audit` (the entries, newest first) and `GET /audit/verify` (the chain walked),
/// both for callers holding `audit:read`; both are themselves audited.
pub fn routes(audit: AuditLog) -> Router {
    Router::new().route("/audit", get(list)).route("/audit/verify", get(check)).with_state(audit)
}

async fn list(
    State(audit): State<AuditLog>,
    caller: Caller,
    query: Result<Query<AuditQueryParams>, QueryRejection>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    list_as(&audit, &caller, query).await.map(Json)
}

async fn check(State(audit): State<AuditLog>, caller: Caller) -> Result<Json<Verification>, ApiError> {
    verify_as(&audit, &caller).await.map(Json)
}

/// `GET /audit` for `caller` (auth-service, which checks its callers itself, calls
/// this with the caller it found): the entries, and the read recorded.
pub async fn list_as(
    audit: &AuditLog,
    caller: &Caller,
    query: Result<Query<AuditQueryParams>, QueryRejection>,
) -> Result<Vec<Entry>, ApiError> {
    let mut patients = Vec::new();
    let result = async {
        caller.require(Permission::AuditRead)?;
        let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let query = params.validate().map_err(ApiError::validation)?;
        patients.extend(query.patient_id);
        audit.query(&query).await.map_err(|e| database_error(&e))
    }
    .await;
    audit.recorded(caller, Action::AuditRead, StatusCode::OK, patients, result).await
}

/// `GET /audit/verify` for `caller`: the trail walked, and the walk recorded.
pub async fn verify_as(audit: &AuditLog, caller: &Caller) -> Result<Verification, ApiError> {
    let result = async {
        caller.require(Permission::AuditRead)?;
        audit.verify().await.map_err(|e| match e {
            VerifyError::Database(e) => database_error(&e),
            VerifyError::Anchors(e) => {
                tracing::error!(error = %e, "the audit trail's anchors cannot be read");
                ApiError::service_unavailable("the audit trail's anchors cannot be read, retry later").retry_after(5)
            }
        })
    }
    .await;
    audit.recorded(caller, Action::AuditVerify, StatusCode::OK, Vec::new(), result).await
}
