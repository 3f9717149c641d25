//! Gateway errors and their one mapping to HTTP responses (all with a JSON body).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use std::time::Duration;

use pulsetrack_common::{ApiError, identity::AccessError, rate_limit::retry_after_secs, token_check::TokenError};

use crate::refusals::Refused;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The bearer token is missing, invalid, of an ended session or restricted, or
    /// cannot be checked now.
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Forbidden(#[from] AccessError),
    #[error("rate limit exceeded")]
    RateLimited(Duration),
    #[error("request body too large")]
    PayloadTooLarge,
    /// An API without a document; `documented` lists those there are.
    #[error("no such API document")]
    NoSuchApi { documented: &'static [&'static str] },
    #[error("upstream {0} timed out")]
    UpstreamTimeout(&'static str),
    #[error("upstream {upstream} unreachable: {reason}")]
    UpstreamUnavailable { upstream: &'static str, reason: String },
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match &e {
            GatewayError::Token(token) => token.clone().into(),
            GatewayError::Forbidden(access) => access.clone().into(),
            GatewayError::RateLimited(wait) => {
                ApiError::too_many_requests("too many requests, slow down", retry_after_secs(*wait))
            }
            GatewayError::NoSuchApi { documented } => ApiError::not_found(format!(
                "no such API document; there are {}",
                documented.iter().map(|api| format!("/api-docs/{api}")).collect::<Vec<_>>().join(", ")
            )),
            GatewayError::PayloadTooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "request body is too large")
            }
            GatewayError::UpstreamTimeout(upstream) => {
                tracing::warn!(upstream, "upstream timed out");
                ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "UPSTREAM_TIMEOUT",
                    format!("{upstream} did not answer in time"),
                )
            }
            GatewayError::UpstreamUnavailable { upstream, reason } => {
                tracing::warn!(upstream, %reason, "upstream unreachable");
                ApiError::new(StatusCode::BAD_GATEWAY, "UPSTREAM_UNAVAILABLE", format!("{upstream} is unavailable"))
            }
        }
    }
}

impl IntoResponse for GatewayError {
    /// A refusal of the gateway's own (a token refused, a permission missing, a rate
    /// limit) is marked [`Refused`], for the audit trail's counts.
    fn into_response(self) -> Response {
        let refused =
            matches!(self, GatewayError::Token(_) | GatewayError::Forbidden(_) | GatewayError::RateLimited(_));
        let mut response = ApiError::from(self).into_response();
        if refused {
            response.extensions_mut().insert(Refused);
        }
        response
    }
}
