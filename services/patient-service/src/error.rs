//! patient-service errors and their one mapping to HTTP responses.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use pulsetrack_common::{ApiError, FieldError, group_commit::GroupCommitError, identity::AccessError};
use uuid::Uuid;

use crate::repository::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("patient {0} not found")]
    NotFound(Uuid),
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The create was not written in time (the database is slow or down).
    #[error(transparent)]
    Writer(#[from] GroupCommitError),
    #[error(transparent)]
    Database(Arc<sqlx::Error>),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(Arc::new(e))
    }
}

impl From<RepoError> for Error {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::EmailTaken => Error::EmailTaken,
            RepoError::Database(e) => Error::Database(e),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(fields) => ApiError::validation(fields),
            Error::NotFound(id) => ApiError::not_found(format!("patient {id} not found")),
            Error::EmailTaken => {
                ApiError::conflict("a patient with this email already exists").with_field("email", "already registered")
            }
            Error::Access(e) => e.into(),
            Error::Writer(e) => {
                tracing::error!(error = %e, "patient not created");
                ApiError::service_unavailable("patients cannot be created right now, retry later").retry_after(1)
            }
            Error::Database(e) => pulsetrack_common::error::database_error(&e),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
