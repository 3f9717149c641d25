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
    error::not_found_fallback,
    kafka::{PATIENT_DLT_TOPIC, PATIENT_TOPIC},
    request_id,
    shutdown::Shutdown,
};

use crate::{config::Config, consumer::EventConsumer, repository::EventRepository};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    server: HttpServer,
    config: Config,
    events: EventRepository,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = pulsetrack_common::db::connect_and_migrate(&config.database, &MIGRATOR)
            .await
            .context("cannot prepare the analytics database")?;
        let events = EventRepository::new(pool.clone());
        let router =
            routes::router(events.clone()).merge(Readiness::new().postgres(pool).routes()).fallback(not_found_fallback);
        let server = HttpServer::bind(&config.listen, request_id::layer(router)).await?;
        Ok(Self { server, config, events })
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
        let group_id = self.config.group_id.clone();
        let consume = async move {
            tokio::select! {
                () = kafka.ensure_topics_until_ok(&[PATIENT_TOPIC, PATIENT_DLT_TOPIC]) => {}
                () = topics_stop => return Ok(()),
            }
            EventConsumer::new(&kafka, &group_id, events)?.run(consumer_stop).await;
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
