//! Accounts an ADMIN manages: list, role, status, password reset, sessions. The caller's
//! right is its account's current role in the database ([`Authenticated`]), and every
//! change that narrows an account's access ends its sessions.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use pulsetrack_common::{
    ApiError, FieldError, JsonBody,
    audit::{Access, Action},
    identity::{Permission, Role},
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{UserResponse, missing_field, parse_id, parse_role, session};
use crate::{
    authenticated::Authenticated,
    error::Error,
    password,
    repository::{AccountStatus, EndReason, SessionRow, User, digest},
    state::AppState,
};

/// How long a password reset token may be used.
pub const RESET_LIFE: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only accounts of this role.
    #[param(value_type = Option<Role>)]
    role: Option<String>,
    /// At most this many accounts (1 to 500, default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

/// The most accounts one list returns.
pub const MAX_LIST: i64 = 500;

const ADMIN_ERRORS: &str = "Any other error (429, 503 ...), with the same body";

#[utoipa::path(get, path = "/auth/users", tag = "auth", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<UserResponse>), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = "default", description = ADMIN_ERRORS, body = ApiError)))]
pub(super) async fn list_users(
    State(state): State<AppState>,
    caller: Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<UserResponse>>, ApiError> {
    let mut access = caller.did(Action::UserList);
    let result = list(&state, &caller, query, &mut access).await;
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

async fn list(
    state: &AppState,
    caller: &Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
    access: &mut Access,
) -> Result<Vec<UserResponse>, Error> {
    caller.require(Permission::UsersManage)?;
    let Query(query) = query.map_err(|e| Error::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let mut v = Validator::new();
    let role = v.field("role", query.role.map(parse_role).transpose());
    let limit = v.field(
        "limit",
        query.limit.map_or(Ok(100), |l| {
            l.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIST).contains(n))
                .ok_or_else(|| format!("must be a number from 1 to {MAX_LIST}"))
        }),
    );
    v.finish().map_err(Error::Validation)?;
    let (Some(role), Some(limit)) = (role, limit) else { return Err(missing_field()) };
    let users = state.users.list(role, limit).await?;
    let filter = role.map_or("every role".to_string(), |r| format!("role {r}"));
    access.detail = Some(format!("{filter}, at most {limit}: {} accounts shown", users.len()));
    Ok(users.into_iter().map(UserResponse::from).collect())
}

/// The account `raw_id` names, other than the caller's own (`own` is the error then).
async fn target(
    state: &AppState,
    caller: &Authenticated,
    raw_id: &str,
    own: Error,
    access: &mut Access,
) -> Result<User, Error> {
    let user = account(state, caller, raw_id, access).await?;
    if user.id == caller.user.id { Err(own) } else { Ok(user) }
}

/// The account `raw_id` names, the caller's own included; the entry names it as its subject.
async fn account(state: &AppState, caller: &Authenticated, raw_id: &str, access: &mut Access) -> Result<User, Error> {
    caller.require(Permission::UsersManage)?;
    let id = parse_id(raw_id).map_err(|reason| Error::Validation(vec![FieldError::new("id", reason)]))?;
    access.subject = Some(id.to_string());
    state.users.find(id).await?.ok_or(Error::UserNotFound)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RoleRequest {
    #[schema(value_type = Role, required = true)]
    role: Option<String>,
}

#[utoipa::path(put, path = "/auth/users/{id}/role", tag = "auth", params(("id" = Uuid, Path)),
    request_body = RoleRequest, security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = "default", description = ADMIN_ERRORS, body = ApiError)))]
/// Gives an account a role and ends its sessions (its tokens carry the old role). A
/// grant whose role needs a stronger password than the account's forces a change at
/// its next login.
pub(super) async fn set_role(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RoleRequest>,
) -> Result<Json<UserResponse>, ApiError> {
    let mut access = caller.did(Action::RoleChange);
    let result = grant(&state, &caller, &id, body, &mut access).await;
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

async fn grant(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    body: RoleRequest,
    access: &mut Access,
) -> Result<UserResponse, Error> {
    let role = validate::required(body.role)
        .and_then(parse_role)
        .map_err(|reason| Error::Validation(vec![FieldError::new("role", reason)]))?;
    // An ADMIN cannot demote itself: the last one would lock everyone out.
    let user = target(state, caller, id, Error::OwnRole, access).await?;
    access.detail = Some(format!("{} to {role}", user.role));
    let must_change = user.password_grade < password::required_grade(state.password_policy, role);
    let updated = state.users.set_role(user.id, role, caller.user.id, must_change).await?.ok_or(Error::UserNotFound)?;
    // Every grant ends the sessions (even one that seemed to change nothing: a
    // concurrent grant may have changed the role in between).
    let ended = session::end_all(state, user.id, None, EndReason::RoleChanged).await?;
    tracing::info!(user_id = %user.id, %role, from = %user.role, changed_by = %caller.user.id, must_change, "role changed");
    access.detail = Some(format!("{} to {role}; {ended} sessions ended", user.role));
    Ok(updated.into())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StatusRequest {
    #[schema(value_type = AccountStatus, required = true)]
    status: Option<String>,
}

#[utoipa::path(put, path = "/auth/users/{id}/status", tag = "auth", params(("id" = Uuid, Path)),
    request_body = StatusRequest, security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = "default", description = ADMIN_ERRORS, body = ApiError)))]
