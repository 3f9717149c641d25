//! Login: the password checked against the account (or a dummy hash, so that an
//! unknown address takes as long), failures counted per address whether or not an
//! account has it, and a new session on success.

use std::net::{IpAddr, SocketAddr};

use axum::{
    Extension, Json,
    extract::{ConnectInfo, State},
    http::HeaderMap,
};
use pulsetrack_common::{
    ApiError, JsonBody,
    identity::{self, TokenScope},
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};

use super::{missing_field, session, totp};
use crate::{
    error::Error,
    password,
    repository::{AccountStatus, User},
    state::{AppState, LoginOutcome},
};

/// Unknown fields (the seed sends `role`) are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    #[schema(value_type = String, required = true, example = "ada@example.com")]
    email: Option<String>,
    /// At most 128 characters.
    #[schema(value_type = String, max_length = 128, required = true, example = "correct-horse-battery")]
    password: Option<String>,
    /// The authenticator's current code, for an account with a second factor.
    #[schema(value_type = Option<String>, example = "123456")]
    totp: Option<String>,
    /// One of the account's recovery codes, instead of `totp`.
    #[serde(rename = "recoveryCode")]
    #[schema(value_type = Option<String>)]
    recovery_code: Option<String>,
}

/// A new session's tokens (also what a refresh answers).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The access token (a JWT): `Authorization: Bearer <token>`.
    pub token: String,
    pub token_type: String,
    /// The access token's life in seconds.
    pub expires_in: u64,
    /// One use only: `POST /auth/refresh` answers a new pair; presenting it a second
    /// time ends the session.
    pub refresh_token: String,
    /// Seconds the refresh token may be used in: until the session's idle limit, or its
    /// absolute limit if sooner.
    pub refresh_expires_in: u64,
    /// Present when the token may only be used for one step first.
    #[serde(default, skip_serializing_if = "TokenScope::is_full")]
    pub scope: TokenScope,
}

/// The client as the gateway reported it, else the peer (a direct call).
fn client_addr(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    identity::client_addr(headers).or(peer.map(|p| p.ip()))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 429, body = ApiError), (status = "default", description = "Any other error (503 ...), with the same body", body = ApiError)))]
/// Counted by outcome (`auth_logins_total`).
pub(super) async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let address = client_addr(&headers, peer.map(|Extension(ConnectInfo(p))| p));
    let result = attempt_login(&state, address, body).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(Error::InvalidCredentials) => "invalid_credentials",
        Err(Error::Throttled(_)) => "throttled",
        Err(Error::Validation(_)) => "invalid_request",
        Err(_) => "error",
    };
    state.logins.get_or_create(&LoginOutcome { outcome }).inc();
    result.map(Json)
}

/// Order matters: the throttles are checked before any hashing, so that a flood of bad
/// logins costs a lookup each, not an argon2 slot.
async fn attempt_login(
    state: &AppState,
    address: Option<IpAddr>,
    mut body: LoginRequest,
) -> Result<LoginResponse, Error> {
    let mut v = Validator::new();
    let email = v.field("email", validate::required(body.email.take()));
    let password = v.field("password", validate::required(body.password.take()).and_then(bounded));
    v.finish().map_err(Error::Validation)?;
    let (Some(email), Some(password)) = (email, password) else { return Err(missing_field()) };
    if let Some(address) = address {
        state.throttle.per_address.check(&address).map_err(Error::Throttled)?;
    }
    // A malformed email cannot belong to an account: the same 401, and no row counted.
    let email = validate::email(Some(email)).ok();
    let throttle = &state.throttle;
    if let Some(email) = &email {
        throttle.check_email(email).await?;
    }
    let account = match &email {
        Some(email) => state.users.find_by_email(email).await?,
        None => None,
    };
    let verified = password::verify(password, account.as_ref().map(|a| a.password_hash.clone())).await?;
    let user = match (account, email) {
        (Some(user), Some(email)) if verified && user.status == AccountStatus::Active => {
            match totp::second_factor(state, &user, body.totp, body.recovery_code).await {
                Ok(()) => {}
                Err(Error::InvalidCredentials) => {
                    failed(state, address, Some(&email), Some(&user)).await?;
                    return Err(Error::InvalidCredentials);
                }
                Err(e) => return Err(e),
            }
            throttle.failures.clear(&email).await?;
            user
        }
        (account, email) => {
            failed(state, address, email.as_deref(), account.as_ref()).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    session::start(state, &user, address).await
}

/// Counts a failed login against the client address and the email address.
async fn failed(
    state: &AppState,
    address: Option<IpAddr>,
    email: Option<&str>,
    account: Option<&User>,
) -> Result<(), Error> {
    if let Some(address) = address {
        state.throttle.per_address.consume(&address);
    }
    if let Some(email) = email
        && let Some(until) = state.throttle.failures.record(email, &state.throttle.lockout).await?
    {
        tracing::warn!(user_id = ?account.map(|a| a.id), %until, "address locked after failed logins");
    }
    Ok(())
}

fn bounded(password: String) -> Result<String, String> {
    if password.chars().count() > password::MAX_LEN {
        Err(format!("must be at most {} characters", password::MAX_LEN))
    } else {
        Ok(password)
    }
}
