use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, json_of, spawn_stack, token_of};

#[tokio::test]
async fn a_public_signup_answers_a_free_and_a_taken_address_alike() {
    let stack = spawn_stack().await;
    let free = stack.signup("Ada@Example.com", "s3cret-password").await;
    assert_eq!(free.status(), StatusCode::ACCEPTED);
    let free = free.text().await.expect("body");
    let taken = stack.signup("ADA@example.com", "other-password").await;
    assert_eq!(taken.status(), StatusCode::ACCEPTED);
    assert_eq!(taken.text().await.expect("body"), free, "the same answer for a taken address");
    assert!(!free.contains("s3cret-password") && !free.contains("argon2") && !free.contains("ada@"));
    // The first signup made the account (in `open` mode, a USER); the second changed nothing.
    assert_eq!(stack.login("ada@example.com", "other-password").await.status(), StatusCode::UNAUTHORIZED);
    let token = token_of(stack.login("ada@example.com", "s3cret-password").await).await;
    let me = json_of(stack.authed(reqwest::Method::GET, "/auth/me", &token, None).await).await;
    assert_eq!(
        (me["email"].as_str(), me["username"].as_str(), me["role"].as_str()),
        (Some("ada@example.com"), Some("tester"), Some("USER"))
    );
    assert!(uuid::Uuid::parse_str(me["id"].as_str().expect("id")).is_ok());
}

#[tokio::test]
async fn an_admin_creating_a_taken_address_is_told_it_is_taken() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let body = json!({"email": "dup@example.com", "username": "dup", "password": "password-123"});
    let create = || stack.client.post(stack.url("/auth/signup")).bearer_auth(&admin).json(&body).send();
    let created = create().await.expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);
    let text = created.text().await.expect("body");
    assert!(!text.contains("password-123") && !text.contains("argon2") && !text.contains("passwordHash"), "{text}");
    let response = create().await.expect("request");
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

    // Nothing was created: the same email now signs up and logs in.
    assert_eq!(stack.signup("short@example.com", "long-enough-password").await.status(), StatusCode::ACCEPTED);
    assert_eq!(stack.login("short@example.com", "long-enough-password").await.status(), StatusCode::OK);
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
    // A USER token is not enough either: it signs up as anyone would.
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
async fn login_issues_a_session_of_two_tokens_and_ignores_unknown_fields() {
    let stack = spawn_stack().await;
    stack.signup("login@example.com", "password-123").await;
    let response = stack
        .post_json("/auth/login", &json!({"email": "login@example.com", "password": "password-123", "role": "ADMIN"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 600);
    assert!(body["refreshToken"].as_str().is_some_and(|t| t.len() >= 43), "{body}");
    assert_eq!(body["refreshExpiresIn"], 1800);
    assert!(body.get("scope").is_none(), "a full token says no scope");
    let token = body["token"].as_str().expect("token");
    let header = jsonwebtoken::decode_header(token).expect("jwt header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let claims: serde_json::Value =
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token).map(|d| d.claims).expect("claims");
    // The test stack signs up in `open` mode: a self-signed-up account is a USER.
    assert_eq!(claims["role"], "USER");
    assert_eq!(claims["email"], "login@example.com");
    for claim in ["sub", "sid", "iat", "exp", "iss", "aud"] {
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
