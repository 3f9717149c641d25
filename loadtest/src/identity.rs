//! How the create and list phases authenticate: a bearer token through the gateway,
//! or, in direct mode, the headers the gateway would forward to patient-service.

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use pulsetrack_common::identity::{Claims, SESSION_ID_HEADER, USER_EMAIL_HEADER, USER_ID_HEADER, USER_ROLE_HEADER};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

/// A JWT's claims, read WITHOUT verifying its signature: the load test only needs to
/// know who the token names (verifying is the gateway's job).
pub fn unverified_claims(token: &str) -> anyhow::Result<Claims> {
    let mut segments = token.trim().split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        bail!("not a JWT: expected three dot-separated segments");
    };
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).context("JWT payload is not base64url")?;
    serde_json::from_slice(&json).context("JWT payload does not hold the expected claims (sub, email, role, sid, ...)")
}

/// `Authorization: Bearer <token>`, what a client sends the gateway.
pub fn bearer_headers(token: &str) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a valid header value")?;
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}

/// What patient-service receives from the gateway for a request bearing `token`: the
/// `Authorization` header (the gateway passes it through) and the identity headers it
/// sets from the verified claims (`x-user-id` = sub, `x-user-email`, `x-user-role`,
/// `x-session-id` = sid).
pub fn forwarded_headers(token: &str, claims: &Claims) -> anyhow::Result<HeaderMap> {
    let mut headers = bearer_headers(token)?;
    let session = claims.sid.to_string();
    for (name, value) in [
        (USER_ID_HEADER, claims.sub.as_str()),
        (USER_EMAIL_HEADER, claims.email.as_str()),
        (USER_ROLE_HEADER, claims.role.as_str()),
        (SESSION_ID_HEADER, session.as_str()),
    ] {
        let value =
            HeaderValue::from_str(value).with_context(|| format!("claim for {name} is not a valid header value"))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE;
    use pulsetrack_common::identity::{Role, TokenScope};
    use serde_json::json;

    use super::*;

    fn token(payload: &serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    const SID: &str = "6f1c2a4e-93d1-4b8e-a2f0-5c7d9e1b3a42";

    fn claims_json() -> serde_json::Value {
        json!({
            "sub": "0191f0b2-7c1e-7d3a-9a51-1f2e3d4c5b6a",
            "email": "load-1@example.com",
            "role": "USER",
            "sid": SID,
            "iat": 1_700_000_000u64,
            "exp": 1_700_003_600u64,
            "iss": "pulsetrack-auth",
            "aud": "pulsetrack"
        })
    }

    #[test]
    fn reads_the_claims_of_a_token() {
        let claims = unverified_claims(&token(&claims_json())).expect("claims");
        assert_eq!(claims.sub, "0191f0b2-7c1e-7d3a-9a51-1f2e3d4c5b6a");
        assert_eq!(claims.email, "load-1@example.com");
        assert_eq!(claims.role, Role::User);
        assert_eq!(claims.sid.to_string(), SID);
        assert_eq!(claims.scope, TokenScope::Full, "no scope claim: a full token");
    }

    #[test]
    fn reads_a_restricted_scope() {
        let mut restricted = claims_json();
        restricted["scope"] = json!("password-change");
        let claims = unverified_claims(&token(&restricted)).expect("claims");
        assert_eq!(claims.scope, TokenScope::PasswordChange);
    }

    #[test]
    fn tolerates_a_padded_payload() {
        let payload = URL_SAFE.encode(claims_json().to_string());
        let claims = unverified_claims(&format!("h.{payload}.s")).expect("claims");
        assert_eq!(claims.email, "load-1@example.com");
    }

    #[test]
    fn refuses_what_is_not_a_token_with_claims() {
        assert!(unverified_claims("").is_err());
        assert!(unverified_claims("a.b").is_err());
        assert!(unverified_claims("a.b.c.d").is_err());
        assert!(unverified_claims("h.!!!.s").is_err());
        assert!(unverified_claims(&token(&json!({"sub": "x"}))).is_err());
        let mut bad_role = claims_json();
        bad_role["role"] = json!("ROOT");
        assert!(unverified_claims(&token(&bad_role)).is_err());
        // `sid` is required, and a UUID.
        let mut no_session = claims_json();
        no_session.as_object_mut().expect("an object").remove("sid");
        assert!(unverified_claims(&token(&no_session)).is_err());
        let mut bad_session = claims_json();
        bad_session["sid"] = json!("not-a-uuid");
        assert!(unverified_claims(&token(&bad_session)).is_err());
    }

    #[test]
    fn forwards_what_the_gateway_forwards() {
        let token = token(&claims_json());
        let claims = unverified_claims(&token).expect("claims");
        let headers = forwarded_headers(&token, &claims).expect("headers");
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(get("x-user-id").as_deref(), Some("0191f0b2-7c1e-7d3a-9a51-1f2e3d4c5b6a"));
        assert_eq!(get("x-user-email").as_deref(), Some("load-1@example.com"));
        assert_eq!(get("x-user-role").as_deref(), Some("USER"));
        assert_eq!(get("x-session-id").as_deref(), Some(SID));
        assert_eq!(get("authorization"), Some(format!("Bearer {token}")));
        assert_eq!(headers.len(), 5);
    }

    #[test]
    fn gateway_mode_sends_only_the_bearer_token() {
        let headers = bearer_headers("abc.def.ghi").expect("headers");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()), Some("Bearer abc.def.ghi"));
        assert!(bearer_headers("bad\ntoken").is_err());
    }

    #[test]
    fn identity_headers_parse_back_as_patient_service_reads_them() {
        let token = token(&claims_json());
        let claims = unverified_claims(&token).expect("claims");
        let headers = forwarded_headers(&token, &claims).expect("headers");
        let identity = pulsetrack_common::identity::Identity::from_headers(&headers).expect("identity");
        assert_eq!((identity.user_id, identity.role), (claims.sub, Role::User));
    }
}
