//! The access policy every protected route applies: a valid bearer token, a role that
//! holds the route's permission ([`pulsetrack_common::identity::Role::may`] decides),
//! and the account's rate limit. One check, so that no route can skip a step.

use axum::http::HeaderMap;
use pulsetrack_common::{
    identity::{AccessError, Claims, Permission},
    token_check::TokenError,
};

use crate::{
    error::GatewayError,
    gateway::{Gateway, RateKey},
};

impl Gateway {
    /// The claims of the request's bearer token, when its session has not ended.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, GatewayError> {
        Ok(self.tokens.claims(headers).await?)
    }

    /// The claims of a token that may call `path` (a restricted token reaches only its
    /// step's routes); the request counts against the account's rate limit.
    pub(crate) async fn authenticate_for(&self, headers: &HeaderMap, path: &str) -> Result<Claims, GatewayError> {
        let claims = self.authenticate(headers).await?;
        if !claims.scope.allows(path) {
            return Err(TokenError::ScopeRestricted(claims.scope).into());
        }
        self.admit(RateKey::Account(claims.sub.clone()))?;
        Ok(claims)
    }

    /// The caller's claims when its token is valid and its role holds `permission`;
    /// the request counts against its rate limit.
    pub(crate) async fn authorize(&self, headers: &HeaderMap, permission: Permission) -> Result<Claims, GatewayError> {
        let claims = self.tokens.full_claims(headers).await?;
        if !claims.role.may(permission) {
            tracing::info!(user_id = %claims.sub, role = %claims.role, %permission, "refused by the access policy");
            return Err(GatewayError::Forbidden(AccessError::Forbidden { role: claims.role, permission }));
        }
        self.admit(RateKey::Account(claims.sub.clone()))?;
        Ok(claims)
    }
}
