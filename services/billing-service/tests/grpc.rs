//! billing-service as the real application: gRPC over TCP, the service credential
//! every billing call needs, health, reflection, HTTP.

use std::sync::Arc;

use auth_service::testing::TestAuth;
use billing_service::{Application, config::Config};
use pulsetrack_common::{
    config::ListenConfig,
    db::DatabaseConfig,
    identity::Role,
    service_auth::{self, BILLING_SERVICE, CredentialMinter, PATIENT_SERVICE, ServiceSecret},
    testing::TestDatabase,
};
use pulsetrack_proto::billing::{
    BillingBatchItem, BillingBatchRequest, BillingRequest, billing_batch_result::Outcome,
    billing_service_client::BillingServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// The secret the test app verifies credentials with.
const SECRET: &str = "billing-test-secret-of-more-than-32-characters";

/// Puts `authorization` with the minter's credential into every call, as
/// patient-service does.
#[derive(Clone)]
struct WithCredential(Arc<CredentialMinter>);

impl Interceptor for WithCredential {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self.0.authorization().expect("mints");
        request.metadata_mut().insert(service_auth::AUTHORIZATION, MetadataValue::try_from(value).expect("ascii"));
        Ok(request)
    }
}

type Client = BillingServiceClient<InterceptedService<Channel, WithCredential>>;

struct App {
    /// A client with patient-service's credential.
    grpc: Client,
    channel: Channel,
    http: String,
    /// The real auth-service whose tokens the HTTP routes verify.
    auth: TestAuth,
    _db: TestDatabase,
}

fn secret(s: &str) -> ServiceSecret {
    ServiceSecret::new(s.to_string()).expect("long enough")
}

/// A client of `channel` presenting credentials of `minter`.
fn client(channel: &Channel, minter: CredentialMinter) -> Client {
    BillingServiceClient::with_interceptor(channel.clone(), WithCredential(Arc::new(minter)))
}

/// patient-service's credentials, minted with `secret`.
fn patient_service(secret: &str) -> CredentialMinter {
    CredentialMinter::new(&self::secret(secret), PATIENT_SERVICE, BILLING_SERVICE)
}

async fn spawn_app() -> App {
    spawn_app_with(false).await
}

/// The app's configuration: both ports on `listen`, `GRPC_REFLECTION` = `reflection`.
fn config(db: &TestDatabase, auth: &TestAuth, listen: ListenConfig, reflection: bool) -> Config {
    Config {
        http: listen.clone(),
        grpc: listen,
        database: DatabaseConfig::with_url(db.url()),
        audit: pulsetrack_common::audit::AuditConfig::for_tests(),
        grpc_secret: secret(SECRET),
        grpc_reflection: reflection,
        token_check: auth.token_check(),
    }
}

