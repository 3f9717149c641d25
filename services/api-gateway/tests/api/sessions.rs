//! Sessions that end (issue 33): refresh rotation and reuse, automatic logoff, and every
//! revoking event refused within 5 s by two gateway copies and by auth-service itself.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, GatewayOverrides, TestStack, json_of, spawn_stack, spawn_stack_with,
};

/// The promise: an ended session's tokens are refused by every gateway within this.
const REVOCATION_BOUND: Duration = Duration::from_secs(5);
const PASSWORD: &str = "correct-horse-battery";

async fn refresh(stack: &TestStack, refresh_token: &str) -> reqwest::Response {
    stack.post_json("/auth/refresh", &json!({"refreshToken": refresh_token})).await
}

fn field<'a>(pair: &'a Value, name: &str) -> &'a str {
    pair[name].as_str().unwrap_or_else(|| panic!("{name} in {pair}"))
}

async fn get_with(stack: &TestStack, base: &str, path: &str, token: &str) -> StatusCode {
    let response = stack.client.get(format!("{base}{path}")).bearer_auth(token).send().await.expect("request");
    response.status()
}

/// Waits until every gateway in `gateways` answers 401 to `token`, at most
/// [`REVOCATION_BOUND`]; returns how long that took. auth-service, which checks the
/// session in its database, refuses the token at once.
async fn refused_everywhere(stack: &TestStack, gateways: &[&str], token: &str, event: &str) -> Duration {
    let started = Instant::now();
    assert_eq!(
        get_with(stack, &stack.auth, "/auth/me", token).await,
        StatusCode::UNAUTHORIZED,
        "auth-service, {event}"
    );
    let mut pending: Vec<&str> = gateways.to_vec();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for gateway in pending {
            if get_with(stack, gateway, "/api/patients", token).await != StatusCode::UNAUTHORIZED {
                still.push(gateway);
            }
        }
        pending = still;
        assert!(
            started.elapsed() <= REVOCATION_BOUND,
            "{event}: still accepted after {:?} by {pending:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    eprintln!("REVOCATION event={event} refused_after_ms={}", took.as_millis());
    took
}

async fn accepted_everywhere(stack: &TestStack, gateways: &[&str], token: &str) {
    for gateway in gateways {
        assert_eq!(get_with(stack, gateway, "/api/patients", token).await, StatusCode::OK, "{gateway}");
    }
}

async fn user_id(stack: &TestStack, token: &str) -> String {
    let me = json_of(stack.authed(Method::GET, "/auth/me", token, None).await).await;
    field(&me, "id").to_string()
}

#[tokio::test]
async fn a_refresh_rotates_the_pair_and_a_reused_refresh_token_ends_the_session() {
    let stack = spawn_stack().await;
    let first = stack.user_session("rotate@example.com").await;
    let response = refresh(&stack, field(&first, "refreshToken")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = json_of(response).await;
    assert_ne!(field(&second, "refreshToken"), field(&first, "refreshToken"));
    assert_eq!(second["expiresIn"], 600);
    accepted_everywhere(&stack, &[&stack.gateway], field(&second, "token")).await;

    // The spent token again: a theft. The whole session ends, the new pair with it.
    assert_eq!(refresh(&stack, field(&first, "refreshToken")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&stack, field(&second, "refreshToken")).await.status(), StatusCode::UNAUTHORIZED);
    refused_everywhere(&stack, &[&stack.gateway], field(&second, "token"), "refresh-reused").await;
    // Another session of the same account lives on.
    let other = json_of(stack.login("rotate@example.com", PASSWORD).await).await;
    accepted_everywhere(&stack, &[&stack.gateway], field(&other, "token")).await;

    // Bad refresh requests are named, and unknown tokens are 401.
    let response = stack.post_json("/auth/refresh", &json!({})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["fields"][0]["field"], "refreshToken");
    assert_eq!(refresh(&stack, "not-a-token").await.status(), StatusCode::UNAUTHORIZED);
}

/// Each revoking event, on a session of its own account, against two gateway copies:
/// one in this test's process and one a process of its own (the api-gateway binary).
#[tokio::test]
async fn every_revoking_event_is_refused_by_two_gateways_and_auth_service_within_five_seconds() {
    let stack = spawn_stack().await;
    let (_process, second) = stack.spawn_gateway_process().await;
    let gateways = [stack.gateway.as_str(), second.as_str()];
    let admin = stack.admin_token().await;
    let mut took = Vec::new();
    let events = [
        "logout",
        "disabled",
        "role-changed",
        "password-changed",
        "password-reset",
        "ended-by-admin",
        "refresh-reused",
    ];
    for event in events {
        let email = format!("{event}@example.com");
        let session = stack.user_session(&email).await;
        let token = field(&session, "token").to_string();
        accepted_everywhere(&stack, &gateways, &token).await;
        let id = user_id(&stack, &token).await;
        let status = match event {
            "logout" => stack.authed(Method::POST, "/auth/logout", &token, None).await.status(),
            "disabled" => {
                let body = json!({"status": "DISABLED"});
                stack.authed(Method::PUT, &format!("/auth/users/{id}/status"), &admin, Some(&body)).await.status()
            }
            "role-changed" => {
                let body = json!({"role": "BILLING"});
                stack.authed(Method::PUT, &format!("/auth/users/{id}/role"), &admin, Some(&body)).await.status()
            }
            "password-changed" => {
                // From another session of the account: the other sessions end.
                let other = json_of(stack.login(&email, PASSWORD).await).await;
                let body = json!({"currentPassword": PASSWORD, "newPassword": "another-long-password"});
                let status =
                    stack.authed(Method::PUT, "/auth/me/password", field(&other, "token"), Some(&body)).await.status();
                accepted_everywhere(&stack, &gateways, field(&other, "token")).await;
                status
            }
            "password-reset" => {
                let path = format!("/auth/users/{id}/password-reset");
                let created = json_of(stack.authed(Method::POST, &path, &admin, None).await).await;
                let body = json!({"resetToken": field(&created, "resetToken"), "newPassword": "reset-long-password"});
                stack.post_json("/auth/password-reset", &body).await.status()
            }
            "ended-by-admin" => {
                stack.authed(Method::DELETE, &format!("/auth/users/{id}/sessions"), &admin, None).await.status()
            }
            _ => {
                // Refreshed once, then the spent refresh token presented again.
                let spent = field(&session, "refreshToken");
                assert_eq!(refresh(&stack, spent).await.status(), StatusCode::OK);
                let reused = refresh(&stack, spent).await.status();
                assert_eq!(reused, StatusCode::UNAUTHORIZED);
                StatusCode::OK
            }
        };
        assert!(status.is_success(), "{event}: {status}");
        took.push(refused_everywhere(&stack, &gateways, &token, event).await);
        assert_eq!(
            refresh(&stack, field(&session, "refreshToken")).await.status(),
            StatusCode::UNAUTHORIZED,
            "{event}"
        );
    }
    let slowest = took.iter().max().copied().unwrap_or_default();
    eprintln!("REVOCATION slowest_ms={} events={}", slowest.as_millis(), took.len());
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_until_enabled_and_an_admin_cannot_disable_itself() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let token = stack.user_token("paused@example.com").await;
    let id = user_id(&stack, &token).await;
    let path = format!("/auth/users/{id}/status");
    let response = stack.authed(Method::PUT, &path, &admin, Some(&json!({"status": "DISABLED"}))).await;
    assert_eq!(json_of(response).await["status"], "DISABLED");
    // The same answer as a wrong password.
    let disabled = stack.login("paused@example.com", PASSWORD).await;
    assert_eq!(disabled.status(), StatusCode::UNAUTHORIZED);
    let wrong = stack.login("paused@example.com", "wrong-password").await;
    assert_eq!(disabled.text().await.expect("body"), wrong.text().await.expect("body"));
    stack.authed(Method::PUT, &path, &admin, Some(&json!({"status": "ACTIVE"}))).await;
    assert_eq!(stack.login("paused@example.com", PASSWORD).await.status(), StatusCode::OK);

    let response = stack.authed(Method::PUT, &path, &admin, Some(&json!({"status": "GONE"}))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["fields"][0]["field"], "status");
    let own = format!("/auth/users/{}/status", user_id(&stack, &admin).await);
    let response = stack.authed(Method::PUT, &own, &admin, Some(&json!({"status": "DISABLED"}))).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_admin_lists_and_ends_an_accounts_sessions() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let first = stack.user_session("two-devices@example.com").await;
    let second = json_of(stack.login("two-devices@example.com", PASSWORD).await).await;
    let id = user_id(&stack, field(&first, "token")).await;
    let path = format!("/auth/users/{id}/sessions");
    let live = json_of(stack.authed(Method::GET, &path, &admin, None).await).await;
    assert_eq!(live.as_array().map(Vec::len), Some(2), "{live}");
    assert!(live[0]["clientAddr"].is_string() && live[0]["expiresAt"].is_string(), "{live}");
    let user = field(&first, "token");
    assert_eq!(stack.authed(Method::GET, &path, user, None).await.status(), StatusCode::FORBIDDEN);
    let ended = json_of(stack.authed(Method::DELETE, &path, &admin, None).await).await;
    assert_eq!(ended["ended"], 2);
    let live = json_of(stack.authed(Method::GET, &path, &admin, None).await).await;
    assert_eq!(live.as_array().map(Vec::len), Some(0), "{live}");
    refused_everywhere(&stack, &[&stack.gateway], field(&second, "token"), "ended-by-admin").await;
}

#[tokio::test]
async fn a_session_ends_when_idle_and_at_its_absolute_limit() {
    let sessions =
        auth_service::config::SessionConfig { idle_timeout: Duration::from_secs(2), max_age: Duration::from_secs(5) };
    let stack = spawn_stack_with(GatewayOverrides { sessions, ..Default::default() }).await;
    // Idle: no refresh for longer than the idle limit.
    let idle = stack.user_session("idle@example.com").await;
    assert_eq!(idle["refreshExpiresIn"], 2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(refresh(&stack, field(&idle, "refreshToken")).await.status(), StatusCode::UNAUTHORIZED);
    refused_everywhere(&stack, &[&stack.gateway], field(&idle, "token"), "idle-timeout").await;

    // Busy, but past the absolute limit: refreshed every second, it still ends.
    let started = Instant::now();
    let mut pair = json_of(stack.login("idle@example.com", PASSWORD).await).await;
    let mut refreshed = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let response = refresh(&stack, field(&pair, "refreshToken")).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        pair = json_of(response).await;
        refreshed += 1;
        assert!(refreshed < 10, "the session outlived its absolute limit");
    }
    assert!(started.elapsed() >= sessions.max_age, "ended before its absolute limit, after {refreshed} refreshes");
    assert!(refreshed >= 3, "only {refreshed} refreshes before the absolute limit");
}

#[tokio::test]
async fn a_demoted_admin_loses_its_rights_at_once() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let body = json!({"email": "deputy@example.com", "username": "deputy", "password": PASSWORD, "role": "ADMIN"});
    let created = stack.authed(Method::POST, "/auth/signup", &admin, Some(&body)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = field(&json_of(created).await, "id").to_string();
    let deputy = json_of(stack.login("deputy@example.com", PASSWORD).await).await;
    let deputy = field(&deputy, "token").to_string();
    assert_eq!(stack.authed(Method::GET, "/api/patients", &deputy, None).await.status(), StatusCode::OK);

    let demote = json!({"role": "USER"});
    let path = format!("/auth/users/{id}/role");
    assert_eq!(stack.authed(Method::PUT, &path, &admin, Some(&demote)).await.status(), StatusCode::OK);
    // auth-service refuses the old token at once, whatever its claim says.
    let new_admin = json!({"email": "mole@example.com", "username": "mole", "password": PASSWORD, "role": "ADMIN"});
    let response = stack
        .client
        .post(format!("{}/auth/signup", stack.auth))
        .bearer_auth(&deputy)
        .json(&new_admin)
        .send()
        .await
        .expect("signup");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    refused_everywhere(&stack, &[&stack.gateway], &deputy, "role-changed").await;
    assert_eq!(
        stack.authed(Method::POST, "/auth/signup", &deputy, Some(&new_admin)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(stack.login("mole@example.com", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
}

/// A token whose claim says ADMIN, of a live session of a USER account (as a stolen
/// signing key, or a role claim gone stale, would make): the gateway lets it through by
/// its claim, and auth-service refuses it by the account's role in the database.
#[tokio::test]
async fn privileged_operations_check_the_callers_role_in_the_database() {
    let stack = spawn_stack().await;
    let session = stack.user_session("claims@example.com").await;
    let claims: Value =
        jsonwebtoken::dangerous::insecure_decode::<Value>(field(&session, "token")).map(|d| d.claims).expect("claims");
    let mut forged = claims.clone();
    forged["role"] = json!("ADMIN");
    let key = jsonwebtoken::EncodingKey::from_ed_pem(stack.private_key_pem.as_bytes()).expect("key");
    let kid = jsonwebtoken::decode_header(field(&session, "token")).expect("header").kid;
    let header = jsonwebtoken::Header { kid, ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA) };
    let forged = jsonwebtoken::encode(&header, &forged, &key).expect("sign");
    let response = stack.authed(Method::GET, "/auth/users", &forged, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = json!({"email": "boss@example.com", "username": "boss", "password": PASSWORD, "role": "ADMIN"});
    assert_eq!(stack.authed(Method::POST, "/auth/signup", &forged, Some(&body)).await.status(), StatusCode::FORBIDDEN);
    let id = user_id(&stack, &forged).await;
    let grant = json!({"role": "ADMIN"});
    let other = user_id(&stack, &stack.user_token("victim@example.com").await).await;
    assert_ne!(id, other);
    let path = format!("/auth/users/{other}/role");
    assert_eq!(stack.authed(Method::PUT, &path, &forged, Some(&grant)).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_seeded_admin_is_managed_by_its_secret() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let change = json!({"currentPassword": ADMIN_PASSWORD, "newPassword": "a-new-admin-password"});
    let response = stack.authed(Method::PUT, "/auth/me/password", &admin, Some(&change)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(json_of(response).await["message"].as_str().is_some_and(|m| m.contains("PULSETRACK_ADMIN_PASSWORD")));

    // The same secret at a restart changes nothing.
    stack.spawn_auth(stack.auth_config.clone()).await;
    accepted_everywhere(&stack, &[&stack.gateway], &admin).await;
    // A rotated secret: the password is set, the account's sessions end.
    let mut rotated = stack.auth_config.clone();
    let secret = "a-rotated-admin-secret-456";
    rotated.admin = Some(auth_service::config::AdminSeed::new(ADMIN_EMAIL.into(), secret.into()).expect("seed"));
    stack.spawn_auth(rotated).await;
    refused_everywhere(&stack, &[&stack.gateway], &admin, "admin-secret-rotated").await;
    assert_eq!(stack.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stack.login(ADMIN_EMAIL, secret).await.status(), StatusCode::OK);
}

/// A gateway that cannot read the revocation feed cannot promise the 5 s bound: its
/// protected routes answer 503 and it is not ready, while public routes keep working.
#[tokio::test]
async fn a_gateway_that_cannot_read_the_revocation_feed_fails_closed() {
    let stack = spawn_stack().await;
    let token = stack.user_token("closed@example.com").await;
    let mut config = stack.gateway_config.clone();
    let nowhere = format!("http://{}", crate::helpers::closed_port_addr());
    config.token_check.revocations_url =
        pulsetrack_common::token_check::revocations_url(&nowhere.parse().expect("uri")).expect("uri");
    let gateway = api_gateway::Application::build(config).await.expect("gateway starts");
    let base = format!("http://{}", gateway.local_addr());
    tokio::spawn(gateway.run_until(std::future::pending()));
    assert_eq!(get_with(&stack, &base, "/api/patients", &token).await, StatusCode::SERVICE_UNAVAILABLE);
    let ready = stack.client.get(format!("{base}/ready")).send().await.expect("ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let login = stack
        .client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": "closed@example.com", "password": PASSWORD}));
    assert_eq!(login.send().await.expect("login").status(), StatusCode::OK, "public routes work");
}
