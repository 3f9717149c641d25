//! HTTP: the summary (exposed by the gateway as `/api/analytics/**`, ADMIN only) and
//! one patient's events.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use pulsetrack_common::{ApiError, FieldError, error::database_error};
use uuid::Uuid;

use crate::repository::{EventRepository, StoredEvent, Summary};

pub fn router(events: EventRepository) -> Router {
    Router::new()
        .route("/analytics/summary", get(summary))
        .route("/analytics/patients/{patient_id}/events", get(patient_events))
        .with_state(events)
}

async fn summary(State(events): State<EventRepository>) -> Result<Json<Summary>, ApiError> {
    events.summary().await.map(Json).map_err(|e| database_error(&e))
}

async fn patient_events(
    State(events): State<EventRepository>,
    Path(patient_id): Path<String>,
) -> Result<Json<Vec<StoredEvent>>, ApiError> {
    let patient_id = Uuid::parse_str(&patient_id)
        .map_err(|_| ApiError::validation(vec![FieldError::new("patientId", "must be a UUID")]))?;
    events.of_patient(patient_id).await.map(Json).map_err(|e| database_error(&e))
}