/// The app with `GRPC_REFLECTION` = `reflection`.
async fn spawn_app_with(reflection: bool) -> App {
    let db = TestDatabase::create("billing").await;
    let auth = TestAuth::start().await;
    let config = config(&db, &auth, ListenConfig::new("127.0.0.1", 0), reflection);
    let app = Application::build(config).await.expect("billing starts");
    let grpc_url = format!("http://{}", app.grpc_addr());
    let http = format!("http://{}", app.http_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let channel = Channel::from_shared(grpc_url).expect("uri").connect().await.expect("connects");
    App { grpc: client(&channel, patient_service(SECRET)), channel, http, auth, _db: db }
}

fn request(patient_id: &str) -> BillingRequest {
    BillingRequest { patient_id: patient_id.into(), name: "Ada".into(), email: "ada@example.com".into() }
}

impl App {
    /// A GET with the token of a fresh account of `role`, as the gateway passes it on.
    async fn get_as(&self, url: String, role: Role) -> reqwest::Response {
        let token = self.auth.token(role).await;
        reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("http")
    }
}

#[tokio::test]
async fn creating_twice_for_one_patient_returns_the_same_account() {
    let mut app = spawn_app().await;
    let patient = uuid::Uuid::new_v4().to_string();
    let first = app.grpc.create_billing_account(request(&patient)).await.expect("created").into_inner();
    let second = app.grpc.create_billing_account(request(&patient)).await.expect("idempotent").into_inner();
    assert_eq!(first.status, "ACTIVE");
    assert_eq!(first.account_id, second.account_id);
    let other = app.grpc.create_billing_account(request(&uuid::Uuid::new_v4().to_string())).await.expect("created");
    assert_ne!(other.into_inner().account_id, first.account_id);

    let account: serde_json::Value =
        app.get_as(format!("{}/billing/accounts/{patient}", app.http), Role::Billing).await.json().await.expect("json");
    assert_eq!(account["id"], first.account_id.as_str());
}

#[tokio::test]
async fn closing_is_idempotent_and_commutes_with_creating() {
    let mut app = spawn_app().await;
    let patient = uuid::Uuid::new_v4().to_string();
    let opened = app.grpc.create_billing_account(request(&patient)).await.expect("created").into_inner();
    let closed = app.grpc.close_billing_account(request(&patient)).await.expect("closed").into_inner();
    assert_eq!((closed.account_id.as_str(), closed.status.as_str()), (opened.account_id.as_str(), "CLOSED"));
    let again = app.grpc.close_billing_account(request(&patient)).await.expect("idempotent").into_inner();
    assert_eq!((again.account_id, again.status), (opened.account_id.clone(), "CLOSED".to_string()));
    // A close delivered before its create (the two are separate deliveries): the
    // account exists CLOSED, and the late create does not reopen it.
    let late = uuid::Uuid::new_v4().to_string();
    let closed_first = app.grpc.close_billing_account(request(&late)).await.expect("closed").into_inner();
    let opened_late = app.grpc.create_billing_account(request(&late)).await.expect("created").into_inner();
    assert_eq!((opened_late.account_id, opened_late.status), (closed_first.account_id, "CLOSED".to_string()));
    let status = app.grpc.close_billing_account(request("nope")).await.expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
}

/// One call for many accounts: each item answered in order; an invalid item refused
/// alone; a patient already known (or twice in the batch) keeps its one account; a
/// closed account stays closed; more than the limit is refused whole.
#[tokio::test]
async fn a_batch_opens_each_account_once_and_refuses_only_invalid_items() {
    let mut app = spawn_app().await;
    let known = uuid::Uuid::new_v4().to_string();
    let existing = app.grpc.create_billing_account(request(&known)).await.expect("created").into_inner();
    let closed = uuid::Uuid::new_v4().to_string();
    app.grpc.close_billing_account(request(&closed)).await.expect("closed");
    let new: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut blank = request(&uuid::Uuid::new_v4().to_string());
    blank.name = " ".into();
    let item = |r: BillingRequest| BillingBatchItem { request: Some(r), traceparent: String::new() };
    let items = vec![
        item(request(&new[0])),
        item(request("not-a-uuid")),
        item(request(&known)),
        item(request(&new[1])),
        item(blank),
        item(request(&new[1])),
        item(request(&closed)),
        BillingBatchItem { request: None, traceparent: String::new() },
        item(request(&new[2])),
    ];
    let results = app.grpc.create_billing_accounts(BillingBatchRequest { items }).await.expect("batch").into_inner();
    let outcomes: Vec<Outcome> = results.results.into_iter().map(|r| r.outcome.expect("an outcome")).collect();
    assert_eq!(outcomes.len(), 9);
    let account = |o: &Outcome| match o {
        Outcome::Account(a) => (a.account_id.clone(), a.status.clone()),
        Outcome::Invalid(reason) => panic!("refused: {reason}"),
    };
    let invalid = |o: &Outcome| match o {
        Outcome::Invalid(reason) => reason.clone(),
        Outcome::Account(a) => panic!("accepted: {a:?}"),
    };
    assert!(invalid(&outcomes[1]).contains("patientId"));
    assert!(invalid(&outcomes[4]).contains("name"));
    assert!(invalid(&outcomes[7]).contains("request"));
    assert_eq!(account(&outcomes[2]), (existing.account_id, "ACTIVE".to_string()));
    assert_eq!(account(&outcomes[3]), account(&outcomes[5]), "one account for a patient twice in the batch");
    assert_eq!(account(&outcomes[6]).1, "CLOSED");
    for n in [0, 3, 8] {
        assert_eq!(account(&outcomes[n]).1, "ACTIVE");
    }
    // Stored: each new patient once, found by the HTTP API with the id the batch gave.
    for (n, patient) in [(0, &new[0]), (3, &new[1]), (8, &new[2])] {
        let found: serde_json::Value = app
            .get_as(format!("{}/billing/accounts/{patient}", app.http), Role::Billing)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(found["id"], account(&outcomes[n]).0.as_str());
    }
    let again = BillingBatchRequest { items: vec![item(request(&new[0]))] };
    let again = app.grpc.create_billing_accounts(again).await.expect("idempotent").into_inner();
    assert_eq!(account(again.results[0].outcome.as_ref().expect("outcome")), account(&outcomes[0]));

    let too_many =
        BillingBatchRequest { items: (0..1001).map(|_| item(request(&uuid::Uuid::new_v4().to_string()))).collect() };
    let status = app.grpc.create_billing_accounts(too_many).await.expect_err("over the limit");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("items"));
}

#[tokio::test]
async fn invalid_requests_are_invalid_argument_naming_the_field() {
    let mut app = spawn_app().await;
    let status = app.grpc.create_billing_account(request("not-a-uuid")).await.expect_err("rejected");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("patientId"));
    let mut blank = request(&uuid::Uuid::new_v4().to_string());
    blank.email = "  ".into();
    let status = app.grpc.create_billing_account(blank).await.expect_err("rejected");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("email"));
}

