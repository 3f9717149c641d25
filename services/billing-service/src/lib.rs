//! billing-service: opens one billing account per patient, over gRPC (`BillingService`
//! on port 9001, with the standard health service and server reflection), and serves
//! `/health`, `/ready` and `GET /billing/accounts/{patientId}` over HTTP (port 4001).

pub mod config;
pub mod grpc;
pub mod http;
pub mod repository;

use std::{future::Future, io, net::SocketAddr};

use anyhow::Context;
use pulsetrack_common::shutdown::Shutdown;
use pulsetrack_common::{HttpServer, Readiness, error::not_found_fallback, request_id};
use pulsetrack_proto::billing::billing_service_server::BillingServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::{config::Config, grpc::BillingGrpc, repository::AccountRepository};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    http: HttpServer,
    grpc: TcpListener,
    grpc_addr: SocketAddr,
    accounts: AccountRepository,
}

impl Application {
    /// Connects and migrates the database and binds both listeners (port 0 works).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = pulsetrack_common::db::connect_and_migrate(&config.database, &MIGRATOR)
            .await
            .context("cannot prepare the billing database")?;
        let accounts = AccountRepository::new(pool.clone());
        let router =
            http::router(accounts.clone()).merge(Readiness::new().postgres(pool).routes()).fallback(not_found_fallback);
        let http = HttpServer::bind(&config.http, request_id::layer(router)).await?;
        let grpc = TcpListener::bind((config.grpc.host.as_str(), config.grpc.port)).await?;
        let grpc_addr = grpc.local_addr()?;
        Ok(Self { http, grpc, grpc_addr, accounts })
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
        health_reporter.set_serving::<BillingServiceServer<BillingGrpc>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pulsetrack_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("gRPC reflection")?;
        tracing::info!(addr = %self.grpc_addr, "gRPC listening");
        let incoming = TcpIncoming::from(self.grpc).with_nodelay(Some(true));
        let grpc = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(BillingServiceServer::new(BillingGrpc::new(self.accounts)))
            .serve_with_incoming_shutdown(incoming, shutdown.wait());
        let http = self.http.run_until(shutdown.wait());
        let (grpc, http): (Result<(), tonic::transport::Error>, io::Result<()>) = tokio::join!(grpc, http);
        grpc.context("gRPC server")?;
        http.context("HTTP server")?;
        Ok(())
    }
}
