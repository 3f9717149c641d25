//! analytics-service: consumes `PatientEvent`s from topic `patient` (group
//! `analytics-service`), stores each exactly once in its own Postgres database, sends
//! undecodable messages to `patient.dlt`, and serves a summary over HTTP (port 4002).

pub mod config;
pub mod consumer;
pub mod repository;
pub mod routes;

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use pulsetrack_common::{
    HttpServer, Readiness,
    error::json_fallbacks,
    http_client::http_client,
    kafka::{PATIENT_DLT_TOPIC, PATIENT_TOPIC},
    request_id,
    shutdown::Shutdown,
    token_check::TokenCheck,
};

use crate::{
    config::Config,
    consumer::{ConsumerMetrics, EventConsumer, GroupMembership},
    repository::EventRepository,
};

/// The service's migrations (`<service> migrate` runs them as a separate step).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The name this service signs its audit entries and logs with.
pub const SERVICE: &str = "analytics-service";

pub struct Application {
    server: HttpServer,
    config: Config,
    events: EventRepository,
    membership: GroupMembership,
    consumer_metrics: ConsumerMetrics,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = pulsetrack_common::db::connect_and_migrate(&config.database, &MIGRATOR)
            .await
            .context("cannot prepare the analytics database")?;
        let events = EventRepository::new(pool.clone());
        let membership = GroupMembership::default();
        let audit = pulsetrack_common::audit::AuditLog::spawn(pool.clone(), SERVICE, &config.audit);
        let metrics = pulsetrack_common::metrics::Metrics::new();
        metrics.track_pool(pool.clone(), config.database.max_connections);
        let consumer_metrics = ConsumerMetrics::register(&metrics);
        let tokens = TokenCheck::new(&config.token_check, http_client(config.listen.tls.as_ref()))?.start().await;
        let readiness = readiness(&config, pool, membership.clone())?;
        let router = metrics.instrument(json_fallbacks(
            routes::router(events.clone(), audit).layer(tokens.layer()).merge(tokens.readiness(readiness).routes()),
        ));
        let server = HttpServer::bind(&config.listen, request_id::layer(router)).await?;
        Ok(Self { server, config, events, membership, consumer_metrics })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(pulsetrack_common::shutdown::signal()).await
    }

    /// Serves HTTP and consumes until `shutdown` completes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let shutdown = Shutdown::on(shutdown);
        // Topics first: the broker does not create them, and subscribing to a missing
        // topic would only log errors until someone did.
        let kafka = self.config.kafka.clone();
        let (consumer_stop, topics_stop) = (shutdown.wait(), shutdown.wait());
        let events = self.events;
        let (group_id, membership, metrics) = (self.config.group_id.clone(), self.membership, self.consumer_metrics);
        let consume = async move {
            tokio::select! {
                () = kafka.ensure_topics_until_ok(&[PATIENT_TOPIC, PATIENT_DLT_TOPIC]) => {}
                () = topics_stop => return Ok(()),
            }
            EventConsumer::new(&kafka, &group_id, events, membership, metrics).await?.run(consumer_stop).await?;
            anyhow::Ok(())
        };
        let http = self.server.run_until(shutdown.wait());
        // A consumer that cannot run ends the process (and its supervisor restarts it)
        // rather than leaving an HTTP server that looks healthy but consumes nothing.
        tokio::try_join!(async { consume.await.context("kafka consumer") }, async {
            http.await.context("HTTP server")
        })?;
        Ok(())
    }
}

/// Ready while the database answers, the broker answers a metadata request for the
/// patient topic, and the consumer is a member of its group: a service that consumes
/// nothing does not say it is ready.
fn readiness(config: &Config, pool: sqlx::PgPool, membership: GroupMembership) -> anyhow::Result<Readiness> {
    let broker = config.kafka.probe().context("kafka client for the readiness probe")?;
    Ok(Readiness::new()
        .postgres(pool)
        .check("kafka", move || {
            let broker = broker.clone();
            async move { broker.check(PATIENT_TOPIC).await }
        })
        .check("consumer-group", move || {
            let joined = membership.joined();
            async move { if joined { Ok(()) } else { Err("not a member of the consumer group yet".into()) } }
        }))
}
