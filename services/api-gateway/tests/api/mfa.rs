//! The second factor (issue 33): TOTP enrolment, logins with a code or a recovery code,
//! replayed codes refused, and the enrol-only token of a role that requires one.

use std::collections::BTreeSet;

use auth_service::{
    config::MfaConfig,
    mfa::{TotpSecret, code_at},
};
use pulsetrack_common::{config::Secret, identity::Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{GatewayOverrides, TestStack, json_of, spawn_stack_with};

const PASSWORD: &str = "correct-horse-battery";

fn mfa_stack(required: &[Role]) -> GatewayOverrides {
    GatewayOverrides {
        mfa: MfaConfig {
            encryption_key: Some(Secret::new("an-mfa-encryption-key-of-the-tests-0123456789".into())),
            required_roles: required.iter().copied().collect::<BTreeSet<_>>(),
        },
        ..Default::default()
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

async fn login_with(stack: &TestStack, email: &str, extra: Value) -> reqwest::Response {
    let mut body = json!({"email": email, "password": PASSWORD});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    stack.post_json("/auth/login", &body).await
}

/// Enrols the account of `token`; returns its secret and recovery codes.
async fn enrol(stack: &TestStack, token: &str) -> (TotpSecret, Vec<String>) {
    let started = stack.authed(Method::POST, "/auth/me/totp", token, None).await;
    assert_eq!(started.status(), StatusCode::OK);
    let started = json_of(started).await;
    let uri = started["otpauthUri"].as_str().expect("otpauthUri");
    assert!(uri.starts_with("otpauth://totp/PulseTrack:") && uri.contains("&digits=6&period=30"), "{uri}");
    let secret = TotpSecret::from_base32(started["secret"].as_str().expect("secret")).expect("base32");
    let wrong = stack.authed(Method::POST, "/auth/me/totp/verify", token, Some(&json!({"code": "000000"}))).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    // A code of the previous step: within ±1 step.
    let code = code_at(&secret, now() - 30);
    let verified = stack.authed(Method::POST, "/auth/me/totp/verify", token, Some(&json!({"code": code}))).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let codes: Vec<String> = json_of(verified).await["recoveryCodes"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), 10);
    (secret, codes)
}

#[tokio::test]
async fn an_enrolled_account_logs_in_with_a_code_once_or_a_recovery_code_once() {
    let stack = spawn_stack_with(mfa_stack(&[])).await;
    let email = "two-factor@example.com";
    let token = stack.user_token(email).await;
    let (secret, codes) = enrol(&stack, &token).await;
    let again = stack.authed(Method::POST, "/auth/me/totp", &token, None).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // The password alone is no longer enough.
    let bare = login_with(&stack, email, json!({})).await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(bare).await["error"], "MFA_REQUIRED");
    let wrong = login_with(&stack, email, json!({"totp": "123 456"})).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // The next step's code (the enrolment used the previous one), then the same again.
    let code = code_at(&secret, now() + 30);
    let first = login_with(&stack, email, json!({"totp": code})).await;
    assert_eq!(first.status(), StatusCode::OK);
    let replayed = login_with(&stack, email, json!({"totp": code})).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED, "a used code is refused a second time");

    let recovery = codes[0].to_uppercase().replace('-', " ");
    assert_eq!(login_with(&stack, email, json!({"recoveryCode": recovery})).await.status(), StatusCode::OK);
    let reused = login_with(&stack, email, json!({"recoveryCode": codes[0]})).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED, "a recovery code is used once");
    assert_eq!(login_with(&stack, email, json!({"recoveryCode": codes[1]})).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_role_that_requires_a_second_factor_gets_an_enrol_only_token_until_it_enrols() {
    let stack = spawn_stack_with(mfa_stack(&[Role::Auditor])).await;
    let token = stack.token_with_role("auditor@example.com", Role::Auditor).await;
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token).map(|d| d.claims).expect("claims");
    assert_eq!(claims["scope"], "mfa-enrolment");
    let refused = stack.authed(Method::GET, "/api/audit", &token, None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(json_of(refused).await["message"].as_str().is_some_and(|m| m.contains("mfa-enrolment")));
    let direct = stack.client.get(format!("{}/auth/users", stack.auth)).bearer_auth(&token).send().await;
    assert_eq!(direct.expect("direct").status(), StatusCode::FORBIDDEN, "auth-service refuses it too");
    let direct = stack.client.get(format!("{}/audit", stack.patient)).bearer_auth(&token).send().await;
    assert_eq!(direct.expect("direct").status(), StatusCode::FORBIDDEN, "patient-service refuses it too");
    let password = json!({"currentPassword": PASSWORD, "newPassword": "another-long-password"});
    let change = stack.authed(Method::PUT, "/auth/me/password", &token, Some(&password)).await;
    assert_eq!(change.status(), StatusCode::FORBIDDEN, "enrolment only");

    let (secret, _) = enrol(&stack, &token).await;
    let login = login_with(&stack, "auditor@example.com", json!({"totp": code_at(&secret, now() + 30)})).await;
    let login = json_of(login).await;
    assert!(login.get("scope").is_none(), "{login}");
    let full = login["token"].as_str().expect("token");
    let status = stack.authed(Method::GET, "/api/audit", full, None).await.status();
    assert!(![StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED].contains(&status), "past the policy: {status}");
}

#[tokio::test]
async fn without_an_encryption_key_no_second_factor_can_be_enrolled() {
    let stack = spawn_stack_with(GatewayOverrides { mfa: MfaConfig::default(), ..Default::default() }).await;
    let token = stack.user_token("no-key@example.com").await;
    let response = stack.authed(Method::POST, "/auth/me/totp", &token, None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}
