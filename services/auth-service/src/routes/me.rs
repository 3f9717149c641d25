//! The caller's own account: what it is, and its password.

use axum::{Json, extract::State, http::StatusCode};
use pulsetrack_common::{
    ApiError, JsonBody,
    audit::{Access, Action},
    validate::{self, Validator},
};
use serde::Deserialize;

use super::{UserResponse, missing_field, new_password_grade, session};
use crate::{
    authenticated::{AnyScope, Authenticated},
    error::Error,
    password,
    repository::{EndReason, PasswordUpdate},
    state::AppState,
};

#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = ApiError),
        (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
/// The caller's account as it is now.
pub(super) async fn me(AnyScope(caller): AnyScope) -> Json<UserResponse> {
    Json(caller.user.into())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    #[schema(value_type = String, required = true)]
    current_password: Option<String>,
    /// What the password policy asks of the account's role.
    #[schema(value_type = String, min_length = 8, max_length = 128, required = true)]
    new_password: Option<String>,
}

#[utoipa::path(put, path = "/auth/me/password", tag = "auth", request_body = PasswordChange, security(("bearer" = [])),
    responses((status = 204, description = "Changed; the account's other sessions have ended"),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 409, description = "The seeded admin: its password is a secret", body = ApiError),
        (status = 429, body = ApiError),
        (status = "default", description = "Any other error (503 ...), with the same body", body = ApiError)))]
/// Changes the caller's password and ends its other sessions. A wrong current password
/// counts as a failed login of the account's address.
pub(super) async fn change_password(
    State(state): State<AppState>,
    AnyScope(caller): AnyScope,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let mut access = caller.did(Action::PasswordChange);
    let result = change(&state, &caller, body, &mut access).await;
    state.recorded(access, StatusCode::NO_CONTENT, result).await
}

async fn change(
    state: &AppState,
    caller: &Authenticated,
    body: PasswordChange,
    access: &mut Access,
) -> Result<StatusCode, Error> {
    let user = &caller.user;
    if user.managed_by_secret {
        return Err(Error::ManagedBySecret);
    }
    let mut v = Validator::new();
    let current = v.field("currentPassword", validate::required(body.current_password));
    let new = v.field("newPassword", validate::required(body.new_password));
    v.finish().map_err(Error::Validation)?;
    let (Some(current), Some(new)) = (current, new) else { return Err(missing_field()) };
    let grade = new_password_grade(state, user.role, &new, [&user.email, &user.username], "newPassword").await?;
    let throttle = &state.throttle;
    throttle.check_email(&user.email).await?;
    if !password::verify(current, Some(user.password_hash.clone())).await? {
        access.detail = Some("the current password did not match".into());
        if let Some(until) = throttle.failures.record(&user.email, &throttle.lockout).await? {
            let mut lockout = caller.did(Action::Lockout).subject(user.id).detail(format!("locked until {until}"));
            lockout.outcome = StatusCode::TOO_MANY_REQUESTS.as_u16();
            state.record(lockout).await?;
        }
        return Err(Error::WrongPassword);
    }
    let hash = password::hash(new).await?;
    state.users.set_password(user.id, &PasswordUpdate { hash: &hash, grade }).await?.ok_or(Error::UserNotFound)?;
    let ended = session::end_all(state, user.id, Some(caller.session.id), EndReason::PasswordChanged).await?;
    tracing::info!(user_id = %user.id, other_sessions_ended = ended, "password changed");
    access.detail = Some(format!("{ended} other sessions ended"));
    Ok(StatusCode::NO_CONTENT)
}
