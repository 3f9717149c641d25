//! patient-service errors and their one mapping to HTTP responses.

use axum::response::{IntoResponse, Response};
use pulsetrack_common::{ApiError, FieldError, identity::AccessError};
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
    #[error(transparent)]
    Database(#[from] sqlx::Error),
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
            Error::Database(e) => pulsetrack_common::error::database_error(&e),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