/// Disables an account (it cannot log in or refresh, and its sessions end) or enables it.
pub(super) async fn set_status(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatusRequest>,
) -> Result<Json<UserResponse>, ApiError> {
    let mut access = caller.did(Action::StatusChange);
    let result = change_status(&state, &caller, &id, body, &mut access).await;
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

async fn change_status(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    body: StatusRequest,
    access: &mut Access,
) -> Result<UserResponse, Error> {
    let status: AccountStatus = validate::required(body.status)
        .and_then(|s| s.trim().to_uppercase().parse())
        .map_err(|reason| Error::Validation(vec![FieldError::new("status", reason)]))?;
    let user = target(state, caller, id, Error::OwnStatus, access).await?;
    access.detail = Some(format!("{} to {status}", user.status));
    let updated = state.users.set_status(user.id, status).await?.ok_or(Error::UserNotFound)?;
    let ended = if status == AccountStatus::Disabled {
        session::end_all(state, user.id, None, EndReason::AccountDisabled).await?
    } else {
        0
    };
    tracing::info!(user_id = %user.id, %status, changed_by = %caller.user.id, "account status changed");
    access.detail = Some(format!("{} to {status}; {ended} sessions ended", user.status));
    Ok(updated.into())
}

/// A reset token to hand to the account's owner.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetCreated {
    /// One use, for `POST /auth/password-reset`; shown once, stored only as a digest.
    pub reset_token: String,
    pub expires_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/auth/users/{id}/password-reset", tag = "auth", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ResetCreated), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = "default", description = ADMIN_ERRORS, body = ApiError)))]
/// A one-time reset token, valid 24 hours, for the ADMIN to hand over (there is no
/// mail). Using it sets a new password and ends the account's sessions.
pub(super) async fn create_reset(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ResetCreated>, ApiError> {
    let mut access = caller.did(Action::PasswordResetIssue);
    let result = issue_reset(&state, &caller, &id, &mut access).await;
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

async fn issue_reset(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    access: &mut Access,
) -> Result<ResetCreated, Error> {
    // An ADMIN changes its own password with its current one.
    let user = target(state, caller, id, Error::OwnPassword, access).await?;
    if user.managed_by_secret {
        return Err(Error::ManagedBySecret);
    }
    let token = session::new_secret();
    let expires_at = state.resets.create(user.id, caller.user.id, &digest(&token), RESET_LIFE).await?;
    tracing::info!(user_id = %user.id, created_by = %caller.user.id, %expires_at, "password reset token created");
    access.detail = Some(format!("valid until {expires_at}"));
    Ok(ResetCreated { reset_token: token, expires_at })
}

/// A live session of an account.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_refresh_at: DateTime<Utc>,
    /// When it ends whatever its use.
    pub expires_at: DateTime<Utc>,
    pub client_addr: Option<String>,
}

impl From<SessionRow> for SessionResponse {
    fn from(s: SessionRow) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_refresh_at: s.last_refresh_at,
            expires_at: s.expires_at,
            client_addr: s.client_addr,
        }
    }
}

#[utoipa::path(get, path = "/auth/users/{id}/sessions", tag = "auth", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionResponse>), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = "default", description = ADMIN_ERRORS, body = ApiError)))]
pub(super) async fn list_sessions(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<SessionResponse>>, ApiError> {
    let mut access = caller.did(Action::SessionList);
    let result = async {
        let user = account(&state, &caller, &id, &mut access).await?;
        let sessions = state.sessions.live_of(user.id).await?;
        Ok(sessions.into_iter().map(SessionResponse::from).collect())
    }
    .await;
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionsEnded {
    /// How many sessions ended.
    pub ended: u64,
}

#[utoipa::path(delete, path = "/auth/users/{id}/sessions", tag = "auth", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SessionsEnded), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = "default", description = ADMIN_ERRORS, body = ApiError)))]
/// Ends every session of the account (the caller's own session too, when it is its own).
pub(super) async fn end_sessions(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let mut access = caller.did(Action::SessionEnd);
    let result = async {
        let user = account(&state, &caller, &id, &mut access).await?;
        let ended = session::end_all(&state, user.id, None, EndReason::EndedByAdmin).await?;
        tracing::info!(user_id = %user.id, ended, ended_by = %caller.user.id, "sessions ended by an ADMIN");
        access.detail = Some(format!("{}: {ended} sessions", EndReason::EndedByAdmin));
        Ok(SessionsEnded { ended })
    }
    .await;
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}
