//! Issue 35's security events, through the gateway: every account event lands in
//! auth-service's own trail (service `auth-service`), each disclosure to billing in
//! billing-service's, and a flood of the gateway's own refusals becomes one entry per
//! client, route, status and minute; `GET /api/audit/verify` walks all four trails.

use std::time::Duration;

use base64::Engine as _;
use pulsetrack_common::identity::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestStack, eventually, json_of, patient_body, spawn_pipeline};

fn subject(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice::<Value>(&json).expect("claims")["sub"].as_str().expect("sub").to_string()
}

/// auth-service's entries, newest first.
async fn auth_trail(stack: &TestStack, admin: &str) -> Vec<Value> {
    let response = stack.authed(Method::GET, "/api/audit?limit=1000", admin, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let entries = json_of(response).await.as_array().expect("entries").clone();
    entries.into_iter().filter(|e| e["service"] == "auth-service").collect()
}

/// The newest entry of `action` (matching `also`), or a panic listing what there is.
fn find<'e>(entries: &'e [Value], action: &str, also: impl Fn(&Value) -> bool) -> &'e Value {
    entries.iter().find(|e| e["action"] == action && also(e)).unwrap_or_else(|| {
        let seen: Vec<String> =
            entries.iter().map(|e| format!("{} {} {}", e["action"], e["outcome"], e["detail"])).collect();
        panic!("no {action} entry among {seen:#?}")
    })
}

