//! auth-service's own audit trail (service `auth-service`), with the same properties
//! as the others (`pulsetrack_common::audit`): every security event is recorded before
//! it is answered, and an event that cannot be recorded is answered 503. What it
//! records, and the gateway's refusals it takes in, are listed in `Action`.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use pulsetrack_common::{
    ApiError,
    audit::{ANONYMOUS, Access, Action, NO_ROLE},
    identity::{self, Caller, Identity},
    request_id::REQUEST_ID_HEADER,
};

use crate::{authenticated::Authenticated, error::Error, repository::User, state::AppState};

/// The service's name in its trail and its credentials.
pub const SERVICE: &str = pulsetrack_common::service_auth::AUTH_SERVICE;

impl Authenticated {
    /// `action` by this caller, from where it called.
    pub fn did(&self, action: Action) -> Access {
        Access::by(&self.user.id.to_string(), self.user.role.as_str(), action, StatusCode::OK)
            .from_client(self.request_id.clone(), self.client_addr)
    }

    /// The caller as the shared audit routes take it: its account's current role.
    pub fn as_caller(&self) -> Caller {
        Caller {
            identity: Identity {
                user_id: self.user.id.to_string(),
                email: self.user.email.clone(),
                role: self.user.role,
            },
            request_id: self.request_id.clone(),
            client_addr: self.client_addr,
        }
    }
}

/// Who made a request no token names (a signup, a login, a refresh, a reset).
#[derive(Debug, Clone)]
pub struct Client {
    pub request_id: Option<String>,
    pub addr: Option<IpAddr>,
}

impl Client {
    /// The client as the gateway reported it, else the peer (a direct call).
    pub fn of(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> Self {
        Self {
            request_id: headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string),
            addr: identity::client_addr(headers).or(peer.map(|p| p.ip())),
        }
    }

    /// `action` by `account` when one is known, else by [`ANONYMOUS`].
    pub fn did(&self, action: Action, account: Option<&User>) -> Access {
        let access = match account {
            Some(user) => Access::by(&user.id.to_string(), user.role.as_str(), action, StatusCode::OK),
            None => Access::by(ANONYMOUS, NO_ROLE, action, StatusCode::OK),
        };
        access.from_client(self.request_id.clone(), self.addr)
    }
}

impl AppState {
    /// Records `access` with the outcome of `result` (`ok` when it succeeded), and
    /// answers once the entry is committed: 503 when it cannot be.
    pub async fn recorded<T>(&self, access: Access, ok: StatusCode, result: Result<T, Error>) -> Result<T, ApiError> {
        self.audit.recorded_as(access, ok, result.map_err(ApiError::from)).await
    }

    /// Records an event that is not a request's answer (a lockout, a session ended on
    /// the way); the request fails with 503 when it cannot be recorded.
    pub async fn record(&self, access: Access) -> Result<(), Error> {
        self.audit.record(access).await.map_err(|e| Error::Audit(e.to_string()))
    }
}
