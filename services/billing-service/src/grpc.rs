//! The `BillingService` gRPC implementation, and the credential check every call to it
//! passes first.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::Arc,
    time::Instant,
};

use axum::http::StatusCode;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
};
use pulsetrack_common::{
    audit::{Access, Action, AuditLog, SERVICE_ROLE},
    error::refused_data,
    identity::BearerError,
    metrics::Metrics,
    service_auth::{self, ServiceAuthError, ServiceVerifier},
    trace_context::{self, TRACE_HEADERS},
};
use pulsetrack_proto::billing::{
    BillingBatchRequest, BillingBatchResponse, BillingBatchResult, BillingRequest, BillingResponse,
    billing_batch_result::Outcome, billing_service_server::BillingService,
};
use tonic::{Request, Response, Status, metadata::MetadataMap, service::Interceptor};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::repository::{AccountRepository, BillingAccount, NewAccount};

pub struct BillingGrpc {
    accounts: AccountRepository,
    metrics: GrpcMetrics,
    /// Every call is a disclosure of patients' names and emails by the calling
    /// service: recorded before it is answered.
    audit: AuditLog,
}

impl BillingGrpc {
    pub fn new(accounts: AccountRepository, metrics: GrpcMetrics, audit: AuditLog) -> Self {
        Self { accounts, metrics, audit }
    }

    /// Records `result` of a call of `caller` that disclosed `patients` (its action:
    /// accounts opened or closed), and answers it only once the entry is committed;
    /// when it cannot be, the call fails `UNAVAILABLE` and the caller retries.
    async fn disclosed<T>(
        &self,
        caller: &CallingService,
        action: Action,
        patients: Vec<Uuid>,
        result: Result<T, Status>,
    ) -> Result<T, Status> {
        let outcome = result.as_ref().map_or_else(|status| http_status(status.code()), |_| StatusCode::OK);
        let entry = Access::by(&caller.0, SERVICE_ROLE, action, outcome)
            .patients(patients)
            .detail("name and email received over gRPC");
        if let Err(e) = self.audit.record(entry).await {
            tracing::error!(error = %e, "billing call refused: its audit entry could not be recorded");
            return Err(Status::unavailable("the audit trail is unavailable, retry later"));
        }
        result
    }
}

/// The service a call's credential names (its `iss`), which the credential check
/// puts on the request.
#[derive(Debug, Clone)]
pub struct CallingService(pub String);

impl CallingService {
    fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        request.extensions().get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("a billing call reached its method without a checked credential");
            Status::unauthenticated("a valid service credential is required")
        })
    }
}

/// The HTTP status of a gRPC code, for the trail's `outcome` (RFC: grpc-gateway's mapping).
fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
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

/// Lets a call through only with a valid service credential (`authorization: Bearer
/// <credential>` from an allowed caller, [`service_auth`]): anything else is answered
/// `UNAUTHENTICATED` before a method runs, the reason logged, never returned (it would
/// tell a prober what to fix). Refusals are counted with method `*`.
#[derive(Clone)]
pub struct RequireCredential {
    verifier: Arc<ServiceVerifier>,
    metrics: GrpcMetrics,
}

impl RequireCredential {
    pub fn new(verifier: ServiceVerifier, metrics: GrpcMetrics) -> Self {
        Self { verifier: Arc::new(verifier), metrics }
    }

    fn check(&self, metadata: &MetadataMap) -> Result<CallingService, ServiceAuthError> {
        let value = metadata.get(service_auth::AUTHORIZATION).ok_or(ServiceAuthError::Missing)?;
        let value = value.to_str().map_err(|_| BearerError::NotAscii)?;
        self.verifier.verify_authorization(value).map(|claims| CallingService(claims.iss))
    }
}

impl Interceptor for RequireCredential {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.check(request.metadata()) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Ok(request)
            }
            Err(reason) => {
                let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
                tracing::info!(%reason, %peer, "gRPC call refused: no valid service credential");
                let labels = GrpcLabels { method: "*", code: format!("{:?}", tonic::Code::Unauthenticated) };
                self.metrics.requests.get_or_create(&labels).inc();
                Err(Status::unauthenticated("a valid service credential is required"))
            }
        }
    }
}

/// The most items one `CreateBillingAccounts` call may carry.
pub const MAX_BATCH: usize = 1000;

/// Invalid input is `INVALID_ARGUMENT` naming the field; database trouble is
/// `UNAVAILABLE` (the caller retries) and its details are logged, not returned.
fn database_status(e: sqlx::Error) -> Status {
    if refused_data(&e) {
        tracing::warn!(error = %e, "billing request refused by the database");
        return Status::invalid_argument("the request holds values that cannot be stored");
    }
    tracing::error!(error = %e, "billing database error");
    Status::unavailable("billing storage unavailable")
}