#[tokio::test]
async fn every_account_event_is_in_auth_services_trail_with_who_why_and_from_where() {
    let stack = spawn_pipeline().await;
    let admin = stack.admin_token().await;
    let admin_id = subject(&admin);
    let password = "correct-horse-battery";

    // Signup, login success and failure, a lockout.
    assert_eq!(stack.signup("eve@example.com", password).await.status(), StatusCode::ACCEPTED);
    let session = json_of(stack.login("eve@example.com", password).await).await;
    let token = session["token"].as_str().expect("token").to_string();
    let eve = subject(&token);
    assert_eq!(stack.login("eve@example.com", "wrong-password-1").await.status(), 401);
    assert_eq!(stack.login("nobody@example.com", "wrong-password-1").await.status(), 401);
    for _ in 0..4 {
        stack.login("eve@example.com", "wrong-password-2").await;
    }
    // The fifth failure locked the address (for a second): even the right password is refused.
    assert_eq!(stack.login("eve@example.com", password).await.status(), 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Refresh reuse ends the session; logout ends another.
    let refresh = json!({"refreshToken": session["refreshToken"]});
    assert_eq!(stack.post_json("/auth/refresh", &refresh).await.status(), 200);
    assert_eq!(stack.post_json("/auth/refresh", &refresh).await.status(), 401, "a spent refresh token");
    let other = stack.token_with_role("mallory@example.com", Role::Clinician).await;
    let mallory = subject(&other);
    assert_eq!(stack.authed(Method::POST, "/auth/logout", &other, None).await.status(), 204);
    // Password change, TOTP enrolment, as the account itself.
    let own = stack.token_with_role("carol@example.com", Role::User).await;
    let change = json!({"currentPassword": password, "newPassword": "another-horse-battery"});
    assert_eq!(stack.authed(Method::PUT, "/auth/me/password", &own, Some(&change)).await.status(), 204);
    assert_eq!(stack.authed(Method::POST, "/auth/me/totp", &own, None).await.status(), 200);
    // An ADMIN's work: listing, role and status, a reset, sessions.
    assert_eq!(stack.authed(Method::GET, "/auth/users?role=USER", &admin, None).await.status(), 200);
    let role = json!({"role": "CLINICIAN"});
    assert_eq!(stack.authed(Method::PUT, &format!("/auth/users/{eve}/role"), &admin, Some(&role)).await.status(), 200);
    let disable = json!({"status": "DISABLED"});
    let path = format!("/auth/users/{mallory}/status");
    assert_eq!(stack.authed(Method::PUT, &path, &admin, Some(&disable)).await.status(), 200);
    let reset =
        json_of(stack.authed(Method::POST, &format!("/auth/users/{eve}/password-reset"), &admin, None).await).await;
    let body = json!({"resetToken": reset["resetToken"], "newPassword": "a-third-horse-battery"});
    assert_eq!(stack.post_json("/auth/password-reset", &body).await.status(), 204);
    assert_eq!(stack.authed(Method::GET, &format!("/auth/users/{eve}/sessions"), &admin, None).await.status(), 200);
    assert_eq!(stack.authed(Method::DELETE, &format!("/auth/users/{eve}/sessions"), &admin, None).await.status(), 200);
    // A USER may not list accounts: auth-service refuses it itself (a direct call, as
    // from inside), and records the refusal.
    let direct = stack.client.get(format!("{}/auth/users", stack.auth)).bearer_auth(&own).send().await;
    assert_eq!(direct.expect("answered").status(), 403);

    let trail = auth_trail(&stack, &admin).await;
    let signup = find(&trail, "SIGNUP", |e| e["actorId"] == "anonymous" && e["outcome"] == 202);
    assert_eq!(signup["clientAddr"], "127.0.0.1", "{signup}");
    let success = find(&trail, "LOGIN_SUCCESS", |e| e["actorId"] == eve.as_str());
    assert_eq!((success["actorRole"].as_str(), success["clientAddr"].as_str()), (Some("USER"), Some("127.0.0.1")));
    let wrong = find(&trail, "LOGIN_FAILURE", |e| e["detail"] == "wrong password");
    assert_eq!((wrong["actorId"].as_str(), wrong["outcome"].as_i64()), (Some(eve.as_str()), Some(401)));
    assert_eq!(wrong["clientAddr"], "127.0.0.1");
    let unknown = find(&trail, "LOGIN_FAILURE", |e| e["detail"] == "no account has this email address");
    assert_eq!(unknown["actorId"], "anonymous");
    let lockout = find(&trail, "LOCKOUT", |_| true);
    assert_eq!((lockout["subject"].as_str(), lockout["outcome"].as_i64()), (Some(eve.as_str()), Some(429)));
    find(&trail, "LOGIN_FAILURE", |e| e["detail"] == "the email address is locked after failed logins");
    let reuse = find(&trail, "REFRESH_REUSE", |_| true);
    assert!(reuse["detail"].as_str().is_some_and(|d| d.contains("refresh-reused")), "{reuse}");
    find(&trail, "LOGOUT", |e| e["actorId"] == mallory.as_str() && e["outcome"] == 204);
    find(&trail, "PASSWORD_CHANGE", |e| e["outcome"] == 204);
    find(&trail, "TOTP_ENROL", |e| e["detail"] == "enrolment started");
    let listing = find(&trail, "USER_LIST", |e| e["actorId"] == admin_id.as_str());
    assert!(listing["detail"].as_str().is_some_and(|d| d.starts_with("role USER")), "{listing}");
    find(&trail, "USER_LIST", |e| e["outcome"] == 403 && e["actorRole"] == "USER");
    let grant = find(&trail, "ROLE_CHANGE", |_| true);
    assert_eq!((grant["subject"].as_str(), grant["actorId"].as_str()), (Some(eve.as_str()), Some(admin_id.as_str())));
    assert!(grant["detail"].as_str().is_some_and(|d| d.starts_with("USER to CLINICIAN")), "{grant}");
    let status = find(&trail, "STATUS_CHANGE", |_| true);
    assert!(status["detail"].as_str().is_some_and(|d| d.starts_with("ACTIVE to DISABLED")), "{status}");
    find(&trail, "PASSWORD_RESET_ISSUE", |e| e["subject"] == eve.as_str());
    find(&trail, "PASSWORD_RESET", |e| e["subject"] == eve.as_str() && e["outcome"] == 204);
    find(&trail, "SESSION_LIST", |e| e["subject"] == eve.as_str());
    find(&trail, "SESSION_END", |e| e["subject"] == eve.as_str() && e["actorId"] == admin_id.as_str());

    // The trail verifies, with the other three.
    let report = json_of(stack.authed(Method::GET, "/api/audit/verify", &admin, None).await).await;
    let services: Vec<&str> =
        report["trails"].as_array().expect("trails").iter().filter_map(|t| t["service"].as_str()).collect();
    assert_eq!(services, ["auth-service", "patient-service", "billing-service", "analytics-service"], "{report}");
    let auth = &report["trails"][0];
    assert_eq!((auth["intact"].as_bool(), auth["entries"].as_i64() > Some(20)), (Some(true), true), "{report}");
}

#[tokio::test]
async fn each_account_opened_over_grpc_is_a_disclosure_in_billings_trail() {
    let stack = spawn_pipeline().await;
    let clinician = stack.token_with_role("disclose@example.com", Role::Clinician).await;
    let auditor = stack.token_with_role("disclose-aud@example.com", Role::Auditor).await;
    let created = stack.create_patient(&clinician, &patient_body("disclosed@example.com")).await;
    let id = json_of(created).await["id"].as_str().expect("id").to_string();
    let entry = eventually("the disclosure recorded", Duration::from_secs(20), || async {
        let response = stack.authed(Method::GET, &format!("/api/audit?patientId={id}"), &auditor, None).await;
        let entries = json_of(response).await;
        entries.as_array()?.iter().find(|e| e["action"] == "BILLING_ACCOUNT_OPEN").cloned()
    })
    .await;
    assert_eq!(
        (entry["service"].as_str(), entry["actorId"].as_str(), entry["actorRole"].as_str(), entry["outcome"].as_i64()),
        (Some("billing-service"), Some("patient-service"), Some("SERVICE"), Some(200)),
        "{entry}"
    );
    assert_eq!(entry["detail"], "name and email received over gRPC");
    assert_eq!(
        stack.authed(Method::DELETE, &format!("/api/patients/{id}"), &stack.admin_token().await, None).await.status(),
        204
    );
    eventually("the close recorded", Duration::from_secs(20), || async {
        let response = stack.authed(Method::GET, &format!("/api/audit?patientId={id}"), &auditor, None).await;
        let entries = json_of(response).await;
        entries.as_array()?.iter().any(|e| e["action"] == "BILLING_ACCOUNT_CLOSE").then_some(())
    })
    .await;
}

/// A flood of refusals is a few entries: one per client, route, status and minute, with
/// the count. (Counts are reported once their minute is over: this test waits for it.)
#[tokio::test]
async fn a_flood_of_refusals_becomes_one_entry_per_client_route_status_and_minute() {
    let stack = spawn_pipeline().await;
    let admin = stack.admin_token().await;
    let user = stack.user_token("flooder@example.com").await;
    let flood = (0..200).map(|_| stack.client.get(stack.url("/api/patients")).send());
    for response in futures_util::future::join_all(flood).await {
        assert_eq!(response.expect("refused").status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..30 {
        assert_eq!(stack.authed(Method::GET, "/api/audit", &user, None).await.status(), StatusCode::FORBIDDEN);
    }
    // An upstream's own refusal (auth-service's 401 for a wrong password) is its
    // service's to record, not the gateway's.
    assert_eq!(stack.login("flooder@example.com", "not-the-password").await.status(), StatusCode::UNAUTHORIZED);

    let refusals = eventually("the refusals reported", Duration::from_secs(100), || async {
        let trail = auth_trail(&stack, &admin).await;
        let refusals: Vec<Value> = trail.into_iter().filter(|e| e["action"] == "GATEWAY_REFUSAL").collect();
        let total: i64 = refusals.iter().filter_map(|e| e["count"].as_i64()).sum();
        (total >= 230).then_some(refusals)
    })
    .await;
    let counts: Vec<(&str, i64, i64)> = refusals
        .iter()
        .map(|e| {
            (
                e["subject"].as_str().unwrap_or_default(),
                e["outcome"].as_i64().unwrap_or(0),
                e["count"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    // The flood may straddle a minute: at most two entries per route and status.
    let unauthenticated: i64 = counts.iter().filter(|c| c.0 == "GET /api/patients" && c.1 == 401).map(|c| c.2).sum();
    let forbidden: i64 = counts.iter().filter(|c| c.0 == "GET /api/audit" && c.1 == 403).map(|c| c.2).sum();
    assert_eq!((unauthenticated, forbidden), (200, 30), "{counts:?}");
    assert!(refusals.len() <= 4, "{counts:?}");
    assert!(counts.iter().all(|c| c.0 != "POST /auth/{*rest}"), "{counts:?}");
    let entry = &refusals[0];
    assert_eq!((entry["actorId"].as_str(), entry["actorRole"].as_str()), (Some("api-gateway"), Some("SERVICE")));
    assert_eq!(entry["clientAddr"], "127.0.0.1");
    assert!(entry["detail"].as_str().is_some_and(|d| d.starts_with("minute ")), "{entry}");

    // The intake takes only the gateway's credential.
    let report = json!({"refusals": [{"client": null, "route": "GET /x", "status": 401, "minute": "2026-01-01T00:00:00Z", "count": 1}]});
    let forged = stack.client.post(format!("{}/internal/audit/refusals", stack.auth)).json(&report).send().await;
    assert_eq!(forged.expect("answered").status(), StatusCode::UNAUTHORIZED);
    let through_gateway = stack.post_json("/internal/audit/refusals", &report).await;
    assert_eq!(through_gateway.status(), StatusCode::NOT_FOUND, "not routed by the gateway");
}
