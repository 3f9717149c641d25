//! Gateway errors and their one mapping to HTTP responses (all with a JSON body).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use std::time::Duration;

use pulsetrack_common::{
    ApiError,
    identity::{AccessError, TokenScope},
    rate_limit::retry_after_secs,
};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error(transparent)]
    Forbidden(#[from] AccessError),
    #[error("rate limit exceeded")]
    RateLimited(Duration),
    #[error("token verification keys unavailable")]
    KeysUnavailable,
    /// The token's session has ended (logout, a disabled account, a role change ...).
    #[error("the token's session has ended")]
    SessionEnded,
    /// The token may only be used for one step (a password change, TOTP enrolment).
    #[error("the token is restricted to {0}")]
    ScopeRestricted(TokenScope),
    /// The revocation feed has not been read lately: no token can be trusted.
    #[error("the revocation feed is stale")]
    RevocationsStale,
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
            GatewayError::MissingToken => ApiError::unauthorized("a bearer token is required"),
            // The reason is logged, not returned: it would help a forger.
            GatewayError::InvalidToken(reason) => {
                tracing::info!(%reason, "token rejected");
                ApiError::unauthorized("invalid or expired token")
            }
            GatewayError::Forbidden(access) => access.clone().into(),
            GatewayError::RateLimited(wait) => {
                ApiError::too_many_requests("too many requests, slow down", retry_after_secs(*wait))
            }
            GatewayError::KeysUnavailable => {
                tracing::error!("no token verification key available");
                ApiError::service_unavailable("authentication is temporarily unavailable")
            }
            GatewayError::SessionEnded => {
                tracing::info!("token of an ended session refused");
                ApiError::unauthorized("invalid or expired token")
            }
            GatewayError::ScopeRestricted(scope) => {
                ApiError::forbidden(format!("this token may only be used for one step ({scope}); complete it first"))
            }
            GatewayError::RevocationsStale => {
                tracing::warn!("the revocation feed is stale: protected routes refused");
                ApiError::service_unavailable("authentication is temporarily unavailable")
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
