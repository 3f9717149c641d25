//! HTTP side: the account lookup the gateway exposes as `/api/billing/**`.

use axum::{
    Json, Router,
    extract::{FromRef, Path, State},
    http::StatusCode,
    routing::get,
};
use pulsetrack_common::{
    ApiError, FieldError,
    audit::{Action, AuditLog},
    identity::{Caller, Permission},
    openapi::{self, BearerAuth},
};
use uuid::Uuid;

use crate::repository::{AccountRepository, BillingAccount};

/// What the handlers share: the accounts and the audit trail every read is recorded in.
#[derive(Clone, FromRef)]
struct AppState {
    accounts: AccountRepository,
    audit: AuditLog,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "PulseTrack billing", description = "Billing accounts (billing-service), through the gateway."),
    servers((url = "/api", description = "through the gateway")),
    paths(account_of_patient),
    components(schemas(BillingAccount, ApiError, FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "billing", description = "Billing accounts: BILLING or ADMIN, read-only"))
)]
pub struct ApiDoc;

pub fn router(accounts: AccountRepository, audit: AuditLog) -> Router {
    Router::new()
        .route("/billing/accounts/{patient_id}", get(account_of_patient))
        .with_state(AppState { accounts, audit: audit.clone() })
        .merge(pulsetrack_common::audit::routes(audit))
        .merge(openapi::docs_route(<ApiDoc as utoipa::OpenApi>::openapi()))
}

/// The billing account of a patient (opened when the patient was created; CLOSED when
/// it was deleted).
#[utoipa::path(get, path = "/billing/accounts/{patientId}", tag = "billing", params(("patientId" = Uuid, Path)),
    responses((status = 200, body = BillingAccount), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn account_of_patient(
    State(accounts): State<AccountRepository>,
    State(audit): State<AuditLog>,
    caller: Caller,
    Path(patient_id): Path<String>,
) -> Result<Json<BillingAccount>, ApiError> {
    let patient_id = Uuid::parse_str(&patient_id)
        .map_err(|_| ApiError::validation(vec![FieldError::new("patientId", "must be a UUID")]));
    let target = patient_id.as_ref().ok().copied().into_iter().collect();
    let result = async {
        caller.require(Permission::BillingRead)?;
        let patient_id = patient_id?;
        match accounts.find_by_patient(patient_id).await {
            Ok(Some(account)) => Ok(account),
            Ok(None) => Err(ApiError::not_found(format!("no billing account for patient {patient_id}"))),
            Err(e) => Err(pulsetrack_common::error::database_error(&e)),
        }
    }
    .await;
    audit.recorded(&caller, Action::BillingRead, StatusCode::OK, target, result).await.map(Json)
}
