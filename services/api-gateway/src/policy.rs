//! The access policy every protected route applies: a valid bearer token, a role that
//! holds the route's permission ([`pulsetrack_common::identity::Role::may`] decides),
//! and the account's rate limit. One check, so that no route can skip a step.

use axum::http::{HeaderMap, header};
use pulsetrack_common::identity::{AccessError, Claims, Permission};

use crate::{
    error::GatewayError,
    gateway::{Gateway, RateKey},
};

impl Gateway {
    /// The claims of the request's bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, GatewayError> {
        let value = headers.get(header::AUTHORIZATION).ok_or(GatewayError::MissingToken)?;
        let value = value.to_str().map_err(|_| GatewayError::InvalidToken("non-ASCII Authorization header".into()))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(GatewayError::InvalidToken("Authorization is not a Bearer token".into())),
        };
        self.verifier.verify(token).await
    }

    /// The caller's claims when its token is valid and its role holds `permission`;
    /// the request counts against its rate limit.
    pub(crate) async fn authorize(&self, headers: &HeaderMap, permission: Permission) -> Result<Claims, GatewayError> {
        let claims = self.authenticate(headers).await?;
        if !claims.role.may(permission) {
            tracing::info!(user_id = %claims.sub, role = %claims.role, %permission, "refused by the access policy");
            return Err(GatewayError::Forbidden(AccessError::Forbidden { role: claims.role, permission }));
        }
        self.admit(RateKey::Account(claims.sub.clone()))?;
        Ok(claims)
    }
}
