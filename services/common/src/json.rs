//! A JSON body extractor whose rejection is an [`ApiError`] naming the failing field.

use axum::{
    extract::{FromRequest, Request},
    http::{StatusCode, header},
};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::Json`, but malformed JSON, a wrong type or a missing field gives a 400
/// with `fields: [{field, reason}]`, and a missing JSON content type gives a 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&req) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected a request body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "PAYLOAD_TOO_LARGE", "request body is too large")
            } else {
                ApiError::bad_request("could not read the request body")
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Deserializes `bytes`, reporting the path of the failing field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", "request body is not valid JSON")
                .with_field("body", inner.to_string())
        } else {
            let field = if path == "." { "body".to_string() } else { path };
            ApiError::validation(vec![crate::FieldError::new(field, strip_position(&inner.to_string()))])
        }
    })
}

/// serde_json appends " at line 1 column 9"; the field name says more to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn has_json_content_type(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        age: u8,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse::<Body>(br#"{"name": "a", "age": "x"}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.fields[0].field, "age");
        assert!(!err.fields[0].reason.contains("line"));
    }

    #[test]
    fn missing_field_is_a_validation_error() {
        let err = parse::<Body>(br#"{"name": "a"}"#).unwrap_err();
        assert_eq!(err.error, "VALIDATION_FAILED");
        assert!(err.fields[0].reason.contains("age"));
    }

    #[test]
    fn syntax_error_is_malformed_json() {
        let err = parse::<Body>(b"{not json").unwrap_err();
        assert_eq!(err.error, "MALFORMED_JSON");
    }
}
