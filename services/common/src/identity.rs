//! The caller's identity as the gateway forwards it, and the token claims behind it.
//!
//! The gateway validates the JWT, strips any of these headers a client sent, and sets
//! them from the token's claims. Upstream services trust them only because they are
//! reachable from the gateway alone (private subnets, security groups).

use std::{fmt, str::FromStr};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_EMAIL_HEADER: &str = "x-user-email";
pub const USER_ROLE_HEADER: &str = "x-user-role";

/// Every identity header; a client may send none of them.
pub const IDENTITY_HEADERS: [&str; 3] = [USER_ID_HEADER, USER_EMAIL_HEADER, USER_ROLE_HEADER];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "USER" => Ok(Role::User),
            "ADMIN" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}; expected USER or ADMIN")),
        }
    }
}

/// JWT claims issued by auth-service and checked by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id (UUID).
    pub sub: String,
    pub email: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

/// The identity an upstream reads from the forwarded headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub email: String,
    pub role: Role,
}

impl Identity {
    /// `None` when the headers are absent or malformed (the request did not come
    /// through the gateway's authentication).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        Some(Self {
            user_id: get(USER_ID_HEADER)?,
            email: get(USER_EMAIL_HEADER)?,
            role: get(USER_ROLE_HEADER)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn role_round_trips_through_json_and_str() {
        assert_eq!(serde_json::to_string(&Role::Admin).expect("serializes"), "\"ADMIN\"");
        assert_eq!("USER".parse::<Role>(), Ok(Role::User));
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn identity_needs_all_headers_and_a_known_role() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_ID_HEADER, HeaderValue::from_static("u1"));
        headers.insert(USER_EMAIL_HEADER, HeaderValue::from_static("a@b.c"));
        assert_eq!(Identity::from_headers(&headers), None);
        headers.insert(USER_ROLE_HEADER, HeaderValue::from_static("ROOT"));
        assert_eq!(Identity::from_headers(&headers), None);
        headers.insert(USER_ROLE_HEADER, HeaderValue::from_static("ADMIN"));
        assert_eq!(Identity::from_headers(&headers).map(|i| i.role), Some(Role::Admin));
    }
}
