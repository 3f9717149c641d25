//! The state every handler shares: the upstreams, the token check, the limits, and
//! the three things every route does with them: find the client's address, count the
//! request against a rate limit, forward it.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request},
    response::Response,
};
use pulsetrack_common::{http_client::HttpClient, rate_limit::RateLimiter, token_check::TokenCheck};

use crate::{
    client_addr::client_addr,
    error::GatewayError,
    proxy::{Forward, Upstream},
    refusals::Refusals,
};

pub struct Gateway {
    pub(crate) client: HttpClient,
    /// The token check the gateway applies before forwarding (each service applies it again).
    pub(crate) tokens: Arc<TokenCheck>,
    pub(crate) auth: Upstream,
    pub(crate) patients: Upstream,
    pub(crate) billing: Upstream,
    pub(crate) analytics: Upstream,
    pub(crate) upstream_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) rate_limiter: RateLimiter<RateKey>,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// The gateway's own refusals, counted for auth-service's trail.
    pub(crate) refusals: Arc<Refusals>,
}

/// Whom the rate limit counts a request against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// An authenticated account (its token's subject), wherever it calls from.
    Account(String),
    /// A client address, on the public routes.
    Address(IpAddr),
}

impl Gateway {
    /// The client's address: the peer, or what a trusted proxy reported.
    pub(crate) fn client(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.ip());
        client_addr(peer, request.headers(), &self.trusted_proxies)
    }

    /// Counts one request against `key`'s rate limit.
    pub(crate) fn admit(&self, key: RateKey) -> Result<(), GatewayError> {
        self.rate_limiter.acquire(&key).map_err(|wait| {
            tracing::info!(?key, wait_ms = wait.as_millis(), "rate limited");
            GatewayError::RateLimited(wait)
        })
    }

    pub(crate) async fn forward(
        &self,
        upstream: &Upstream,
        path: &str,
        client_addr: IpAddr,
        request: Request,
    ) -> Result<Response, GatewayError> {
        Forward {
            client: &self.client,
            upstream,
            path,
            timeout: self.upstream_timeout,
            max_body_bytes: self.max_body_bytes,
            client_addr,
        }
        .send(request)
        .await
    }
}
