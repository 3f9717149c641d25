//! HTTP: the summary (exposed by the gateway as `/api/analytics/**`; analytics:read) and
//! one patient's events.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use pulsetrack_common::{
    ApiError, FieldError,
    error::database_error,
    identity::{Caller, Permission},
};
use uuid::Uuid;

use crate::repository::{EventRepository, StoredEvent, Summary};

pub fn router(events: EventRepository) -> Router {
    Router::new()
        .route("/analytics/summary", get(summary))
        .route("/analytics/patients/{patient_id}/events", get(patient_events))
        .with_state(events)
}

async fn summary(State(events): State<EventRepository>, caller: Caller) -> Result<Json<Summary>, ApiError> {
    caller.require(Permission::AnalyticsRead)?;
    events.summary().await.map(Json).map_err(|e| database_error(&e))
}

async fn patient_events(
    State(events): State<EventRepository>,
    caller: Caller,
    Path(patient_id): Path<String>,
) -> Result<Json<Vec<StoredEvent>>, ApiError> {
    caller.require(Permission::AnalyticsRead)?;
    let patient_id = Uuid::parse_str(&patient_id)
        .map_err(|_| ApiError::validation(vec![FieldError::new("patientId", "must be a UUID")]))?;
    events.of_patient(patient_id).await.map(Json).map_err(|e| database_error(&e))
}
