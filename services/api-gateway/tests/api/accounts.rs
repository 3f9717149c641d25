//! The account lifecycle (issue 33): the role migration, password changes and resets,
//! the stronger password rule for privileged roles, and no probing for accounts.

use std::{
    borrow::Cow,
    time::{Duration, Instant},
};

use pulsetrack_common::{db::DatabaseConfig, settings::PasswordPolicy, testing::TestDatabase};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{GatewayOverrides, TestStack, json_of, spawn_stack, spawn_stack_with, token_of};

/// Every migration before the one that renamed the roles (0004).
const BEFORE_ROLE_MIGRATION: usize = 3;

#[tokio::test]
async fn the_migration_keeps_waiting_accounts_waiting_and_refuses_every_older_token() {
    let stack = spawn_stack().await;
    let db = TestDatabase::create("auth-migration").await;
    let pool = sqlx::PgPool::connect(db.url()).await.expect("connect");
    let mut before = sqlx::migrate!("../auth-service/migrations");
    before.migrations = Cow::Owned(before.migrations[..BEFORE_ROLE_MIGRATION].to_vec());
    before.run(&pool).await.expect("the migrations before 0004");
    let hash = auth_service::password::hash("waiting-password".into()).await.expect("hash");
    for (email, role) in [("waiting@example.com", "USER"), ("doctor@example.com", "CLINICIAN")] {
        sqlx::query("INSERT INTO users (id, email, username, password_hash, role) VALUES ($1, $2, 'old', $3, $4)")
            .bind(uuid::Uuid::now_v7())
            .bind(email)
            .bind(&hash)
            .bind(role)
            .execute(&pool)
            .await
            .expect("an account from before");
    }
    let mut config = stack.auth_config.clone();
    config.database = DatabaseConfig::with_url(db.url());
    config.admin = None;
    let auth = stack.spawn_auth(config).await;
    let login = |email: &'static str| {
        let body = json!({"email": email, "password": "waiting-password"});
        stack.client.post(format!("{auth}/auth/login")).json(&body).send()
    };
    let roles: Vec<(String, String)> =
        sqlx::query_as("SELECT email, role FROM users ORDER BY email").fetch_all(&pool).await.expect("roles");
    assert_eq!(
        roles,
        [("doctor@example.com".into(), "CLINICIAN".into()), ("waiting@example.com".into(), "PENDING".into())]
    );
    let token = token_of(login("waiting@example.com").await.expect("login")).await;
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token).map(|d| d.claims).expect("claims");
    assert_eq!(claims["role"], "PENDING");

    // A token of the old shape (no session), correctly signed: refused everywhere.
    let now = jsonwebtoken::get_current_timestamp();
    let old = json!({"sub": uuid::Uuid::now_v7(), "email": "doctor@example.com", "role": "ADMIN",
        "iat": now, "exp": now + 600, "iss": crate::helpers::ISSUER, "aud": crate::helpers::AUDIENCE});
    let key = jsonwebtoken::EncodingKey::from_ed_pem(stack.private_key_pem.as_bytes()).expect("key");
    let old =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA), &old, &key).expect("sign");
    for path in ["/api/patients", "/auth/users", "/auth/me"] {
        assert_eq!(stack.authed(Method::GET, path, &old, None).await.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let direct = stack.client.get(format!("{auth}/auth/users")).bearer_auth(&old).send().await.expect("direct");
    assert_eq!(direct.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_keeps_the_policy() {
    let stack = spawn_stack().await;
    let token = stack.user_token("changer@example.com").await;
    let put = async |body: Value| stack.authed(Method::PUT, "/auth/me/password", &token, Some(&body)).await;
    let wrong = put(json!({"currentPassword": "not-it-at-all", "newPassword": "a-new-password"})).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(wrong).await["fields"][0]["field"], "currentPassword");
    let short = put(json!({"currentPassword": "correct-horse-battery", "newPassword": "short"})).await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(short).await["fields"][0]["field"], "newPassword");
    // Nothing changed so far.
    assert_eq!(stack.login("changer@example.com", "correct-horse-battery").await.status(), StatusCode::OK);
    let done = put(json!({"currentPassword": "correct-horse-battery", "newPassword": "a-new-password"})).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(stack.login("changer@example.com", "correct-horse-battery").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stack.login("changer@example.com", "a-new-password").await.status(), StatusCode::OK);
    // The session that changed it lives on.
    assert_eq!(stack.authed(Method::GET, "/api/patients", &token, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_reset_token_is_for_one_use_and_a_refused_password_does_not_spend_it() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let token = stack.user_token("forgetful@example.com").await;
    let me = json_of(stack.authed(Method::GET, "/auth/me", &token, None).await).await;
    let path = format!("/auth/users/{}/password-reset", me["id"].as_str().expect("id"));
    assert_eq!(stack.authed(Method::POST, &path, &token, None).await.status(), StatusCode::FORBIDDEN);
    let created = json_of(stack.authed(Method::POST, &path, &admin, None).await).await;
    let reset = created["resetToken"].as_str().expect("resetToken").to_string();
    let expires: chrono::DateTime<chrono::Utc> =
        created["expiresAt"].as_str().expect("expiresAt").parse().expect("time");
    let life = expires - chrono::Utc::now();
    assert!(life > chrono::Duration::hours(23) && life <= chrono::Duration::hours(24), "{life}");
    let use_it = async |password: &str| {
        stack.post_json("/auth/password-reset", &json!({"resetToken": reset, "newPassword": password})).await
    };
    let refused = use_it("short").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(refused).await["fields"][0]["field"], "newPassword");
    assert_eq!(use_it("a-reset-password").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(stack.login("forgetful@example.com", "a-reset-password").await.status(), StatusCode::OK);
    let again = use_it("another-reset-password").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(again).await["fields"][0]["field"], "resetToken");
    // The seeded admin's password is its secret: no reset.
    let admin_id = json_of(stack.authed(Method::GET, "/auth/me", &admin, None).await).await["id"].clone();
    let other_admin = stack.token_with_role("second@example.com", pulsetrack_common::identity::Role::Admin).await;
    let path = format!("/auth/users/{}/password-reset", admin_id.as_str().expect("id"));
    assert_eq!(stack.authed(Method::POST, &path, &other_admin, None).await.status(), StatusCode::CONFLICT);
    // Nor for oneself: an ADMIN changes its own with its current one.
    let own = stack.authed(Method::POST, &path, &admin, None).await;
    assert_eq!(own.status(), StatusCode::CONFLICT);
    assert!(json_of(own).await["message"].as_str().is_some_and(|m| m.contains("PUT /auth/me/password")));
}

/// Under the strong policy: weak passwords are refused with the estimator's feedback,
/// and a grant to AUDITOR of an account whose password predates the 12-character rule
/// makes its next login's token good for a password change only.
#[tokio::test]
async fn a_privileged_role_needs_a_stronger_password_at_the_next_login() {
    let stack =
        spawn_stack_with(GatewayOverrides { password_policy: PasswordPolicy::Strong, ..Default::default() }).await;
    let weak = stack.signup("weak@example.com", "12345678").await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let reason = json_of(weak).await["fields"][0]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.len() > 20, "the estimator's feedback: {reason}");
    // Strong, but 11 characters: enough for a USER, not for an AUDITOR.
    let password = "Kq7#vPz!m2X";
    assert_eq!(stack.signup("auditor-to-be@example.com", password).await.status(), StatusCode::ACCEPTED);
    let admin = stack.admin_token().await;
    let token = token_of(stack.login("auditor-to-be@example.com", password).await).await;
    let me = json_of(stack.authed(Method::GET, "/auth/me", &token, None).await).await;
    let path = format!("/auth/users/{}/role", me["id"].as_str().expect("id"));
    let granted = json_of(stack.authed(Method::PUT, &path, &admin, Some(&json!({"role": "AUDITOR"}))).await).await;
    assert_eq!(granted["mustChangePassword"], true);

    let login = json_of(stack.login("auditor-to-be@example.com", password).await).await;
    assert_eq!(login["scope"], "password-change");
    let restricted = login["token"].as_str().expect("token");
    let refused = stack.authed(Method::GET, "/api/audit", restricted, None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(json_of(refused).await["message"].as_str().is_some_and(|m| m.contains("password-change")));
    assert_eq!(stack.authed(Method::GET, "/auth/me", restricted, None).await.status(), StatusCode::OK);
    let change = |new: &str| json!({"currentPassword": password, "newPassword": new});
    let short = stack.authed(Method::PUT, "/auth/me/password", restricted, Some(&change("Kq7#vPz!m2Y"))).await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let strong = change("Kq7#vPz!m2X-and-longer");
    assert_eq!(
        stack.authed(Method::PUT, "/auth/me/password", restricted, Some(&strong)).await.status(),
        StatusCode::NO_CONTENT
    );
    // The refresh gives a full token now.
    let refreshed = stack.post_json("/auth/refresh", &json!({"refreshToken": login["refreshToken"]})).await;
    let full = json_of(refreshed).await;
    assert!(full.get("scope").is_none(), "{full}");
    let full = full["token"].as_str().expect("token");
    // Past the gateway's policy now (the audit merge then asks every service; this stack
    // runs no analytics-service, hence 502 rather than 200).
    let status = stack.authed(Method::GET, "/api/audit", full, None).await.status();
    assert!(![StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED].contains(&status), "{status}");
}

/// One failed login of `email`: its status, its body, and how long it took.
async fn attempt(stack: &TestStack, email: &str) -> ((StatusCode, String), Duration) {
    let started = Instant::now();
    let response = stack.login(email, "a-wrong-password").await;
    let took = started.elapsed();
    let status = response.status();
    let body: Value = json_of(response).await;
    ((status, body.to_string()), took)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The same status and body, lockout included, for a known and an unknown address.
/// (Timing is made alike by hashing against a dummy hash; the medians are printed.)
#[tokio::test]
async fn login_answers_a_known_and_an_unknown_address_alike_lockout_included() {
    let stack = spawn_stack().await;
    stack.user_token("known@example.com").await;
    // Alternated, so that the machine's drift weighs on both alike.
    let (mut known, mut unknown, mut known_times, mut unknown_times) = (vec![], vec![], vec![], vec![]);
    for _ in 0..7 {
        let (answer, took) = attempt(&stack, "known@example.com").await;
        known.push(answer);
        known_times.push(took);
        let (answer, took) = attempt(&stack, "unknown@example.com").await;
        unknown.push(answer);
        unknown_times.push(took);
    }
    let (known_median, unknown_median) = (median(known_times), median(unknown_times));
    assert_eq!(known, unknown);
    assert!(known.iter().any(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS), "{known:?}");
    eprintln!("PROBING login median_ms known={} unknown={}", known_median.as_millis(), unknown_median.as_millis());
}
