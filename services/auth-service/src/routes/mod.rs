//! HTTP handlers, one file per part of the account's life: signup, login, sessions
//! (refresh, logout), the account itself (`/auth/me`), accounts managed by an ADMIN
//! (`/auth/users`), password resets, and the keys and revocations the gateways follow.

mod audit;
mod feed;
mod login;
mod me;
mod reset;
mod session;
mod signup;
mod totp;
mod users;

use axum::{
    Router,
    routing::{delete, get, post, put},
};
use chrono::{DateTime, Utc};
use pulsetrack_common::{
    ApiError, FieldError,
    identity::{Role, TokenScope, auth_paths},
    openapi::{self, BearerAuth},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use self::{
    login::{LoginRequest, LoginResponse},
    signup::{SignupAccepted, SignupRequest, self_signup_role},
    users::MAX_LIST,
};
use crate::{
    error::Error,
    repository::{AccountStatus, User},
    state::AppState,
};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "PulseTrack auth", description = "Accounts, sessions and roles (auth-service), through the gateway."),
    paths(signup::signup, login::login, session::refresh, session::logout, me::me, me::change_password, totp::enrol, totp::verify,
        users::list_users, users::set_role, users::set_status, users::create_reset, users::list_sessions,
        users::end_sessions, reset::reset_password),
    components(schemas(SignupRequest, SignupAccepted, LoginRequest, LoginResponse, session::RefreshRequest,
        UserResponse, users::RoleRequest, users::StatusRequest, users::ResetCreated, users::SessionResponse,
        users::SessionsEnded, me::PasswordChange, reset::PasswordReset, totp::TotpEnrolment, totp::TotpCode,
        totp::RecoveryCodes, Role, AccountStatus, TokenScope,
        ApiError, FieldError)),
    modifiers(&BearerAuth),
    tags((name = "auth", description = "Signup, login, refresh and password reset are public; the account's own \
        routes need its token; accounts, roles and sessions are ADMIN's"))
)]
pub struct ApiDoc;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/auth/signup", post(signup::signup))
        .route("/auth/login", post(login::login))
        .route("/auth/refresh", post(session::refresh))
        .route(auth_paths::LOGOUT, post(session::logout))
        .route(auth_paths::ME, get(me::me))
        .route(auth_paths::PASSWORD, put(me::change_password))
        .route(auth_paths::TOTP, post(totp::enrol))
        .route(auth_paths::TOTP_VERIFY, post(totp::verify))
        .route("/auth/password-reset", post(reset::reset_password))
        .route("/auth/users", get(users::list_users))
        .route("/auth/users/{id}/role", put(users::set_role))
        .route("/auth/users/{id}/status", put(users::set_status))
        .route("/auth/users/{id}/password-reset", post(users::create_reset))
        .route("/auth/users/{id}/sessions", get(users::list_sessions))
        .route("/auth/users/{id}/sessions", delete(users::end_sessions))
        .route("/.well-known/jwks.json", get(feed::jwks))
        .route(pulsetrack_common::revocation::FEED_PATH, get(feed::revocations))
        .route("/audit", get(audit::list))
        .route("/audit/verify", get(audit::verify))
        .route(pulsetrack_common::audit::REFUSALS_PATH, post(audit::refusals))
        .with_state(state)
        .merge(openapi::docs_route(<ApiDoc as utoipa::OpenApi>::openapi()))
}

/// An account as the API shows it (never its password hash).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub role: Role,
    pub status: AccountStatus,
    /// The next login may only change the password (a role grant needs a stronger one).
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            username: user.username,
            role: user.role,
            status: user.status,
            must_change_password: user.must_change_password,
            created_at: user.created_at,
        }
    }
}

fn parse_role(raw: String) -> Result<Role, String> {
    raw.trim().to_uppercase().parse()
}

fn parse_id(raw: &str) -> Result<Uuid, String> {
    raw.parse::<Uuid>().map_err(|_| "must be a UUID".to_string())
}

/// The grade of a new password for an account of `role`, judged on the hashing pool
/// (the estimator can take a second on a crafted input); a refusal is a 400 naming
/// `field`.
async fn new_password_grade(
    state: &AppState,
    role: Role,
    password: &str,
    user_inputs: [&str; 2],
    field: &'static str,
) -> Result<crate::password::PasswordGrade, Error> {
    let inputs = user_inputs.iter().map(|s| s.to_string()).collect();
    crate::password::check_new_async(state.password_policy, role, password.to_string(), inputs)
        .await?
        .map_err(|reason| Error::Validation(vec![FieldError::new(field, reason)]))
}

/// A validator that passed but left a field unset: a bug, never the caller's.
fn missing_field() -> Error {
    Error::Internal(anyhow::anyhow!("validator passed with a missing field"))
}
