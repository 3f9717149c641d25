//! Proxy behaviour: spoofed identity headers, request ids, body limits, timeouts, dead upstreams.

use std::{collections::BTreeMap, time::Duration};

use axum::{Json, Router, extract::Request};
use futures_util::stream;
use reqwest::{Body, Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{GatewayOverrides, closed_port_addr, json_of, spawn_stack, spawn_stack_with};

/// An upstream that answers every request with its path and the headers it received,
/// so a test can see exactly what the gateway forwarded.
async fn header_capturing_upstream() -> String {
    let app = Router::new().fallback(|request: Request| async move {
        let headers: BTreeMap<String, String> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
            .collect();
        Json(json!({"path": request.uri().path(), "query": request.uri().query(), "headers": headers}))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn spoofed_identity_headers_are_stripped_and_the_token_is_passed_on() {
    let upstream = header_capturing_upstream().await;
    let stack = spawn_stack_with(GatewayOverrides { patient_url: Some(upstream), ..Default::default() }).await;
    let token = stack.user_token("honest@example.com").await;
    let response = stack
        .client
        .get(stack.url("/api/patients/abc?page=2"))
        .bearer_auth(&token)
        .header("x-user-id", "00000000-0000-0000-0000-000000000000")
        .header("x-user-email", "ceo@example.com")
        .header("x-user-role", "ADMIN")
        .header("x-session-id", "00000000-0000-0000-0000-000000000001")
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    let seen = json_of(response).await;
    assert_eq!(seen["path"], "/patients/abc", "/api is stripped");
    assert_eq!(seen["query"], "page=2");
    let headers = seen["headers"].as_object().expect("headers");
    for spoofed in ["x-user-id", "x-user-email", "x-user-role", "x-session-id"] {
        assert!(!headers.contains_key(spoofed), "{spoofed} reached the upstream: {headers:?}");
    }
    assert_eq!(headers["authorization"], format!("Bearer {token}"), "the upstream verifies the token itself");
    assert_eq!(headers["x-request-id"], "trace-me-123", "the request id is forwarded");
}

#[tokio::test]
async fn identity_headers_are_stripped_on_public_routes_too() {
    let stack = spawn_stack().await;
    // auth-service is the upstream here; a spoofed role must not reach it, and
    // it must not let the caller create an admin.
    let response = stack
        .client
        .post(stack.url("/auth/signup"))
        .header("x-user-role", "ADMIN")
        .json(&json!({"email": "spoof@example.com", "username": "s", "password": "password-123", "role": "ADMIN"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_request_id_is_generated_when_absent_and_bad_ones_replaced() {
    let stack = spawn_stack().await;
    let response = stack.client.get(stack.url("/health")).send().await.expect("request");
    let id = response.headers()["x-request-id"].to_str().expect("ascii").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let response =
        stack.client.get(stack.url("/health")).header("x-request-id", "x".repeat(500)).send().await.expect("request");
    assert_ne!(response.headers()["x-request-id"].len(), 500);
}

#[tokio::test]
async fn oversized_bodies_are_413_declared_or_streamed() {
    let stack = spawn_stack_with(GatewayOverrides { max_body_bytes: 1024, ..Default::default() }).await;
    let token = stack.user_token("big@example.com").await;
    let big = json!({"name": "x".repeat(4096)});
    let response = stack.authed(Method::POST, "/api/patients", &token, Some(&big)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_of(response).await["status"], 413);

    // Chunked, no Content-Length: the limit applies while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b' '; 512])).collect();
    let response = stack
        .client
        .post(stack.url("/api/patients"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_silent_upstream_gives_504_with_a_json_body() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let stack = spawn_stack_with(GatewayOverrides {
        patient_url: Some(format!("http://{addr}")),
        upstream_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let token = stack.user_token("slow@example.com").await;
    let response = stack.authed(Method::GET, "/api/patients", &token, None).await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(json_of(response).await["error"], "UPSTREAM_TIMEOUT");
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502_with_a_json_body() {
    let stack = spawn_stack_with(GatewayOverrides {
        patient_url: Some(format!("http://{}", closed_port_addr())),
        ..Default::default()
    })
    .await;
    let token = stack.user_token("down@example.com").await;
    let response = stack.authed(Method::GET, "/api/patients", &token, None).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = json_of(response).await;
    assert_eq!(body["error"], "UPSTREAM_UNAVAILABLE");
    assert!(!body.to_string().contains("127.0.0.1"), "no internal address leaks");
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let stack = spawn_stack().await;
    let response = stack.client.get(stack.url("/nope")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(response).await["status"], 404);
}
