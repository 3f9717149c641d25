//! Every way a token can be wrong gets a 401 with `WWW-Authenticate: Bearer`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, ISSUER, TestStack, spawn_stack};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(stack_user: &str) -> Value {
    json!({"sub": stack_user, "email": "mallory@example.com", "role": "ADMIN", "sid": uuid::Uuid::new_v4(),
           "iat": now(), "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE})
}

fn sign(pem: &str, kid: Option<String>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid;
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(pem.as_bytes()).expect("key")).expect("sign")
}

async fn kid_of(stack: &TestStack) -> Option<String> {
    let token = stack.user_token("kid@example.com").await;
    jsonwebtoken::decode_header(&token).expect("header").kid
}

async fn assert_rejected(stack: &TestStack, authorization: Option<&str>, case: &str) {
    let mut request = stack.client.get(stack.url("/api/patients"));
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
    assert_eq!(response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()), Some(&b"Bearer"[..]), "{case}");
    let body: Value = response.json().await.expect("json body");
    assert_eq!(body["status"], 401, "{case}");
}

#[tokio::test]
async fn a_correctly_signed_token_is_accepted() {
    // Guards the rejection tests below: the same minting with the right inputs passes.
    let stack = spawn_stack().await;
    let kid = kid_of(&stack).await;
    let token = sign(&stack.private_key_pem, kid, &claims("u1"));
    let response = stack.client.get(stack.url("/api/patients")).bearer_auth(token).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401() {
    let stack = spawn_stack().await;
    assert_rejected(&stack, None, "no header").await;
    assert_rejected(&stack, Some("Bearer"), "scheme only").await;
    assert_rejected(&stack, Some("Bearer "), "empty token").await;
    assert_rejected(&stack, Some("Basic dXNlcjpwYXNz"), "basic auth").await;
    assert_rejected(&stack, Some("Bearer not.a.jwt"), "garbage").await;
    assert_rejected(&stack, Some("Bearer a.b"), "two segments").await;
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let stack = spawn_stack().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims("u1").to_string());
    assert_rejected(&stack, Some(&format!("Bearer {header}.{payload}.")), "alg none").await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let stack = spawn_stack().await;
    let kid = kid_of(&stack).await;
    let jwks: Value = stack
        .client
        .get(format!("{}/.well-known/jwks.json", stack.auth))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let public_x = jwks["keys"][0]["x"].as_str().expect("x").to_string();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid;
    let token =
        jsonwebtoken::encode(&header, &claims("u1"), &EncodingKey::from_secret(public_x.as_bytes())).expect("sign");
    assert_rejected(&stack, Some(&format!("Bearer {token}")), "alg confusion").await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_rejected() {
    let stack = spawn_stack().await;
    let kid = kid_of(&stack).await;
    let other = auth_service::tokens::generate_private_key_pem().expect("key");
    let token = sign(&other, kid, &claims("u1"));
    assert_rejected(&stack, Some(&format!("Bearer {token}")), "wrong key").await;
    let token = sign(&other, Some("unknown-kid".into()), &claims("u1"));
    assert_rejected(&stack, Some(&format!("Bearer {token}")), "unknown kid").await;
}

#[tokio::test]
async fn expired_wrong_audience_and_wrong_issuer_are_rejected() {
    let stack = spawn_stack().await;
    let kid = kid_of(&stack).await;
    let mut expired = claims("u1");
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let mut wrong_aud = claims("u1");
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims("u1");
    wrong_iss["iss"] = json!("https://evil.example");
    let mut no_exp = claims("u1");
    no_exp.as_object_mut().expect("object").remove("exp");
    for (case, c) in [("expired", expired), ("aud", wrong_aud), ("iss", wrong_iss), ("no exp", no_exp)] {
        let token = sign(&stack.private_key_pem, kid.clone(), &c);
        assert_rejected(&stack, Some(&format!("Bearer {token}")), case).await;
    }
}

#[tokio::test]
async fn a_tampered_payload_is_rejected() {
    let stack = spawn_stack().await;
    let token = stack.user_token("tamper@example.com").await;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
    payload["role"] = json!("ADMIN");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    assert_rejected(&stack, Some(&format!("Bearer {}", parts.join("."))), "tampered").await;
}

#[tokio::test]
async fn a_remembered_token_is_still_refused_once_it_expires() {
    // The gateway remembers verified tokens; expiry must still be enforced on each use.
    let stack = spawn_stack().await;
    let kid = kid_of(&stack).await;
    let mut short = claims("u1");
    short["exp"] = json!(now() + 1);
    let token = sign(&stack.private_key_pem, kid, &short);
    let first = stack.client.get(stack.url("/api/patients")).bearer_auth(&token).send().await.expect("request");
    assert_eq!(first.status(), StatusCode::OK, "valid while not expired");
    // Past exp plus the gateway's 5 s leeway.
    while now() <= short["exp"].as_u64().expect("exp") + 5 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_rejected(&stack, Some(&format!("Bearer {token}")), "expired after being remembered").await;
}
