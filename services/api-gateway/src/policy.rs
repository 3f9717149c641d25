//! The access policy every protected route applies: a valid bearer token, a role that
//! holds the route's permission ([`pulsetrack_common::identity::Role::may`] decides),
//! and the account's rate limit. One check, so that no route can skip a step.

use axum::http::HeaderMap;
use pulsetrack_common::identity::{self, AccessError, Claims, Permission, TokenScope};

use crate::{
    error::GatewayError,
    gateway::{Gateway, RateKey},
};

impl Gateway {
    /// The claims of the request's bearer token, when its session has not ended.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, GatewayError> {
        let token = identity::bearer_token(headers)
            .map_err(|e| GatewayError::InvalidToken(e.to_string()))?
            .ok_or(GatewayError::MissingToken)?;
        let claims = self.verifier.verify(token).await?;
        self.revocations.check(claims.sid)?;
        Ok(claims)
    }

    /// The claims of a token that may call `path` (a restricted token reaches only its
    /// step's routes); the request counts against the account's rate limit.
    pub(crate) async fn authenticate_for(&self, headers: &HeaderMap, path: &str) -> Result<Claims, GatewayError> {
        let claims = self.authenticate(headers).await?;
        if !claims.scope.allows(path) {
            return Err(GatewayError::ScopeRestricted(claims.scope));
        }
        self.admit(RateKey::Account(claims.sub.clone()))?;
        Ok(claims)
    }

    /// The caller's claims when its token is valid and its role holds `permission`;
    /// the request counts against its rate limit.
    pub(crate) async fn authorize(&self, headers: &HeaderMap, permission: Permission) -> Result<Claims, GatewayError> {
        let claims = self.authenticate(headers).await?;
        if claims.scope != TokenScope::Full {
            return Err(GatewayError::ScopeRestricted(claims.scope));
        }
        if !claims.role.may(permission) {
            tracing::info!(user_id = %claims.sub, role = %claims.role, %permission, "refused by the access policy");
            return Err(GatewayError::Forbidden(AccessError::Forbidden { role: claims.role, permission }));
        }
        self.admit(RateKey::Account(claims.sub.clone()))?;
        Ok(claims)
    }
}
