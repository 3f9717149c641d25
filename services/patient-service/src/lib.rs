//! patient-service: patient CRUD on its own Postgres database, with an OpenAPI
//! document at `/v3/api-docs` and Swagger UI at `/swagger-ui`. Each change also
//! opens a billing account (gRPC) and publishes a `PatientEvent` (Kafka) through the
//! transactional outbox.

pub mod config;
pub mod domain;
pub mod error;
pub mod outbox;
pub mod repository;
pub mod routes;
pub mod service;

use anyhow::Context;
use pulsetrack_common::{
    HttpServer, Readiness, error::json_fallbacks, http_client::http_client, request_id, token_check::TokenCheck,
};

use crate::{config::Config, repository::PatientRepository, service::PatientService};

/// The service's migrations (`<service> migrate` runs them as a separate step).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The name this service signs its audit entries and logs with, and the issuer of the
/// service credentials its calls to billing-service carry.
pub const SERVICE: &str = pulsetrack_common::service_auth::PATIENT_SERVICE;

/// Builds the service; `build` returns the bound server (port 0 picks a free port).
pub struct Application;

impl Application {
    /// Connects and migrates the database and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
        let pool = pulsetrack_common::db::connect_and_migrate(&config.database, &MIGRATOR)
            .await
            .context("cannot prepare the patient database")?;
        let wakeup = outbox::Wakeup::default();
        let backpressure = outbox::Backpressure::default();
        outbox::Dispatcher::new(
            pool.clone(),
            wakeup.clone(),
            backpressure.clone(),
            &config.billing,
            config.kafka.clone(),
            config.outbox.clone(),
        )?
        .spawn();
        // The broker may come up after us; events wait in the outbox meanwhile.
        let kafka = config.kafka.clone();
        tokio::spawn(async move { kafka.ensure_topics_until_ok(&[pulsetrack_common::kafka::PATIENT_TOPIC]).await });
        let service = PatientService::new(PatientRepository::new(pool.clone()), wakeup, backpressure.clone());
        let audit = pulsetrack_common::audit::AuditLog::spawn(pool.clone(), SERVICE, &config.audit);
        // `/health` also tells how much the outbox holds, per destination (for operators
        // and `deployer status`): {"status": "UP", "outbox": {"billing": {"pending": n,
        // "dead": n}, "patient-event": {...}}}, `"outbox": null` when Postgres does not answer.
        let metrics = pulsetrack_common::metrics::Metrics::new();
        metrics.track_pool(pool.clone(), config.database.max_connections);
        outbox::register_metrics(&metrics, pool.clone(), backpressure.clone());
        if let Some(namespace) = &config.cloudwatch_namespace {
            outbox::publish_to_cloudwatch(pool.clone(), namespace.clone());
        }
        let tokens = TokenCheck::new(&config.token_check, http_client(config.listen.tls.as_ref()))?.start().await;
        let depth_pool = pool.clone();
        let readiness = tokens.readiness(Readiness::new()).postgres(pool).detail("outbox", move || {
            let pool = depth_pool.clone();
            async move {
                outbox::depths(&pool).await.inspect_err(|e| tracing::warn!(error = %e, "cannot count the outbox")).ok()
            }
        });
        let router = metrics
            .instrument(json_fallbacks(routes::router(service, audit).layer(tokens.layer()).merge(readiness.routes())));
        Ok(HttpServer::bind(&config.listen, request_id::layer(router)).await?)
    }
}
