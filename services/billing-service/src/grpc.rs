//! The `BillingService` gRPC implementation.

use pulsetrack_proto::billing::{BillingRequest, BillingResponse, billing_service_server::BillingService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::repository::AccountRepository;

pub struct BillingGrpc {
    accounts: AccountRepository,
}

impl BillingGrpc {
    pub fn new(accounts: AccountRepository) -> Self {
        Self { accounts }
    }
}

/// Invalid input is `INVALID_ARGUMENT` naming the field; database trouble is
/// `UNAVAILABLE` (the caller retries) and its details are logged, not returned.
fn database_status(e: sqlx::Error) -> Status {
    let refused_data = matches!(&e, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")));
    if refused_data {
        tracing::warn!(error = %e, "billing request refused by the database");
        return Status::invalid_argument("the request holds values that cannot be stored");
    }
    tracing::error!(error = %e, "billing database error");
    Status::unavailable("billing storage unavailable")
}

/// A billing request's patient id, name and email, checked.
fn account_request(request: &BillingRequest) -> Result<(Uuid, &str, &str), Status> {
    let patient_id = Uuid::parse_str(request.patient_id.trim())
        .map_err(|_| Status::invalid_argument("patientId: must be a UUID"))?;
    let name = request.name.trim();
    let email = request.email.trim();
    if name.is_empty() {
        return Err(Status::invalid_argument("name: must not be blank"));
    }
    if email.is_empty() {
        return Err(Status::invalid_argument("email: must not be blank"));
    }
    Ok((patient_id, name, email))
}

#[tonic::async_trait]
impl BillingService for BillingGrpc {
    async fn create_billing_account(
        &self,
        request: Request<BillingRequest>,
    ) -> Result<Response<BillingResponse>, Status> {
        let request = request.into_inner();
        let (patient_id, name, email) = account_request(&request)?;
        let account = self.accounts.open(patient_id, name, email).await.map_err(database_status)?;
        tracing::debug!(%patient_id, account_id = %account.id, status = %account.status, "billing account opened");
        Ok(Response::new(BillingResponse { account_id: account.id.to_string(), status: account.status }))
    }

    async fn close_billing_account(
        &self,
        request: Request<BillingRequest>,
    ) -> Result<Response<BillingResponse>, Status> {
        let request = request.into_inner();
        let (patient_id, name, email) = account_request(&request)?;
        let account = self.accounts.close(patient_id, name, email).await.map_err(database_status)?;
        tracing::info!(%patient_id, account_id = %account.id, "billing account closed (patient deleted)");
        Ok(Response::new(BillingResponse { account_id: account.id.to_string(), status: account.status }))
    }
}
