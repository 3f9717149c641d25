//! The access policy every protected route applies: a valid bearer token, a role that
//! holds the route's permission ([`pulsetrack_common::identity::Role::may`] decides),
//! and the account's rate limit. One check, so that no route can skip a step.

use axum::http::HeaderMap;
use pulsetrack_common::{
    identity::{AccessError, Permission},
    token_check::TokenError,
};

use crate::{
    error::GatewayError,
    gateway::{Gateway, RateKey},
};

impl Gateway {
    /// `Ok` when the request's token (of a live session) may call `path` (a restricted
    /// token reaches only its step's routes); the request counts against the account's
    /// rate limit.
    pub(crate) async fn authenticate_for(&self, headers: &HeaderMap, path: &str) -> Result<(), GatewayError> {
        let claims = self.tokens.claims(headers).await?;
        if !claims.scope.allows(path) {
            return Err(TokenError::ScopeRestricted(claims.scope).into());
        }
        self.admit(RateKey::Account(claims.sub))
    }

    /// `Ok` when the caller's token is valid and its role holds `permission`; the
    /// request counts against its rate limit. The upstream verifies the token again.
    pub(crate) async fn authorize(&self, headers: &HeaderMap, permission: Permission) -> Result<(), GatewayError> {
        let claims = self.tokens.full_claims(headers).await?;
        if !claims.role.may(permission) {
            tracing::info!(user_id = %claims.sub, role = %claims.role, %permission, "refused by the access policy");
            return Err(GatewayError::Forbidden(AccessError::Forbidden { role: claims.role, permission }));
        }
        self.admit(RateKey::Account(claims.sub))
    }
}
