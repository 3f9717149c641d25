//! auth-service's trail over HTTP: `GET /audit` and `GET /audit/verify` for the gateway
//! to merge (the caller checked here against its session and account, as every
//! account route is), and the gateway's refusal reports taken in.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode},
};
use pulsetrack_common::{
    ApiError, FieldError,
    audit::{self, AuditQueryParams, Entry, MAX_REFUSALS_PER_REPORT, RefusalReport, Verification},
    service_auth::ServiceAuthError,
};

use crate::{authenticated::Authenticated, state::AppState};

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    query: Result<Query<AuditQueryParams>, QueryRejection>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    audit::list_as(&state.audit, &caller.as_caller(), query).await.map(Json)
}

pub(super) async fn verify(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Verification>, ApiError> {
    audit::verify_as(&state.audit, &caller.as_caller()).await.map(Json)
}

/// `POST /internal/audit/refusals`: the gateway's counts of its own refusals, one
/// entry each, recorded before the answer (204). Only with the gateway's service
/// credential (`GATEWAY_AUDIT_SECRET`); a bad count refuses the whole report with 400
/// naming it, and nothing is recorded.
pub(super) async fn refusals(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RefusalReport>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let authorization = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let claims = authorization
        .ok_or(ServiceAuthError::Missing)
        .and_then(|value| state.refusal_reporters.verify_authorization(value))
        .map_err(|reason| {
            tracing::warn!(%reason, "a refusal report without a valid gateway credential was refused");
            ApiError::unauthorized("a valid service credential is required")
        })?;
    let Json(report) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if report.refusals.len() > MAX_REFUSALS_PER_REPORT {
        let reason = format!("at most {MAX_REFUSALS_PER_REPORT} per report");
        return Err(ApiError::validation(vec![FieldError::new("refusals", reason)]));
    }
    let entries = report
        .refusals
        .iter()
        .enumerate()
        .map(|(i, count)| count.access(&claims.iss).map_err(|reason| FieldError::new(format!("refusals[{i}]"), reason)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|field| ApiError::validation(vec![field]))?;
    let recorded = futures_util::future::join_all(entries.into_iter().map(|e| state.audit.record(e))).await;
    recorded.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(StatusCode::NO_CONTENT)
}
