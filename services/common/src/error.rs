//! The client-safe error body shared by every HTTP service.
//!
//! Each service keeps its own error enum and maps it to an [`ApiError`] in one place
//! (its `error.rs`). Internal details are logged there and never put in the body.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// One field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// The JSON error body: `{status, error, message, fields?}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// The HTTP status, repeated.
    #[serde(serialize_with = "serialize_status")]
    #[schema(value_type = u16, example = 400)]
    pub status: StatusCode,
    /// A stable, machine-readable code such as `VALIDATION_FAILED`.
    #[schema(value_type = String, example = "VALIDATION_FAILED")]
    pub error: &'static str,
    pub message: String,
    /// The fields that failed validation (400 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub fields: Vec<FieldError>,
    /// Seconds after which the client may retry: the `Retry-After` header (429, 503).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self { status, error, message: message.into(), fields: Vec::new(), retry_after: None }
    }

    /// 400 with the fields that failed.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "VALIDATION_FAILED",
            message: "request validation failed".into(),
            fields,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 500 with a generic message; the caller logs the cause.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal server error")
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", message)
    }

    /// 429: the caller made too many requests; it may retry after `retry_after_secs`.
    pub fn too_many_requests(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message).retry_after(retry_after_secs)
    }

    /// Sets the `Retry-After` header (seconds, at least 1).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn with_field(mut self, field: impl Into<String>, reason: impl Into<String>) -> Self {
        self.fields.push(FieldError::new(field, reason));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry_after = self.retry_after;
        let mut response = (status, Json(self)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The Postgres constraint that a unique violation hit, if the error is one.
pub fn unique_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(db.constraint().unwrap_or("")),
        _ => None,
    }
}

/// Whether Postgres refused the data itself (SQLSTATE class 22, data exception, or 23,
/// integrity violation): sending the same values again can never succeed.
pub fn refused_data(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")))
}

/// Maps a database error that no caller handled: logged in full, and answered with
/// 503 when Postgres is unreachable or saturated (the client may retry) or 500 otherwise.
pub fn database_error(err: &sqlx::Error) -> ApiError {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            tracing::error!(error = %err, "database unavailable");
            ApiError::service_unavailable("the database is unavailable, retry later")
        }
        _ => {
            tracing::error!(error = %err, "database error");
            ApiError::internal()
        }
    }
}

/// Handler for unmatched routes: a JSON 404 rather than an empty body.
pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found("no such route")
}

/// A known route asked with a method it does not take: 405 with the JSON body every
/// other error has.
pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "this route does not take that method")
}

/// Every service's fallbacks: an unknown route is 404, a wrong method 405, both JSON.
pub fn json_fallbacks<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.fallback(not_found_fallback).method_not_allowed_fallback(method_not_allowed_fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unauthorized_carries_www_authenticate() {
        let response = ApiError::unauthorized("missing token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    }

    #[test]
    fn body_has_status_code_and_fields() {
        let err = ApiError::validation(vec![FieldError::new("email", "must be a valid email address")]);
        let body = serde_json::to_value(&err).expect("serializes");
        assert_eq!(body["status"], 400);
        assert_eq!(body["error"], "VALIDATION_FAILED");
        assert_eq!(body["fields"][0]["field"], "email");
    }
}
