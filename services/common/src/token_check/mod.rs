//! Every service verifies its caller itself (zero trust inside the VPC): the bearer
//! token the gateway passes on is checked here, in each service, as the gateway checks
//! it: signature (auth-service's published keys), `exp`, `iss`, `aud`, and the session
//! against auth-service's revocation feed. Identity headers are never believed.
//!
//! A service builds one [`TokenCheck`], starts it ([`TokenCheck::start`]: first key
//! load and feed read, then the feed followed in the background), puts it on its
//! router with [`TokenCheck::layer`], and adds its two readiness checks. The
//! [`crate::identity::Caller`] extractor then finds it there.

mod caller;
mod config;
mod revocations;
mod verifier;

use std::sync::Arc;

use axum::{Extension, http::HeaderMap};

pub use self::{
    config::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, KeySource, TokenCheckConfig, default_jwks_url, revocations_url},
    revocations::{MAX_STALENESS, POLL_INTERVAL, Revocations},
    verifier::Verifier,
};
use crate::{
    ApiError, Readiness,
    http_client::HttpClient,
    identity::{self, Claims, TokenScope},
};

/// Why a request's token is not accepted. One mapping to HTTP ([`ApiError`]); the
/// gateway maps it into its own error enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token verification keys unavailable")]
    KeysUnavailable,
    /// The token's session has ended (logout, a disabled account, a role change ...).
    #[error("the token's session has ended")]
    SessionEnded,
    /// The revocation feed has not been read lately: no token can be trusted.
    #[error("the revocation feed is stale")]
    RevocationsStale,
    /// The token may only be used for one step (a password change, TOTP enrolment).
    #[error("the token is restricted to {0}")]
    ScopeRestricted(TokenScope),
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match &e {
            TokenError::Missing => ApiError::unauthorized("a bearer token is required"),
            // The reason is logged, not returned: it would help a forger.
            TokenError::Invalid(reason) => {
                tracing::info!(%reason, "token rejected");
                ApiError::unauthorized("invalid or expired token")
            }
            TokenError::SessionEnded => {
                tracing::info!("token of an ended session refused");
                ApiError::unauthorized("invalid or expired token")
            }
            TokenError::KeysUnavailable => {
                tracing::error!("no token verification key available");
                ApiError::service_unavailable("authentication is temporarily unavailable")
            }
            TokenError::RevocationsStale => {
                tracing::warn!("the revocation feed is stale: protected routes refused");
                ApiError::service_unavailable("authentication is temporarily unavailable")
            }
            TokenError::ScopeRestricted(scope) => {
                ApiError::forbidden(format!("this token may only be used for one step ({scope}); complete it first"))
            }
        }
    }
}

/// A service's token check: the verification keys and its view of the revocation feed.
pub struct TokenCheck {
    verifier: Verifier,
    revocations: Revocations,
}

impl TokenCheck {
    pub fn new(config: &TokenCheckConfig, client: HttpClient) -> anyhow::Result<Self> {
        Ok(Self {
            verifier: Verifier::new(config, client.clone())?,
            revocations: Revocations::new(config.revocations_url.clone(), client),
        })
    }

    /// Loads the keys and reads the feed once (a service may start before auth-service:
    /// it then refuses tokens, 503, and reports not ready until both are read), then
    /// follows the feed in the background.
    pub async fn start(self) -> Arc<Self> {
        if let Err(reason) = self.verifier.load().await {
            tracing::warn!(%reason, "starting without token verification keys: protected routes answer 503 until they load");
        }
        if let Err(e) = self.revocations.sync().await {
            tracing::warn!(error = %e, "starting without the revocation feed: protected routes answer 503 until it is read");
        }
        let check = Arc::new(self);
        tokio::spawn({
            let check = check.clone();
            async move { check.revocations.follow().await }
        });
        check
    }

    /// The claims of the request's bearer token, when it verifies and its session has
    /// not ended.
    pub async fn claims(&self, headers: &HeaderMap) -> Result<Claims, TokenError> {
        let token = identity::bearer_token(headers)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .ok_or(TokenError::Missing)?;
        let claims = self.verifier.verify(token).await?;
        self.revocations.check(claims.sid)?;
        Ok(claims)
    }

    /// The claims of a full-scope token: what every route outside auth-service needs.
    pub async fn full_claims(&self, headers: &HeaderMap) -> Result<Claims, TokenError> {
        let claims = self.claims(headers).await?;
        if !claims.scope.is_full() {
            return Err(TokenError::ScopeRestricted(claims.scope));
        }
        Ok(claims)
    }

    /// `readiness` with this check's two conditions: a key loaded, the feed fresh.
    pub fn readiness(self: &Arc<Self>, readiness: Readiness) -> Readiness {
        let (keys, feed) = (self.clone(), self.clone());
        readiness
            .check("jwt-keys", move || {
                let check = keys.clone();
                async move { check.verifier.ready().await }
            })
            .check("revocation-feed", move || std::future::ready(feed.revocations.ready()))
    }

    /// The layer that makes this check available to the [`crate::identity::Caller`]
    /// extractor of every route below it.
    pub fn layer(self: &Arc<Self>) -> Extension<Arc<Self>> {
        Extension(self.clone())
    }
}
