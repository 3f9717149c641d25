//! HTTP: the summary (exposed by the gateway as `/api/analytics/**`; analytics:read) and
//! one patient's events.

use axum::{
    Json, Router,
    extract::{FromRef, Path, State},
    http::StatusCode,
    routing::get,
};
use pulsetrack_common::{
    ApiError, FieldError,
    audit::{Action, AuditLog},
    error::database_error,
    identity::{Caller, Permission},
    openapi::{self, BearerAuth},
};
use uuid::Uuid;

use crate::repository::{EventRepository, StoredEvent, Summary};

/// What the handlers share: the stored events and the audit trail every read is recorded in.
#[derive(Clone, FromRef)]
struct AppState {
    events: EventRepository,
    audit: AuditLog,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "PulseTrack analytics", description = "Patient events (analytics-service), through the gateway."),
    servers((url = "/api", description = "through the gateway")),
    paths(summary, patient_events),
    components(schemas(Summary, StoredEvent, ApiError, FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "analytics", description = "Analytics: ADMIN"))
)]
pub struct ApiDoc;

pub fn router(events: EventRepository, audit: AuditLog) -> Router {
    Router::new()
        .route("/analytics/summary", get(summary))
        .route("/analytics/patients/{patient_id}/events", get(patient_events))
        .with_state(AppState { events, audit: audit.clone() })
        .merge(pulsetrack_common::audit::routes(audit))
        .merge(openapi::docs_route(<ApiDoc as utoipa::OpenApi>::openapi()))
}

#[utoipa::path(get, path = "/analytics/summary", tag = "analytics",
    responses((status = 200, body = Summary), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn summary(
    State(events): State<EventRepository>,
    State(audit): State<AuditLog>,
    caller: Caller,
) -> Result<Json<Summary>, ApiError> {
    let result = async {
        caller.require(Permission::AnalyticsRead)?;
        events.summary().await.map_err(|e| database_error(&e))
    }
    .await;
    audit.recorded(&caller, Action::AnalyticsSummaryRead, StatusCode::OK, Vec::new(), result).await.map(Json)
}

/// A patient's events, oldest first (a deleted patient's without name and email).
#[utoipa::path(get, path = "/analytics/patients/{patientId}/events", tag = "analytics", params(("patientId" = Uuid, Path)),
    responses((status = 200, body = Vec<StoredEvent>), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn patient_events(
    State(events): State<EventRepository>,
    State(audit): State<AuditLog>,
    caller: Caller,
    Path(patient_id): Path<String>,
) -> Result<Json<Vec<StoredEvent>>, ApiError> {
    let patient_id = Uuid::parse_str(&patient_id)
        .map_err(|_| ApiError::validation(vec![FieldError::new("patientId", "must be a UUID")]));
    let target = patient_id.as_ref().ok().copied().into_iter().collect();
    let result = async {
        caller.require(Permission::AnalyticsRead)?;
        events.of_patient(patient_id?).await.map_err(|e| database_error(&e))
    }
    .await;
    audit.recorded(&caller, Action::AnalyticsEventsRead, StatusCode::OK, target, result).await.map(Json)
}
