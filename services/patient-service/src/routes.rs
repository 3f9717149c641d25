//! HTTP handlers and the OpenAPI document generated from them.

use axum::{
    Json, Router,
    extract::{FromRef, Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    routing::get,
};
use pulsetrack_common::openapi::BearerAuth;
use pulsetrack_common::{
    ApiError, FieldError, JsonBody,
    audit::{Action, AuditLog},
    identity::{Caller, Permission},
};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;
use uuid::Uuid;

use crate::{
    domain::{ListQuery, Mode, Patient, PatientPage, PatientRequest, PatientUpdate},
    error::Error,
    service::PatientService,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "PulseTrack patients", description = "Patient records (patient-service), through the gateway."),
    servers((url = "/api", description = "through the gateway")),
    paths(list_patients, get_patient, create_patient, update_patient, delete_patient),
    components(schemas(Patient, PatientRequest, PatientUpdate, PatientPage, ApiError, FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "patients", description = "Patient CRUD: USER, CLINICIAN or ADMIN; delete: ADMIN"))
)]
pub struct ApiDoc;

/// What the handlers share: the use cases and the audit trail every access is recorded in.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub service: PatientService,
    pub audit: AuditLog,
}

pub fn router(service: PatientService, audit: AuditLog) -> Router {
    Router::new()
        .route("/patients", get(list_patients).post(create_patient))
        .route("/patients/{id}", get(get_patient).put(update_patient).delete(delete_patient))
        .with_state(AppState { service, audit: audit.clone() })
        .merge(pulsetrack_common::audit::routes(audit))
        .merge(SwaggerUi::new("/swagger-ui").url("/v3/api-docs", ApiDoc::openapi()))
}

fn parse_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| Error::Validation(vec![FieldError::new("id", "must be a UUID")]))
}

#[utoipa::path(get, path = "/patients", tag = "patients", params(ListQuery),
    responses((status = 200, body = PatientPage), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn list_patients(
    State(service): State<PatientService>,
    State(audit): State<AuditLog>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<PatientPage>, ApiError> {
    let mut action = Action::PatientList;
    let result = async {
        caller.require(Permission::PatientsRead)?;
        let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let params = query.validate().map_err(Error::Validation)?;
        if params.search.is_some() {
            action = Action::PatientSearch;
        }
        Ok::<_, ApiError>(service.list(params).await?)
    }
    .await;
    let shown = result.as_ref().map(|page| page.content.iter().map(|p| p.id).collect()).unwrap_or_default();
    audit.recorded(&caller, action, StatusCode::OK, shown, result).await.map(Json)
}

#[utoipa::path(get, path = "/patients/{id}", tag = "patients", params(("id" = Uuid, Path)),
    responses((status = 200, body = Patient), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn get_patient(
    State(service): State<PatientService>,
    State(audit): State<AuditLog>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Patient>, ApiError> {
    let id = parse_id(&id);
    let target = id.as_ref().ok().copied().into_iter().collect();
    let result = async {
        caller.require(Permission::PatientsRead)?;
        Ok::<_, ApiError>(service.get(id?).await?)
    }
    .await;
    audit.recorded(&caller, Action::PatientRead, StatusCode::OK, target, result).await.map(Json)
}

#[utoipa::path(post, path = "/patients", tag = "patients", request_body = PatientRequest,
    responses((status = 201, body = Patient), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn create_patient(
    State(service): State<PatientService>,
    State(audit): State<AuditLog>,
    caller: Caller,
    JsonBody(body): JsonBody<PatientRequest>,
) -> Result<(StatusCode, Json<Patient>), ApiError> {
    let result = async {
        caller.require(Permission::PatientsWrite)?;
        let input = body.validate(Mode::Create).map_err(Error::Validation)?;
        Ok::<_, ApiError>(service.create(input).await?)
    }
    .await;
    let created = result.as_ref().map(|p| vec![p.id]).unwrap_or_default();
    let patient = audit.recorded(&caller, Action::PatientCreate, StatusCode::CREATED, created, result).await?;
    Ok((StatusCode::CREATED, Json(patient)))
}

#[utoipa::path(put, path = "/patients/{id}", tag = "patients", params(("id" = Uuid, Path)), request_body = PatientUpdate,
    responses((status = 200, body = Patient), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn update_patient(
    State(service): State<PatientService>,
    State(audit): State<AuditLog>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatientRequest>,
) -> Result<Json<Patient>, ApiError> {
    let id = parse_id(&id);
    let target = id.as_ref().ok().copied().into_iter().collect();
    let result = async {
        caller.require(Permission::PatientsWrite)?;
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
                return Err(Error::Validation(fields).into());
            }
        };
        Ok::<_, ApiError>(service.update(id, input).await?)
    }
    .await;
    audit.recorded(&caller, Action::PatientUpdate, StatusCode::OK, target, result).await.map(Json)
}

/// ADMIN only (patients:delete), by the identity the gateway forwards.
#[utoipa::path(delete, path = "/patients/{id}", tag = "patients", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn delete_patient(
    State(service): State<PatientService>,
    State(audit): State<AuditLog>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id);
    let target = id.as_ref().ok().copied().into_iter().collect();
    let result = async {
        caller.require(Permission::PatientsDelete)?;
        Ok::<_, ApiError>(service.delete(id?).await?)
    }
    .await;
    audit.recorded(&caller, Action::PatientDelete, StatusCode::NO_CONTENT, target, result).await?;
    Ok(StatusCode::NO_CONTENT)
}