/// A billing request's patient id, name and email, checked.
fn new_account(request: &BillingRequest) -> Result<NewAccount<'_>, Status> {
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
    Ok(NewAccount { patient_id, name, email })
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
                let caller = CallingService::of(&request)?;
                let request = request.into_inner();
                let patients = Uuid::parse_str(request.patient_id.trim()).into_iter().collect();
                let result = async {
                    let NewAccount { patient_id, name, email } = new_account(&request)?;
                    let account = self.accounts.open(patient_id, name, email).await.map_err(database_status)?;
                    tracing::debug!(%patient_id, account_id = %account.id, status = %account.status, "billing account opened");
                    Ok(BillingResponse { account_id: account.id.to_string(), status: account.status })
                }
                .await;
                self.disclosed(&caller, Action::BillingAccountOpen, patients, result).await.map(Response::new)
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
                let caller = CallingService::of(&request)?;
                let request = request.into_inner();
                let patients = Uuid::parse_str(request.patient_id.trim()).into_iter().collect();
                let result = async {
                    let NewAccount { patient_id, name, email } = new_account(&request)?;
                    let account = self.accounts.close(patient_id, name, email).await.map_err(database_status)?;
                    tracing::info!(%patient_id, account_id = %account.id, "billing account closed (patient deleted)");
                    Ok(BillingResponse { account_id: account.id.to_string(), status: account.status })
                }
                .await;
                self.disclosed(&caller, Action::BillingAccountClose, patients, result).await.map(Response::new)
            })
            .await
    }

    async fn create_billing_accounts(
        &self,
        request: Request<BillingBatchRequest>,
    ) -> Result<Response<BillingBatchResponse>, Status> {
        let metadata = request.metadata().clone();
        self.metrics
            .observe("CreateBillingAccounts", &metadata, async {
                let caller = CallingService::of(&request)?;
                let items = request.into_inner().items;
                if items.len() > MAX_BATCH {
                    return Err(Status::invalid_argument(format!("items: at most {MAX_BATCH}")));
                }
                let patients: Vec<Uuid> = items
                    .iter()
                    .filter_map(|item| Uuid::parse_str(item.request.as_ref()?.patient_id.trim()).ok())
                    .collect();
                let result = self.open_batch(&items).await;
                self.disclosed(&caller, Action::BillingAccountOpen, patients, result).await.map(Response::new)
            })
            .await
    }
}

impl BillingGrpc {
    /// Opens the accounts of a batch: each item's account, or why it is invalid.
    async fn open_batch(
        &self,
        items: &[pulsetrack_proto::billing::BillingBatchItem],
    ) -> Result<BillingBatchResponse, Status> {
        let checked: Vec<Result<NewAccount<'_>, String>> = items
            .iter()
            .map(|item| {
                let request = item.request.as_ref().ok_or_else(|| "request: missing".to_string())?;
                new_account(request).map_err(|status| status.message().to_string())
            })
            .collect();
        // One span per item, continuing the trace of the create that asked for it.
        let spans: Vec<tracing::Span> = items
            .iter()
            .zip(&checked)
            .map(|(item, account)| {
                let patient_id = account.as_ref().map(|a| a.patient_id.to_string()).unwrap_or_default();
                let span = tracing::info_span!("billing.open_account", %patient_id, trace_id = tracing::field::Empty);
                trace_context::adopt(&span, trace_context::from_traceparent(Some(&item.traceparent)));
                span
            })
            .collect();
        let accounts = self.open_many(&checked).await?;
        drop(spans);
        let results = checked
            .iter()
            .map(|account| {
                let outcome = match account {
                    Ok(a) => match accounts.get(&a.patient_id) {
                        Some(Ok(account)) => Outcome::Account(BillingResponse {
                            account_id: account.id.to_string(),
                            status: account.status.clone(),
                        }),
                        Some(Err(reason)) => Outcome::Invalid(reason.clone()),
                        None => return Err(Status::internal("an account was not stored")),
                    },
                    Err(reason) => Outcome::Invalid(reason.clone()),
                };
                Ok(BillingBatchResult { outcome: Some(outcome) })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        tracing::debug!(items = items.len(), "billing accounts opened");
        Ok(BillingBatchResponse { results })
    }
}

impl BillingGrpc {
    /// The accounts of the valid items, by patient id: one statement for all of them;
    /// if Postgres refuses the data of one, each is stored on its own, so that only the
    /// refused ones are answered as invalid.
    async fn open_many(
        &self,
        checked: &[Result<NewAccount<'_>, String>],
    ) -> Result<HashMap<Uuid, Result<BillingAccount, String>>, Status> {
        let mut seen = HashSet::new();
        let unique: Vec<NewAccount<'_>> =
            checked.iter().filter_map(|a| a.as_ref().ok()).filter(|a| seen.insert(a.patient_id)).copied().collect();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        match self.accounts.open_many(&unique).await {
            Ok(accounts) => Ok(accounts.into_iter().map(|a| (a.patient_id, Ok(a))).collect()),
            Err(e) if refused_data(&e) => {
                tracing::warn!(error = %e, items = unique.len(), "batch refused by the database; storing one by one");
                let mut accounts = HashMap::with_capacity(unique.len());
                for a in unique {
                    let account = match self.accounts.open(a.patient_id, a.name, a.email).await {
                        Ok(account) => Ok(account),
                        Err(e) if refused_data(&e) => Err(database_status(e).message().to_string()),
                        Err(e) => return Err(database_status(e)),
                    };
                    accounts.insert(a.patient_id, account);
                }
                Ok(accounts)
            }
            Err(e) => Err(database_status(e)),
        }
    }
}
