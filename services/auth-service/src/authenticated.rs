//! Who calls auth-service's account routes, checked here and not taken on trust: the
//! bearer token's signature (auth-service holds the key), then its session and account
//! in the database. A token of an ended session, a disabled account or a changed
//! account is refused at once, whatever the gateways know; and what a caller may do is
//! decided by its account's current role, not by the token's claim.

use std::net::IpAddr;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, request::Parts},
};
use pulsetrack_common::{
    identity::{self, AccessError, Claims, Permission, TokenScope},
    request_id::REQUEST_ID_HEADER,
};
use uuid::Uuid;

use crate::{
    error::Error,
    repository::{AccountStatus, SessionRow, User},
    state::AppState,
};

/// A caller with a live session and an active account, whose token is a full one
/// ([`TokenScope::Full`]). [`AnyScope`] also takes a token restricted to one step.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account as the database has it now.
    pub user: User,
    pub session: SessionRow,
    pub claims: Claims,
    pub request_id: Option<String>,
    pub client_addr: Option<IpAddr>,
}

impl Authenticated {
    /// `Ok` when the account's current role holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), Error> {
        let role = self.user.role;
        if role.may(permission) {
            Ok(())
        } else {
            tracing::info!(user_id = %self.user.id, %role, %permission, "refused by the access policy");
            Err(AccessError::Forbidden { role, permission }.into())
        }
    }

    /// Checks the request's bearer token and loads its session and account.
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Self, Error> {
        let token = bearer(headers)?.ok_or(Error::Access(AccessError::Unauthenticated))?;
        let claims = state.tokens.verify(token).map_err(|_| Error::InvalidToken)?;
        let user_id: Uuid = claims.sub.parse().map_err(|_| Error::InvalidToken)?;
        let (session, user) = state.sessions.live(claims.sid, user_id).await?.ok_or(Error::InvalidToken)?;
        if user.status != AccountStatus::Active {
            return Err(Error::InvalidToken);
        }
        Ok(Self {
            user,
            session,
            claims,
            request_id: headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string),
            client_addr: identity::client_addr(headers),
        })
    }
}

/// The bearer token of `headers`, if any; a malformed `Authorization` is refused.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    identity::bearer_token(headers).map_err(|_| Error::InvalidToken)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Authenticated::from_headers(state, &parts.headers).await?;
        if !caller.claims.scope.is_full() {
            return Err(Error::ScopeRestricted(caller.claims.scope));
        }
        Ok(caller)
    }
}

/// A caller whose token may be restricted to one step ([`TokenScope`]): for the routes
/// that step needs (logout, the account itself, a password change, TOTP enrolment).
/// Each such route checks [`TokenScope::allows`] itself.
#[derive(Debug, Clone)]
pub struct AnyScope(pub Authenticated);

impl FromRequestParts<AppState> for AnyScope {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Authenticated::from_headers(state, &parts.headers).await?;
        if !caller.claims.scope.allows(parts.uri.path()) {
            return Err(Error::ScopeRestricted(caller.claims.scope));
        }
        Ok(AnyScope(caller))
    }
}

impl AnyScope {
    pub fn scope(&self) -> TokenScope {
        self.0.claims.scope
    }
}
