//! auth-service errors and their one mapping to HTTP responses.

use axum::response::{IntoResponse, Response};
use pulsetrack_common::{
    ApiError, FieldError,
    identity::{AccessError, TokenScope},
    rate_limit::retry_after_secs,
};

use crate::repository::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("email already registered")]
    EmailTaken,
    /// Same answer for an unknown email and a wrong password.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("only an ADMIN may create accounts with this role")]
    AdminRequired,
    #[error("signup is closed")]
    SignupClosed,
    #[error("too many failed logins")]
    Throttled(std::time::Duration),
    #[error("an account cannot change its own role")]
    OwnRole,
    #[error("no such account")]
    UserNotFound,
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A bad signature, an expired token, an ended session or a disabled account.
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("this token may only be used for one step")]
    ScopeRestricted(TokenScope),
    /// Unknown, spent, or of an ended session: one answer for all.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("the current password does not match")]
    WrongPassword,
    #[error("invalid or expired reset token")]
    InvalidResetToken,
    #[error("the account's password is managed by PULSETRACK_ADMIN_PASSWORD")]
    ManagedBySecret,
    #[error("an account cannot change its own status")]
    OwnStatus,
    #[error("an ADMIN changes its own password with its current one")]
    OwnPassword,
    /// The password was right; the account also needs a TOTP or recovery code.
    #[error("a second factor is required")]
    MfaRequired,
    #[error("no second factor can be enrolled: MFA_ENCRYPTION_KEY is unset")]
    MfaUnavailable,
    #[error("a second factor is enrolled already")]
    AlreadyEnrolled,
    #[error("no enrolment was started")]
    NotEnrolling,
    #[error("too many password operations in progress")]
    Busy,
    /// A security event that cannot be recorded: the request is refused.
    #[error("the audit trail cannot be written: {0}")]
    Audit(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<RepoError> for Error {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::EmailTaken => Error::EmailTaken,
            RepoError::Database(e) => Error::Database(e),
        }
    }
}

impl From<crate::password::HashError> for Error {
    fn from(e: crate::password::HashError) -> Self {
        match e {
            crate::password::HashError::Busy => Error::Busy,
            crate::password::HashError::Internal(e) => Error::Internal(e),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(fields) => ApiError::validation(fields),
            Error::EmailTaken => ApiError::conflict("an account with this email already exists")
                .with_field("email", "already registered"),
            Error::InvalidCredentials => ApiError::unauthorized("invalid email or password"),
            Error::AdminRequired => ApiError::forbidden("only an ADMIN may create accounts with this role")
                .with_field("role", "needs an ADMIN's token"),
            Error::SignupClosed => ApiError::forbidden("signup is closed: an ADMIN creates accounts"),
            Error::Throttled(wait) => {
                ApiError::too_many_requests("too many failed logins, retry later", retry_after_secs(wait))
            }
            Error::OwnRole => ApiError::conflict("an account cannot change its own role"),
            Error::UserNotFound => ApiError::not_found("no account with this id"),
            Error::Access(e) => e.into(),
            Error::InvalidToken => ApiError::unauthorized("invalid or expired bearer token, or its session has ended"),
            Error::ScopeRestricted(scope) => ApiError::forbidden(match scope {
                TokenScope::PasswordChange => {
                    "this token may only change the account's password (PUT /auth/me/password)"
                }
                TokenScope::MfaEnrolment => "this token may only enrol a second factor (POST /auth/me/totp)",
                TokenScope::Full => "this token may not be used here",
            }),
            Error::InvalidRefreshToken => ApiError::unauthorized("invalid or expired refresh token: log in again"),
            Error::WrongPassword => {
                ApiError::validation(vec![FieldError::new("currentPassword", "does not match the account's password")])
            }
            Error::InvalidResetToken => {
                ApiError::validation(vec![FieldError::new("resetToken", "is invalid, used or expired")])
            }
            Error::ManagedBySecret => ApiError::conflict(
                "this account's password is the PULSETRACK_ADMIN_PASSWORD secret: rotate the secret and restart \
                 auth-service to change it",
            ),
            Error::OwnStatus => ApiError::conflict("an account cannot change its own status"),
            Error::OwnPassword => {
                ApiError::conflict("an ADMIN changes its own password with its current one (PUT /auth/me/password)")
            }
            Error::MfaRequired => ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "MFA_REQUIRED",
                "this account needs a second factor: send `totp` (the app's code) or `recoveryCode` with the login",
            ),
            Error::MfaUnavailable => {
                tracing::error!("a second factor was needed, but MFA_ENCRYPTION_KEY is unset");
                ApiError::service_unavailable("the second factor is not available on this server")
            }
            Error::AlreadyEnrolled => ApiError::conflict("a second factor is enrolled already"),
            Error::NotEnrolling => ApiError::conflict("no enrolment was started: POST /auth/me/totp first"),
            Error::Busy => ApiError::service_unavailable("the service is busy, retry shortly"),
            Error::Audit(reason) => {
                tracing::error!(%reason, "refused: the security event could not be recorded");
                ApiError::service_unavailable("the audit trail is unavailable, retry later").retry_after(1)
            }
            Error::Database(e) => pulsetrack_common::error::database_error(&e),
            Error::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
