//! api-gateway: PulseTrack's single public entry. Routes `/auth/**` to auth-service,
//! `/api/patients/**`, `/api/billing/**` and `/api/analytics/**` to their services
//! (`/api` stripped), validates the JWT on protected routes, forwards the caller's identity and strips spoofed identity headers.

pub mod api_docs;
pub mod audit;
pub mod client_addr;
pub mod config;
pub mod error;
pub mod gateway;
pub mod jwt;
pub mod policy;
pub mod proxy;
pub mod revocations;
pub mod routes;
pub mod upstream_client;

use std::sync::Arc;

use pulsetrack_common::{HttpServer, Readiness, error::json_fallbacks, rate_limit::RateLimiter, request_id};

use crate::{config::Config, jwt::Verifier, proxy::Upstream, revocations::Revocations};
pub use crate::{
    gateway::Gateway,
    upstream_client::{UPSTREAM_IDLE_TIMEOUT, UpstreamClient, upstream_client},
};

/// Builds the service; `build` returns the bound server (port 0 picks a free port).
pub struct Application;

impl Application {
    /// Binds the listener (port 0 picks a free port) and tries a first JWKS fetch; if
    /// auth-service is not up yet, `/ready` reports 503 until the keys are loaded.
    pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
        let client = upstream_client();
        let gateway = Arc::new(Gateway {
            verifier: Verifier::new(&config.jwt, client.clone())?,
            revocations: Revocations::new(config.revocations_url.clone(), client.clone()),
            client,
            auth: Upstream { name: "auth-service", base: config.auth_url.clone() },
            patients: Upstream { name: "patient-service", base: config.patient_url.clone() },
            billing: Upstream { name: "billing-service", base: config.billing_url.clone() },
            analytics: Upstream { name: "analytics-service", base: config.analytics_url.clone() },
            upstream_timeout: config.upstream_timeout,
            max_body_bytes: config.max_body_bytes,
            rate_limiter: RateLimiter::new(config.rate_limit),
            trusted_proxies: config.trusted_proxies.clone(),
        });
        if let Err(reason) = gateway.verifier.load().await {
            tracing::warn!(%reason, "starting without token verification keys");
        }
        if let Err(e) = gateway.revocations.sync().await {
            tracing::warn!(error = %e, "starting without the revocation feed: protected routes answer 503 until it is read");
        }
        tokio::spawn({
            let gateway = gateway.clone();
            async move { gateway.revocations.follow().await }
        });
        let readiness = {
            let (keys, feed) = (gateway.clone(), gateway.clone());
            Readiness::new()
                .check("jwt-keys", move || {
                    let gateway = keys.clone();
                    async move { gateway.verifier.ready().await }
                })
                .check("revocation-feed", move || std::future::ready(feed.revocations.ready()))
        };
        let metrics = pulsetrack_common::metrics::Metrics::new();
        let router = metrics.instrument(json_fallbacks(routes::router(gateway).merge(readiness.routes())));
        Ok(HttpServer::bind(&config.listen, request_id::layer(router)).await?)
    }
}
