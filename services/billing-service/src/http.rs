//! HTTP side: the account lookup the gateway exposes as `/api/billing/**`.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use pulsetrack_common::{
    ApiError,
    identity::{Caller, Permission},
};
use uuid::Uuid;

use crate::repository::{AccountRepository, BillingAccount};

pub fn router(accounts: AccountRepository) -> Router {
    Router::new().route("/billing/accounts/{patient_id}", get(account_of_patient)).with_state(accounts)
}

async fn account_of_patient(
    State(accounts): State<AccountRepository>,
    caller: Caller,
    Path(patient_id): Path<String>,
) -> Result<Json<BillingAccount>, ApiError> {
    caller.require(Permission::BillingRead)?;
    let patient_id = Uuid::parse_str(&patient_id)
        .map_err(|_| ApiError::validation(vec![pulsetrack_common::FieldError::new("patientId", "must be a UUID")]))?;
    match accounts.find_by_patient(patient_id).await {
        Ok(Some(account)) => Ok(Json(account)),
        Ok(None) => Err(ApiError::not_found(format!("no billing account for patient {patient_id}"))),
        Err(e) => Err(pulsetrack_common::error::database_error(&e)),
    }
}
