//! HTTP side: the account lookup the gateway exposes as `/api/billing/**`.

use axum::{
    Json, Router,
    extract::{FromRef, Path, State},
    http::StatusCode,
    routing::get,
};
use pulsetrack_common::{
    ApiError,
    audit::{Action, AuditLog},
    identity::{Caller, Permission},
};
use uuid::Uuid;

use crate::repository::{AccountRepository, BillingAccount};

/// What the handlers share: the accounts and the audit trail every read is recorded in.
#[derive(Clone, FromRef)]
struct AppState {
    accounts: AccountRepository,
    audit: AuditLog,
}

pub fn router(accounts: AccountRepository, audit: AuditLog) -> Router {
    Router::new()
        .route("/billing/accounts/{patient_id}", get(account_of_patient))
        .with_state(AppState { accounts, audit: audit.clone() })
        .merge(pulsetrack_common::audit::routes(audit))
}

async fn account_of_patient(
    State(accounts): State<AccountRepository>,
    State(audit): State<AuditLog>,
    caller: Caller,
    Path(patient_id): Path<String>,
) -> Result<Json<BillingAccount>, ApiError> {
    let patient_id = Uuid::parse_str(&patient_id)
        .map_err(|_| ApiError::validation(vec![pulsetrack_common::FieldError::new("patientId", "must be a UUID")]));
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
