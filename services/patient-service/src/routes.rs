//! HTTP handlers and the OpenAPI document generated from them.

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    routing::get,
};
use pulsetrack_common::{
    ApiError, FieldError, JsonBody,
    identity::{Caller, Permission},
};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;
use uuid::Uuid;

use crate::{
    domain::{ListQuery, Mode, Patient, PatientPage, PatientRequest},
    error::Error,
    service::PatientService,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "PulseTrack patient-service", description = "Patient records. Behind the gateway these paths are under /api."),
    paths(list_patients, get_patient, create_patient, update_patient, delete_patient),
    components(schemas(Patient, PatientRequest, PatientPage, ApiErrorDoc, FieldErrorDoc)),
    tags((name = "patients", description = "Patient CRUD"))
)]
pub struct ApiDoc;

/// Error body returned by every endpoint (documentation type).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ApiErrorDoc {
    status: u16,
    error: String,
    message: String,
    fields: Option<Vec<FieldErrorDoc>>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct FieldErrorDoc {
    field: String,
    reason: String,
}

pub fn router(service: PatientService) -> Router {
    Router::new()
        .route("/patients", get(list_patients).post(create_patient))
        .route("/patients/{id}", get(get_patient).put(update_patient).delete(delete_patient))
        .with_state(service)
        .merge(SwaggerUi::new("/swagger-ui").url("/v3/api-docs", ApiDoc::openapi()))
}

fn parse_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| Error::Validation(vec![FieldError::new("id", "must be a UUID")]))
}

#[utoipa::path(get, path = "/patients", tag = "patients", params(ListQuery),
    responses((status = 200, body = PatientPage), (status = 400, body = ApiErrorDoc), (status = 401, body = ApiErrorDoc), (status = 403, body = ApiErrorDoc)))]
async fn list_patients(
    State(service): State<PatientService>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<PatientPage>, ApiError> {
    caller.require(Permission::PatientsRead)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let params = query.validate().map_err(Error::Validation)?;
    Ok(Json(service.list(params).await?))
}

#[utoipa::path(get, path = "/patients/{id}", tag = "patients", params(("id" = Uuid, Path)),
    responses((status = 200, body = Patient), (status = 400, body = ApiErrorDoc), (status = 401, body = ApiErrorDoc), (status = 403, body = ApiErrorDoc), (status = 404, body = ApiErrorDoc)))]
async fn get_patient(
    State(service): State<PatientService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Patient>, Error> {
    caller.require(Permission::PatientsRead)?;
    Ok(Json(service.get(parse_id(&id)?).await?))
}

#[utoipa::path(post, path = "/patients", tag = "patients", request_body = PatientRequest,
    responses((status = 201, body = Patient), (status = 400, body = ApiErrorDoc), (status = 401, body = ApiErrorDoc), (status = 403, body = ApiErrorDoc), (status = 409, body = ApiErrorDoc)))]
async fn create_patient(
    State(service): State<PatientService>,
    caller: Caller,
    JsonBody(body): JsonBody<PatientRequest>,
) -> Result<(StatusCode, Json<Patient>), Error> {
    caller.require(Permission::PatientsWrite)?;
    let input = body.validate(Mode::Create).map_err(Error::Validation)?;
    Ok((StatusCode::CREATED, Json(service.create(input).await?)))
}

#[utoipa::path(put, path = "/patients/{id}", tag = "patients", params(("id" = Uuid, Path)), request_body = PatientRequest,
    responses((status = 200, body = Patient), (status = 400, body = ApiErrorDoc), (status = 401, body = ApiErrorDoc), (status = 403, body = ApiErrorDoc), (status = 404, body = ApiErrorDoc), (status = 409, body = ApiErrorDoc)))]
async fn update_patient(
    State(service): State<PatientService>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatientRequest>,
) -> Result<Json<Patient>, Error> {
    caller.require(Permission::PatientsWrite)?;
    let id = parse_id(&id);
    let input = body.validate(Mode::Update);
    // Report a bad id and bad fields together.
    let (id, input) = match (id, input) {
        (Ok(id), Ok(input)) => (id, input),
        (id, input) => {
            let mut fields = match id {
                Err(Error::Validation(f)) => f,
                _ => Vec::new(),
            };
            fields.extend(input.err().unwrap_or_default());
            return Err(Error::Validation(fields));
        }
    };
    Ok(Json(service.update(id, input).await?))
}

/// ADMIN only (patients:delete), by the identity the gateway forwards.
#[utoipa::path(delete, path = "/patients/{id}", tag = "patients", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = ApiErrorDoc), (status = 401, body = ApiErrorDoc), (status = 403, body = ApiErrorDoc), (status = 404, body = ApiErrorDoc)))]
async fn delete_patient(
    State(service): State<PatientService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    caller.require(Permission::PatientsDelete)?;
    service.delete(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
