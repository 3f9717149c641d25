//! Login: the password checked against the account (or a dummy hash, so that an
//! unknown address takes as long), failures counted per address whether or not an
//! account has it, and a new session on success.

use std::net::SocketAddr;

use axum::{
    Extension, Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
};
use pulsetrack_common::{
    ApiError, JsonBody,
    audit::Action,
    identity::TokenScope,
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};

use super::{missing_field, session, totp};
use crate::{
    audit::Client,
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

/// What a login attempt found, for its entry in the trail: the account the email
/// belongs to, and why the attempt failed.
#[derive(Default)]
struct Attempt {
    account: Option<User>,
    reason: Option<&'static str>,
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 429, body = ApiError), (status = "default", description = "Any other error (503 ...), with the same body", body = ApiError)))]
/// Counted by outcome (`auth_logins_total`) and recorded in the trail, success or
/// failure, with the reason and the client's address.
pub(super) async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let client = Client::of(&headers, peer.map(|Extension(ConnectInfo(p))| p));
    let mut attempt = Attempt::default();
    let result = attempt_login(&state, &client, body, &mut attempt).await;
    let (outcome, reason) = match &result {
        Ok(_) => ("success", None),
        Err(Error::InvalidCredentials) => ("invalid_credentials", attempt.reason),
        Err(Error::MfaRequired) => ("invalid_credentials", Some("a second factor is required and none was sent")),
        Err(Error::Throttled(_)) => ("throttled", attempt.reason),
        Err(Error::Validation(_)) => ("invalid_request", Some("invalid request")),
        Err(_) => ("error", Some("the attempt could not be checked")),
    };
    state.logins.get_or_create(&LoginOutcome { outcome }).inc();
    let access = match (&result, reason) {
        (Ok(_), _) => client.did(Action::LoginSuccess, attempt.account.as_ref()),
        (Err(_), reason) => {
            client.did(Action::LoginFailure, attempt.account.as_ref()).detail(reason.unwrap_or(outcome))
        }
    };
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

/// Order matters: the throttles are checked before any hashing, so that a flood of bad
/// logins costs a lookup each, not an argon2 slot.
async fn attempt_login(
    state: &AppState,
    client: &Client,
    mut body: LoginRequest,
    attempt: &mut Attempt,
) -> Result<LoginResponse, Error> {
    let address = client.addr;
    let mut v = Validator::new();
    let email = v.field("email", validate::required(body.email.take()));
    let password = v.field("password", validate::required(body.password.take()).and_then(bounded));
    v.finish().map_err(Error::Validation)?;
    let (Some(email), Some(password)) = (email, password) else { return Err(missing_field()) };
    if let Some(address) = address {
        attempt.reason = Some("too many failed logins from this client address");
        state.throttle.per_address.check(&address).map_err(Error::Throttled)?;
    }
    // A malformed email cannot belong to an account: the same 401, and no row counted.
    let email = validate::email(Some(email)).ok();
    let throttle = &state.throttle;
    let account = match &email {
        Some(email) => state.users.find_by_email(email).await?,
        None => None,
    };
    attempt.account = account.clone();
    if let Some(email) = &email {
        attempt.reason = Some("the email address is locked after failed logins");
        throttle.check_email(email).await?;
    }
    let verified = password::verify(password, account.as_ref().map(|a| a.password_hash.clone())).await?;
    attempt.reason = Some(match &account {
        None => "no account has this email address",
        Some(_) if !verified => "wrong password",
        Some(_) => "the account is not active",
    });
    let user = match (account, email) {
        (Some(user), Some(email)) if verified && user.status == AccountStatus::Active => {
            match totp::second_factor(state, &user, body.totp, body.recovery_code).await {
                Ok(()) => {}
                Err(Error::InvalidCredentials) => {
                    attempt.reason = Some("wrong second factor");
                    failed(state, client, Some(&email), Some(&user)).await?;
                    return Err(Error::InvalidCredentials);
                }
                Err(e) => return Err(e),
            }
            throttle.failures.clear(&email).await?;
            user
        }
        (account, email) => {
            failed(state, client, email.as_deref(), account.as_ref()).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    attempt.reason = Some("the account changed while the login was checked");
    session::start(state, &user, address).await
}

/// Counts a failed login against the client address and the email address; a lockout
/// it causes is recorded in the trail.
async fn failed(state: &AppState, client: &Client, email: Option<&str>, account: Option<&User>) -> Result<(), Error> {
    if let Some(address) = client.addr {
        state.throttle.per_address.consume(&address);
    }
    if let Some(email) = email
        && let Some(until) = state.throttle.failures.record(email, &state.throttle.lockout).await?
    {
        tracing::warn!(user_id = ?account.map(|a| a.id), %until, "address locked after failed logins");
        let mut lockout = client.did(Action::Lockout, account).detail(format!("locked until {until}"));
        if let Some(user) = account {
            lockout = lockout.subject(user.id);
        }
        lockout.outcome = StatusCode::TOO_MANY_REQUESTS.as_u16();
        state.record(lockout).await?;
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