#[tokio::test]
async fn unknown_and_malformed_lookups_over_http() {
    let app = spawn_app().await;
    let response = app.get_as(format!("{}/billing/accounts/{}", app.http, uuid::Uuid::new_v4()), Role::Billing).await;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    let response = app.get_as(format!("{}/billing/accounts/nope", app.http), Role::Admin).await;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    // The service checks the policy again: no identity is 401, a clinician 403.
    let url = format!("{}/billing/accounts/{}", app.http, uuid::Uuid::new_v4());
    assert_eq!(reqwest::get(&url).await.expect("http").status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_as(url, Role::Clinician).await.status(), reqwest::StatusCode::FORBIDDEN);
    let response = reqwest::get(format!("{}/ready", app.http)).await.expect("http");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

/// Whether billing-service has an account for `patient` (asked over HTTP).
async fn stored(app: &App, patient: &str) -> bool {
    let response = app.get_as(format!("{}/billing/accounts/{patient}", app.http), Role::Billing).await;
    match response.status() {
        reqwest::StatusCode::OK => true,
        reqwest::StatusCode::NOT_FOUND => false,
        other => panic!("lookup answered {other}"),
    }
}

#[tokio::test]
async fn a_call_without_a_credential_is_unauthenticated_and_stores_nothing() {
    let app = spawn_app().await;
    let mut anonymous = BillingServiceClient::new(app.channel.clone());
    let patient = uuid::Uuid::new_v4().to_string();
    let status = anonymous.create_billing_account(request(&patient)).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    // The reason is logged, not told to the caller.
    assert_eq!(status.message(), "a valid service credential is required");
    let status = anonymous.close_billing_account(request(&patient)).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    let batch = BillingBatchRequest {
        items: vec![BillingBatchItem { request: Some(request(&patient)), traceparent: String::new() }],
    };
    let status = anonymous.create_billing_accounts(batch).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut not_bearer = Request::new(request(&patient));
    not_bearer.metadata_mut().insert(service_auth::AUTHORIZATION, MetadataValue::from_static("Basic cGF0aWVudA=="));
    let status = anonymous.create_billing_account(not_bearer).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!stored(&app, &patient).await, "nothing stored");
    // The refusals are counted.
    let metrics = reqwest::get(format!("{}/metrics", app.http)).await.expect("metrics").text().await.expect("text");
    assert!(
        metrics.lines().any(|l| l.starts_with("grpc_server_requests_total{method=\"*\",code=\"Unauthenticated\"} 4")),
        "{metrics}"
    );
}

#[tokio::test]
async fn foreign_expired_or_misissued_credentials_are_unauthenticated() {
    let app = spawn_app().await;
    let now = unix_now();
    let minted = |minter: CredentialMinter| minter.mint_at(now).expect("mints");
    let refused = [
        ("another secret", minted(patient_service(&SECRET.replace('b', "c")))),
        ("expired", patient_service(SECRET).mint_at(now - 3600).expect("mints")),
        ("another caller", minted(CredentialMinter::new(&secret(SECRET), "analytics-service", BILLING_SERVICE))),
        ("another callee", minted(CredentialMinter::new(&secret(SECRET), PATIENT_SERVICE, "auth-service"))),
        ("garbage", "not.a.credential".to_string()),
    ];
    let patient = uuid::Uuid::new_v4().to_string();
    let mut grpc = BillingServiceClient::new(app.channel.clone());
    for (what, credential) in refused {
        let mut call = Request::new(request(&patient));
        let value = MetadataValue::try_from(format!("Bearer {credential}")).expect("ascii");
        call.metadata_mut().insert(service_auth::AUTHORIZATION, value);
        let status = grpc.create_billing_account(call).await.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}");
    }
    assert!(!stored(&app, &patient).await, "nothing stored");

    // patient-service's credential, minted with the same secret, is accepted.
    let mut call = Request::new(request(&patient));
    let value = MetadataValue::try_from(format!("Bearer {}", minted(patient_service(SECRET)))).expect("ascii");
    call.metadata_mut().insert(service_auth::AUTHORIZATION, value);
    let opened = grpc.create_billing_account(call).await.expect("accepted").into_inner();
    assert_eq!(opened.status, "ACTIVE");
    assert!(stored(&app, &patient).await);
}

/// The current Unix time, as credentials count it.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

/// The health service needs no credential: load balancers and operators probe it.
#[tokio::test]
async fn standard_health_service_reports_serving() {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());
    let response = health
        .check(HealthCheckRequest { service: "billing.BillingService".into() })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(response.status(), ServingStatus::Serving);
}

