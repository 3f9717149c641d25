//! api-gateway: PulseTrack's single public entry. Routes `/auth/**` to auth-service,
//! `/api/patients/**`, `/api/billing/**` and `/api/analytics/**` to their services
//! (`/api` stripped), validates the JWT on protected routes and passes it on (each
//! service verifies it again), and strips identity headers a client sent.

pub mod api_docs;
pub mod audit;
pub mod client_addr;
pub mod config;
pub mod error;
pub mod gateway;
pub mod policy;
pub mod proxy;
pub mod refusals;
pub mod routes;

use std::sync::Arc;

use pulsetrack_common::{
    HttpServer, Readiness, error::json_fallbacks, http_client::http_client, rate_limit::RateLimiter, request_id,
    token_check::TokenCheck,
};

pub use crate::gateway::Gateway;
use crate::{config::Config, proxy::Upstream};

/// Builds the service; `build` returns the bound server (port 0 picks a free port).
pub struct Application;

impl Application {
    /// Binds the listener (port 0 picks a free port) and tries a first JWKS fetch and
    /// revocation-feed read; if auth-service is not up yet, `/ready` reports 503 until
    /// both are read.
    pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
        let client = http_client(config.listen.tls.as_ref());
        let tokens = TokenCheck::new(&config.token_check, client.clone())?.start().await;
        let readiness = tokens.readiness(Readiness::new());
        let refusals =
            Arc::new(refusals::Refusals::new(client.clone(), &config.token_check.auth_url, &config.audit_secret)?);
        tokio::spawn(refusals::report_every(refusals.clone()));
        let gateway = Arc::new(Gateway {
            tokens,
            client,
            auth: Upstream { name: "auth-service", base: config.token_check.auth_url.clone() },
            patients: Upstream { name: "patient-service", base: config.patient_url.clone() },
            billing: Upstream { name: "billing-service", base: config.billing_url.clone() },
            analytics: Upstream { name: "analytics-service", base: config.analytics_url.clone() },
            upstream_timeout: config.upstream_timeout,
            max_body_bytes: config.max_body_bytes,
            rate_limiter: RateLimiter::new(config.rate_limit),
            trusted_proxies: config.trusted_proxies.clone(),
            refusals,
        });
        let metrics = pulsetrack_common::metrics::Metrics::new();
        let router = metrics.instrument(json_fallbacks(routes::router(gateway).merge(readiness.routes())));
        Ok(HttpServer::bind(&config.listen, request_id::layer(router)).await?)
    }
}
