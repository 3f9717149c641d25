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
    verify::{Verification, verify},
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
    let mut patients = Vec::new();
    let result = async {
        caller.require(Permission::AuditRead)?;
        let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let query = params.validate().map_err(ApiError::validation)?;
        patients.extend(query.patient_id);
        audit.query(&query).await.map_err(|e| database_error(&e))
    }
    .await;
    audit.recorded(&caller, Action::AuditRead, StatusCode::OK, patients, result).await.map(Json)
}

async fn check(State(audit): State<AuditLog>, caller: Caller) -> Result<Json<Verification>, ApiError> {
    let result = async {
        caller.require(Permission::AuditRead)?;
        verify(audit.pool(), audit.service()).await.map_err(|e| database_error(&e))
    }
    .await;
    audit.recorded(&caller, Action::AuditVerify, StatusCode::OK, Vec::new(), result).await.map(Json)
}
