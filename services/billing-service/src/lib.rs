//! billing-service: opens one billing account per patient, over gRPC (`BillingService`
//! on port 9001), and serves `/health`, `/ready` and `GET /billing/accounts/{patientId}`
//! over HTTP (port 4001).
//!
//! Every `BillingService` call must carry a service credential minted by patient-service
//! with `BILLING_GRPC_SECRET` ([`grpc::RequireCredential`]); without one it is answered
//! `UNAUTHENTICATED`. The standard gRPC health service on the same port needs none (load
//! balancers and operators probe it). Server reflection is served only with
//! `GRPC_REFLECTION=true`: it lists every method to whoever connects.

pub mod config;
pub mod grpc;
pub mod http;
pub mod repository;

use std::{future::Future, io, net::SocketAddr, time::Duration};

use anyhow::Context;
use pulsetrack_common::{
    HttpServer, Readiness, error::json_fallbacks, http_client::http_client, request_id, token_check::TokenCheck,
};
use pulsetrack_common::{
    metrics::Metrics,
    service_auth::{self, ServiceVerifier},
    shutdown::Shutdown,
};
use pulsetrack_common::{settings::TlsClientAuth, tls::TlsConfig};
use pulsetrack_proto::billing::billing_service_server::BillingServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::{
    server::NamedService,
    transport::{Certificate, Identity, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    config::Config,
    grpc::{BillingGrpc, GrpcMetrics, RequireCredential},
    repository::AccountRepository,
};

/// The service's migrations (`<service> migrate` runs them as a separate step).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The name this service signs its audit entries and logs with, and the audience of
/// the credentials its callers present.
pub const SERVICE: &str = service_auth::BILLING_SERVICE;

/// How often the gRPC health status is brought in line with the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a database ping may take before the database counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Application {
    http: HttpServer,
    grpc: TcpListener,
    grpc_addr: SocketAddr,
    accounts: AccountRepository,
    pool: PgPool,
    grpc_metrics: GrpcMetrics,
    /// The trail the gRPC calls' disclosures are recorded in.
    audit: pulsetrack_common::audit::AuditLog,
    /// Checks the callers' service credentials.
    credentials: ServiceVerifier,
    /// Whether gRPC server reflection is served.
    reflection: bool,
    /// TLS on the gRPC port (the HTTP listener's identity and client authentication).
    grpc_tls: Option<ServerTlsConfig>,
}

impl Application {
    /// Connects and migrates the database and binds both listeners (port 0 works).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = pulsetrack_common::db::connect_and_migrate(&config.database, &MIGRATOR)
            .await
            .context("cannot prepare the billing database")?;
        let accounts = AccountRepository::new(pool.clone());
        let audit = pulsetrack_common::audit::AuditLog::spawn(pool.clone(), SERVICE, &config.audit);
        let metrics = Metrics::new();
        metrics.track_pool(pool.clone(), config.database.max_connections);
        let grpc_metrics = GrpcMetrics::register(&metrics);
        let tokens = TokenCheck::new(&config.token_check, http_client(config.http.tls.as_ref()))?.start().await;
        let readiness = tokens.readiness(Readiness::new()).postgres(pool.clone());
        let router = metrics.instrument(json_fallbacks(
            http::router(accounts.clone(), audit.clone()).layer(tokens.layer()).merge(readiness.routes()),
        ));
        let http = HttpServer::bind(&config.http, request_id::layer(router)).await?;
        let grpc = TcpListener::bind((config.grpc.host.as_str(), config.grpc.port)).await?;
        let grpc_addr = grpc.local_addr()?;
        let credentials = ServiceVerifier::new(&config.grpc_secret, SERVICE, &service_auth::BILLING_CALLERS);
        Ok(Self {
            http,
            grpc,
            grpc_addr,
            accounts,
            pool,
            grpc_metrics,
            audit,
            credentials,
            reflection: config.grpc_reflection,
            grpc_tls: config.grpc.tls.as_ref().map(grpc_tls),
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(pulsetrack_common::shutdown::signal()).await
    }

    /// Serves HTTP and gRPC until `shutdown` completes; both drain in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let shutdown = Shutdown::on(shutdown);
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // From the first call on, the health status is whatever the database's is.
        let status = database_status(&self.pool).await;
        set_health(&health_reporter, status).await;
        let health = tokio::spawn(follow_database(health_reporter, status, self.pool, shutdown.wait()));
        let reflection = self.reflection.then(reflection_service).transpose()?;
        tracing::info!(addr = %self.grpc_addr, reflection = self.reflection, "gRPC listening");
        let incoming = TcpIncoming::from(self.grpc).with_nodelay(Some(true));
        let billing = BillingServiceServer::with_interceptor(
            BillingGrpc::new(self.accounts, self.grpc_metrics.clone(), self.audit),
            RequireCredential::new(self.credentials, self.grpc_metrics),
        );
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = self.grpc_tls {
            server = server.tls_config(tls).context("gRPC TLS")?;
        }
        let grpc = server
            .add_service(health_service)
            .add_optional_service(reflection)
            .add_service(billing)
            .serve_with_incoming_shutdown(incoming, shutdown.wait());
        let http = self.http.run_until(shutdown.wait());
        let (grpc, http): (Result<(), tonic::transport::Error>, io::Result<()>) = tokio::join!(grpc, http);
        health.abort();
        grpc.context("gRPC server")?;
        http.context("HTTP server")?;
        Ok(())
    }
}

/// The gRPC port's TLS: the service's certificate and, unless client authentication is
/// off, callers must present a certificate the internal CA signed.
fn grpc_tls(tls: &TlsConfig) -> ServerTlsConfig {
    let pem = tls.pem();
    let config = ServerTlsConfig::new().identity(Identity::from_pem(&pem.cert, pem.key.expose()));
    match tls.client_auth() {
        TlsClientAuth::Required => config.client_ca_root(Certificate::from_pem(&pem.ca)),
        TlsClientAuth::None => config,
    }
}

/// gRPC server reflection (v1) over the billing and health contracts.
fn reflection_service() -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pulsetrack_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("gRPC reflection")
}

/// The status of the whole server (`""`) and of `BillingService`.
async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(BillingServiceServer::<BillingGrpc>::NAME, status).await;
}

/// SERVING when the database answers a ping in time.
async fn database_status(pool: &PgPool) -> ServingStatus {
    match tokio::time::timeout(PING_TIMEOUT, pulsetrack_common::db::ping(pool)).await {
        Ok(Ok(())) => ServingStatus::Serving,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database ping failed");
            ServingStatus::NotServing
        }
        Err(_) => {
            tracing::warn!(timeout_ms = PING_TIMEOUT.as_millis() as u64, "database ping timed out");
            ServingStatus::NotServing
        }
    }
}

/// Pings the database every [`HEALTH_INTERVAL`] and reports SERVING while it answers,
/// NOT_SERVING while it does not, until `stop` completes. `reported` is the status set.
async fn follow_database(
    reporter: HealthReporter,
    mut reported: ServingStatus,
    pool: PgPool,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(HEALTH_INTERVAL) => {}
        }
        let status = database_status(&pool).await;
        if status != reported {
            tracing::info!(%status, "gRPC health follows the database");
            set_health(&reporter, status).await;
            reported = status;
        }
    }
}
