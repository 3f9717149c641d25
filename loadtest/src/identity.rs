//! How the create and list phases authenticate: the user's bearer token, through the
//! gateway or, in direct mode, straight to patient-service (which verifies it itself,
//! as every service does).

use anyhow::Context;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

/// `Authorization: Bearer <token>`, what a client sends the gateway and the gateway
/// passes on to the service.
pub fn bearer_headers(token: &str) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a valid header value")?;
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_only_the_bearer_token() {
        let headers = bearer_headers("abc.def.ghi").expect("headers");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()), Some("Bearer abc.def.ghi"));
        assert!(bearer_headers("bad\ntoken").is_err());
    }
}
