//! Sessions: a new one at login, refresh with rotation (a spent refresh token presented
//! again ends the session), the idle and absolute limits (checked at refresh, so no
//! request writes), and logout.

use std::net::{IpAddr, SocketAddr};

use axum::{
    Extension, Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use pulsetrack_common::{
    ApiError, JsonBody,
    audit::{Access, Action},
    identity::TokenScope,
    validate::{self, Validator},
};
use rand::RngCore;
use serde::Deserialize;

use super::{LoginResponse, missing_field};
use crate::{
    audit::Client,
    authenticated::AnyScope,
    error::Error,
    repository::{AccountStatus, EndReason, SessionRow, User, digest},
    state::AppState,
    tokens::TokenSubject,
};

/// A 256-bit random bearer secret, URL-safe (refresh and reset tokens).
pub(super) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What a token of `user` may do: everything, unless a step must come first (a new
/// password, or a second factor its role requires).
fn scope_for(state: &AppState, user: &User) -> TokenScope {
    if user.must_change_password {
        TokenScope::PasswordChange
    } else if state.mfa.required_roles.contains(&user.role) && !user.totp_enrolled {
        TokenScope::MfaEnrolment
    } else {
        TokenScope::Full
    }
}

/// Starts a session of `user` and answers its first pair of tokens.
pub(super) async fn start(state: &AppState, user: &User, client_addr: Option<IpAddr>) -> Result<LoginResponse, Error> {
    let refresh = new_secret();
    let session = state
        .sessions
        .start(user, state.session_config.max_age, client_addr, &digest(&refresh))
        .await?
        // The account changed while this login was checked (a reset, a demotion, a
        // disable): the credentials it was checked against are no longer the account's.
        .ok_or(Error::InvalidCredentials)?;
    tracing::info!(user_id = %user.id, session_id = %session.id, "session started");
    pair(state, user, &session, refresh)
}

/// An access token of `session` and the refresh token `refresh`.
fn pair(state: &AppState, user: &User, session: &SessionRow, refresh: String) -> Result<LoginResponse, Error> {
    let scope = scope_for(state, user);
    // No token outlives its session's absolute limit.
    let not_after = u64::try_from(session.expires_at.timestamp()).unwrap_or(0);
    let subject =
        TokenSubject { user_id: user.id, email: &user.email, role: user.role, session: session.id, scope, not_after };
    let (token, expires_in) = state.tokens.issue(subject).map_err(|e| Error::Internal(e.into()))?;
    let idle = state.session_config.idle_timeout.as_secs();
    let left = u64::try_from((session.expires_at - Utc::now()).num_seconds()).unwrap_or(0);
    Ok(LoginResponse {
        token,
        token_type: "Bearer".into(),
        expires_in,
        refresh_token: refresh,
        refresh_expires_in: idle.min(left),
        scope,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    #[schema(value_type = String, required = true)]
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
/// A new pair for a live session; the refresh token presented is spent.
pub(super) async fn refresh(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let client = Client::of(&headers, peer.map(|Extension(ConnectInfo(p))| p));
    let mut v = Validator::new();
    let presented = v.field("refreshToken", validate::required(body.refresh_token));
    v.finish().map_err(Error::Validation)?;
    let Some(presented) = presented else { return Err(missing_field()) };
    let old = digest(&presented);
    let found = state.sessions.lookup_refresh(&old).await?.ok_or(Error::InvalidRefreshToken)?;
    let session = &found.session;
    if let Some(ended_at) = session.ended_at {
        // A spent token of an ended session is a reuse still: someone holds a copy.
        if found.spent {
            let reuse = client.did(Action::RefreshReuse, Some(&found.user)).subject(session.user_id);
            let mut reuse = reuse.detail(format!("session {} (ended at {ended_at})", session.id));
            reuse.outcome = StatusCode::UNAUTHORIZED.as_u16();
            state.record(reuse).await?;
        }
        return Err(Error::InvalidRefreshToken);
    }
    let now = Utc::now();
    let idle = chrono::Duration::from_std(state.session_config.idle_timeout).unwrap_or(chrono::Duration::MAX);
    let ending = if found.spent {
        Some(EndReason::RefreshReused)
    } else if found.user.status != AccountStatus::Active {
        Some(EndReason::AccountDisabled)
    } else if now >= session.expires_at {
        Some(EndReason::MaxAge)
    } else if now - session.last_refresh_at > idle {
        Some(EndReason::IdleTimeout)
    } else {
        None
    };
    let by = client.did(Action::SessionEnd, Some(&found.user));
    if let Some(reason) = ending {
        end(&state, session, reason, by).await?;
        return Err(Error::InvalidRefreshToken);
    }
    let next = new_secret();
    if !state.sessions.rotate(session.id, &old, &digest(&next)).await? {
        // Spent by a concurrent refresh between the lookup and now: a reuse too.
        end(&state, session, EndReason::RefreshReused, by).await?;
        return Err(Error::InvalidRefreshToken);
    }
    Ok(Json(pair(&state, &found.user, session, next)?))
}

/// Ends `session` for `reason` and records it as done `by` (its action set by the
/// reason: a logout, a refresh token reused, or another end).
async fn end(state: &AppState, session: &SessionRow, reason: EndReason, mut by: Access) -> Result<(), Error> {
    if state.sessions.end(session.id, reason).await? {
        if reason == EndReason::RefreshReused {
            tracing::warn!(user_id = %session.user_id, session_id = %session.id, %reason, "session ended");
        } else {
            tracing::info!(user_id = %session.user_id, session_id = %session.id, %reason, "session ended");
        }
        by.action = match reason {
            EndReason::Logout => Action::Logout,
            EndReason::RefreshReused => Action::RefreshReuse,
            _ => Action::SessionEnd,
        };
        let outcome = if reason == EndReason::Logout { StatusCode::NO_CONTENT } else { StatusCode::UNAUTHORIZED };
        by.outcome = outcome.as_u16();
        state.record(by.subject(session.user_id).detail(format!("session {} ended: {reason}", session.id))).await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "The session has ended: its tokens are refused"),
        (status = 401, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
/// Ends the caller's session: its access and refresh tokens are refused from now on.
pub(super) async fn logout(State(state): State<AppState>, AnyScope(caller): AnyScope) -> Result<StatusCode, Error> {
    end(&state, &caller.session, EndReason::Logout, caller.did(Action::Logout)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of `user_id` but `except`; returns how many ended.
pub(super) async fn end_all(
    state: &AppState,
    user_id: uuid::Uuid,
    except: Option<uuid::Uuid>,
    reason: EndReason,
) -> Result<u64, Error> {
    let ended = state.sessions.end_all_of(user_id, except, reason).await?;
    if ended > 0 {
        tracing::info!(%user_id, ended, %reason, "sessions ended");
    }
    Ok(ended)
}
