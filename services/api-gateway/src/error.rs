//! Gateway errors and their one mapping to HTTP responses (all with a JSON body).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use std::time::Duration;

use pulsetrack_common::{ApiError, identity::AccessError, rate_limit::retry_after_secs, token_check::TokenError};

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
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
