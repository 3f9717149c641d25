//! Using a reset token an ADMIN handed over: a new password, and the account's
//! sessions end. Public (the token is the credential).

use std::net::SocketAddr;

use axum::{
    Extension,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
};
use pulsetrack_common::{
    ApiError, JsonBody,
    audit::Action,
    validate::{self, Validator},
};
use serde::Deserialize;

use super::{missing_field, new_password_grade, session};
use crate::{
    audit::Client,
    error::Error,
    password,
    repository::{EndReason, PasswordUpdate, User, digest},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    #[schema(value_type = String, required = true)]
    reset_token: Option<String>,
    /// What the password policy asks of the account's role.
    #[schema(value_type = String, min_length = 8, max_length = 128, required = true)]
    new_password: Option<String>,
}

#[utoipa::path(post, path = "/auth/password-reset", tag = "auth", request_body = PasswordReset,
    responses((status = 204, description = "The password is set; the account's sessions have ended"),
        (status = 400, body = ApiError),
        (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
pub(super) async fn reset_password(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    let client = Client::of(&headers, peer.map(|Extension(ConnectInfo(p))| p));
    let mut account = None;
    let result = reset(&state, body, &mut account).await;
    let mut access = client.did(Action::PasswordReset, account.as_ref());
    if let Some(user) = &account {
        access = access.subject(user.id);
    }
    if let Ok(ended) = &result {
        access = access.detail(format!("{ended} sessions ended"));
    }
    state.recorded(access, StatusCode::NO_CONTENT, result).await.map(|_| StatusCode::NO_CONTENT)
}

/// Sets the password of the account the reset token names (put in `account` once known).
async fn reset(state: &AppState, body: PasswordReset, account: &mut Option<User>) -> Result<u64, Error> {
    let mut v = Validator::new();
    let token = v.field("resetToken", validate::required(body.reset_token));
    let new = v.field("newPassword", validate::required(body.new_password));
    v.finish().map_err(Error::Validation)?;
    let (Some(token), Some(new)) = (token, new) else { return Err(missing_field()) };
    let token = digest(&token);
    let target = state.resets.find(&token).await?.ok_or(Error::InvalidResetToken)?;
    let user = account.insert(state.users.find(target.user_id).await?.ok_or(Error::InvalidResetToken)?).clone();
    if user.managed_by_secret {
        return Err(Error::ManagedBySecret);
    }
    // The policy is checked before the token is spent: a refused password leaves it usable.
    let grade = new_password_grade(state, user.role, &new, [&user.email, &user.username], "newPassword").await?;
    let hash = password::hash(new).await?;
    state.resets.redeem(&token).await?.ok_or(Error::InvalidResetToken)?;
    state.users.set_password(user.id, &PasswordUpdate { hash: &hash, grade }).await?.ok_or(Error::UserNotFound)?;
    let ended = session::end_all(state, user.id, None, EndReason::PasswordReset).await?;
    tracing::info!(user_id = %user.id, sessions_ended = ended, "password reset");
    Ok(ended)
}