/// One reflection call listing the services: its first answer.
async fn list_services(app: &App) -> Result<tonic_reflection::pb::v1::ServerReflectionResponse, Status> {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(tokio_stream::iter([request])).await?.into_inner();
    responses.next().await.expect("one response")
}

#[tokio::test]
async fn reflection_is_off_by_default() {
    let app = spawn_app().await;
    let status = list_services(&app).await.expect_err("no reflection");
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test]
async fn reflection_lists_the_billing_service_when_on() {
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let app = spawn_app_with(true).await;
    let response = list_services(&app).await.expect("reflection");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"billing.BillingService".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
}

/// Runs `sql` on the server's maintenance database (as the test superuser).
async fn admin_sql(sql: String) {
    use sqlx::{Connection, PgConnection};
    let server = pulsetrack_common::testing::server_url();
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await.expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.expect("admin statement");
    let _ = admin.close().await;
}

/// Polls the standard health service and `/ready` until both say `serving`.
async fn until_health_is(app: &App, serving: bool) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let want = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
    let mut health = HealthClient::new(app.channel.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut seen = Vec::new();
        for service in ["", "billing.BillingService"] {
            let request = HealthCheckRequest { service: service.into() };
            let status = health.check(request).await.expect("the health service answers").into_inner().status();
            seen.push(status);
        }
        let ready = reqwest::get(format!("{}/ready", app.http)).await.expect("/ready answers").status();
        if seen.iter().all(|s| *s == want) && (ready == reqwest::StatusCode::OK) == serving {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "health is still {seen:?}, /ready {ready}; want {want:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_follows_the_database() {
    let app = spawn_app().await;
    until_health_is(&app, true).await;
    let name = app._db.url().rsplit('/').next().expect("database name").to_string();

    // The database refuses connections and its open ones are ended.
    admin_sql(format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false")).await;
    admin_sql(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    until_health_is(&app, false).await;
    let mut grpc = app.grpc.clone();
    let status = grpc.create_billing_account(request(&uuid::Uuid::new_v4().to_string())).await.expect_err("no db");
    assert_eq!(status.code(), Code::Unavailable);

    // It accepts connections again: SERVING again, and calls work.
    admin_sql(format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true")).await;
    until_health_is(&app, true).await;
    grpc.create_billing_account(request(&uuid::Uuid::new_v4().to_string())).await.expect("served again");
}

/// The gRPC port with TLS, as in the cloud: a caller must present a certificate of the
/// internal CA (and still a service credential); a caller that trusts another CA
/// refuses the server.
#[tokio::test]
async fn grpc_over_tls_refuses_a_caller_without_a_certificate_of_the_ca() {
    use pulsetrack_common::{settings::TlsClientAuth, testing::TestCa};
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let db = TestDatabase::create("billing").await;
    let auth = TestAuth::start().await;
    let ca = TestCa::new();
    let listen = ListenConfig { tls: Some(ca.tls(TlsClientAuth::Required)), ..ListenConfig::new("127.0.0.1", 0) };
    let app = Application::build(config(&db, &auth, listen, false)).await.expect("billing starts");
    let url = format!("https://{}", app.grpc_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let trusting = |ca_pem: &str| ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    let call = |tls: ClientTlsConfig| {
        let url = url.clone();
        async move {
            let channel = Channel::from_shared(url).expect("uri").tls_config(tls).expect("tls").connect().await?;
            let mut client = client(&channel, patient_service(SECRET));
            Ok::<_, Box<dyn std::error::Error>>(
                client.create_billing_account(request(&uuid::Uuid::new_v4().to_string())).await?,
            )
        }
    };
    let own = ca.tls(TlsClientAuth::Required);
    let identity = || Identity::from_pem(&own.pem().cert, own.pem().key.expose());
    assert!(call(trusting(&ca.ca_pem).identity(identity())).await.is_ok(), "a certificate of the CA and a credential");
    assert!(call(trusting(&ca.ca_pem)).await.is_err(), "no client certificate");
    let stranger = TestCa::new();
    let strangers = stranger.tls(TlsClientAuth::Required);
    let foreign = Identity::from_pem(&strangers.pem().cert, strangers.pem().key.expose());
    assert!(call(trusting(&ca.ca_pem).identity(foreign)).await.is_err(), "a certificate of another CA");
    assert!(call(trusting(&stranger.ca_pem).identity(identity())).await.is_err(), "the server is not verifiable");
    // TLS does not replace the service credential.
    let channel = Channel::from_shared(url.clone())
        .expect("uri")
        .tls_config(trusting(&ca.ca_pem).identity(identity()))
        .expect("tls")
        .connect()
        .await
        .expect("connects");
    let status = BillingServiceClient::new(channel)
        .create_billing_account(request(&uuid::Uuid::new_v4().to_string()))
        .await
        .expect_err("no credential");
    assert_eq!(status.code(), Code::Unauthenticated);
}
