//! The `BillingService` gRPC implementation.

use std::{collections::HashMap, future::Future, time::Instant};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
};
use pulsetrack_common::{
    metrics::Metrics,
    trace_context::{self, TRACE_HEADERS},
};
use pulsetrack_proto::billing::{BillingRequest, BillingResponse, billing_service_server::BillingService};
use tonic::{Request, Response, Status, metadata::MetadataMap};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::repository::AccountRepository;

pub struct BillingGrpc {
    accounts: AccountRepository,
    metrics: GrpcMetrics,
}

impl BillingGrpc {
    pub fn new(accounts: AccountRepository, metrics: GrpcMetrics) -> Self {
        Self { accounts, metrics }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    method: &'static str,
    code: String,
}

/// `grpc_server_requests_total` and `grpc_server_request_duration_seconds`, by method
/// and status code.
#[derive(Clone)]
pub struct GrpcMetrics {
    requests: Family<GrpcLabels, Counter>,
    durations: Family<GrpcLabels, Histogram>,
}

impl GrpcMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let requests = Family::<GrpcLabels, Counter>::default();
        let durations = Family::<GrpcLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        metrics.register("grpc_server_requests", "gRPC calls answered", requests.clone());
        metrics.register("grpc_server_request_duration_seconds", "gRPC call durations", durations.clone());
        Self { requests, durations }
    }

    /// Runs `call` in a span that continues the caller's trace (`traceparent` in the
    /// request's metadata), counting and timing it.
    async fn observe<T>(
        &self,
        method: &'static str,
        metadata: &MetadataMap,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let started = Instant::now();
        let span = tracing::info_span!("grpc", method, trace_id = tracing::field::Empty);
        let fields: HashMap<String, String> = TRACE_HEADERS
            .iter()
            .filter_map(|key| Some((key.to_string(), metadata.get(*key)?.to_str().ok()?.to_string())))
            .collect();
        trace_context::adopt(&span, trace_context::from_fields(&fields));
        let result = call.instrument(span).await;
        let code = match &result {
            Ok(_) => "Ok".to_string(),
            Err(status) => format!("{:?}", status.code()),
        };
        let labels = GrpcLabels { method, code };
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
        result
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
        let metadata = request.metadata().clone();
        self.metrics
            .observe("CreateBillingAccount", &metadata, async {
                let request = request.into_inner();
                let (patient_id, name, email) = account_request(&request)?;
                let account = self.accounts.open(patient_id, name, email).await.map_err(database_status)?;
                tracing::debug!(%patient_id, account_id = %account.id, status = %account.status, "billing account opened");
                Ok(Response::new(BillingResponse { account_id: account.id.to_string(), status: account.status }))
            })
            .await
    }

    async fn close_billing_account(
        &self,
        request: Request<BillingRequest>,
    ) -> Result<Response<BillingResponse>, Status> {
        let metadata = request.metadata().clone();
        self.metrics
            .observe("CloseBillingAccount", &metadata, async {
                let request = request.into_inner();
                let (patient_id, name, email) = account_request(&request)?;
                let account = self.accounts.close(patient_id, name, email).await.map_err(database_status)?;
                tracing::info!(%patient_id, account_id = %account.id, "billing account closed (patient deleted)");
                Ok(Response::new(BillingResponse { account_id: account.id.to_string(), status: account.status }))
            })
            .await
    }
}
