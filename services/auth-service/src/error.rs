//! auth-service errors and their one mapping to HTTP responses.

use axum::response::{IntoResponse, Response};
use pulsetrack_common::{ApiError, FieldError, identity::AccessError, rate_limit::retry_after_secs};

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
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("too many password operations in progress")]
    Busy,
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
            Error::InvalidToken => ApiError::unauthorized("invalid or expired bearer token"),
            Error::Busy => ApiError::service_unavailable("the service is busy, retry shortly"),
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
