use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, json_of, spawn_stack, token_of};

#[tokio::test]
async fn signup_returns_the_user_without_any_password_material() {
    let stack = spawn_stack().await;
    let response = stack.signup("Ada@Example.com", "s3cret-password").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let text = response.text().await.expect("body");
    assert!(!text.contains("s3cret-password") && !text.contains("argon2") && !text.to_lowercase().contains("password"));
    let body: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["username"], "tester");
    // The test stack's signup mode is open: a self-signed-up account is a clinician.
    assert_eq!(body["role"], "CLINICIAN");
    assert!(uuid::Uuid::parse_str(body["id"].as_str().expect("id")).is_ok());
}

#[tokio::test]
async fn duplicate_signup_is_a_conflict_ignoring_case() {
    let stack = spawn_stack().await;
    assert_eq!(stack.signup("dup@example.com", "password-123").await.status(), StatusCode::CREATED);
    let response = stack.signup("DUP@example.com", "password-456").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(response).await["fields"][0]["field"], "email");
}

#[tokio::test]
async fn short_password_and_bad_email_are_named() {
    let stack = spawn_stack().await;
    let response = stack.signup("short@example.com", "1234567").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_of(response).await;
    assert_eq!(body["fields"][0]["field"], "password");
    assert!(body["fields"][0]["reason"].as_str().expect("reason").contains('8'));

    let response = stack.signup("not-an-email", "long-enough-password").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["fields"][0]["field"], "email");

    // Nothing was created: the same email now signs up fine.
    assert_eq!(stack.signup("short@example.com", "long-enough-password").await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_signup_bodies_are_400_not_500() {
    let stack = spawn_stack().await;
    let cases = [
        ("{not json", "application/json"),
        (r#"{"email": 5, "username": "u", "password": "password-1"}"#, "application/json"),
        ("[]", "application/json"),
        ("", "application/json"),
    ];
    for (body, content_type) in cases {
        let response = stack
            .client
            .post(stack.url("/auth/signup"))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let response = stack.client.post(stack.url("/auth/signup")).body("{}").send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn anonymous_admin_signup_is_forbidden_and_creates_nothing() {
    let stack = spawn_stack().await;
    let body = json!({"email": "eve@example.com", "username": "eve", "password": "password-123", "role": "ADMIN"});
    let response = stack.post_json("/auth/signup", &body).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A USER token is not enough either.
    let user = stack.user_token("user@example.com").await;
    let response =
        stack.client.post(stack.url("/auth/signup")).bearer_auth(&user).json(&body).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // No account was created.
    assert_eq!(stack.login("eve@example.com", "password-123").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_can_create_admins() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let body =
        json!({"email": "second-admin@example.com", "username": "root2", "password": "password-123", "role": "ADMIN"});
    let response =
        stack.client.post(stack.url("/auth/signup")).bearer_auth(&admin).json(&body).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_of(response).await["role"], "ADMIN");
}

#[tokio::test]
async fn login_issues_a_bearer_token_and_ignores_unknown_fields() {
    let stack = spawn_stack().await;
    stack.signup("login@example.com", "password-123").await;
    let response = stack
        .post_json("/auth/login", &json!({"email": "login@example.com", "password": "password-123", "role": "ADMIN"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 3600);
    let token = body["token"].as_str().expect("token");
    let header = jsonwebtoken::decode_header(token).expect("jwt header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let claims: serde_json::Value =
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token).map(|d| d.claims).expect("claims");
    // The test stack signs up in `open` mode: a self-signed-up account is a CLINICIAN.
    assert_eq!(claims["role"], "CLINICIAN");
    assert_eq!(claims["email"], "login@example.com");
    for claim in ["sub", "iat", "exp", "iss", "aud"] {
        assert!(!claims[claim].is_null(), "{claim} missing");
    }
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_401() {
    let stack = spawn_stack().await;
    stack.signup("known@example.com", "password-123").await;
    let wrong_password = stack.login("known@example.com", "password-999").await;
    let unknown_email = stack.login("nobody@example.com", "password-123").await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.text().await.expect("body"), unknown_email.text().await.expect("body"));
}

#[tokio::test]
async fn the_seeded_admin_logs_in_as_admin() {
    let stack = spawn_stack().await;
    let token = token_of(stack.login(ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD).await).await;
    let claims: serde_json::Value =
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&token).map(|d| d.claims).expect("claims");
    assert_eq!(claims["role"], "ADMIN");
}

#[tokio::test]
async fn health_and_readiness() {
    let stack = spawn_stack().await;
    for base in [&stack.gateway, &stack.auth, &stack.patient, &stack.billing_http] {
        for path in ["/health", "/ready"] {
            let response = stack.client.get(format!("{base}{path}")).send().await.expect("request");
            assert_eq!(response.status(), StatusCode::OK, "{base}{path}");
        }
    }
}
