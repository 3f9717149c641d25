//! Issue 15 through the gateway: the role matrix, signup modes and role grants, login
//! throttling, per-caller rate limits, and the HTTP servers' timeouts and shedding.

use std::time::{Duration, Instant};

use pulsetrack_common::{config::ServerLimits, identity::Role, rate_limit::Rate, settings::SignupMode};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, GatewayOverrides, TestStack, eventually, json_of, patient_body, spawn_stack,
    spawn_stack_with, token_of,
};

fn refused(status: StatusCode) -> bool {
    status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED
}

/// Each role against each kind of route: allowed means the request got past the access
/// policy (whatever the upstream then said), refused means 403.
#[tokio::test]
async fn each_role_reaches_only_its_own_routes() {
    let stack = spawn_stack().await;
    let admin = stack.admin_token().await;
    let mut tokens = vec![(Role::Admin, admin.clone())];
    for role in [Role::Pending, Role::User, Role::Clinician, Role::Billing, Role::Auditor] {
        let email = format!("{}@example.com", role.as_str().to_lowercase());
        tokens.push((role, stack.token_with_role(&email, role).await));
    }
    let patient = json_of(stack.create_patient(&admin, &patient_body("matrix@example.com")).await).await;
    let id = patient["id"].as_str().expect("id").to_string();
    let clinical: &[Role] = &[Role::User, Role::Clinician, Role::Admin];
    let routes: Vec<(Method, String, Option<Value>, &[Role])> = vec![
        (Method::GET, "/api/patients".into(), None, clinical),
        (Method::GET, format!("/api/patients/{id}"), None, clinical),
        (Method::POST, "/api/patients".into(), Some(patient_body("x@example.com")), clinical),
        (Method::PUT, format!("/api/patients/{id}"), Some(json!({"name": "Ada B"})), clinical),
        (Method::GET, format!("/api/billing/accounts/{id}"), None, &[Role::Billing, Role::Admin]),
        (Method::GET, "/api/analytics/summary".into(), None, &[Role::Admin]),
        (Method::GET, "/auth/users".into(), None, &[Role::Admin]),
        (Method::DELETE, format!("/api/patients/{}", uuid::Uuid::new_v4()), None, &[Role::Admin]),
    ];
    let mut table = Vec::new();
    for (method, path, body, allowed) in &routes {
        for (role, token) in &tokens {
            let body = body.as_ref().map(|b| {
                // Distinct emails, so that allowed creates do not conflict.
                let mut b = b.clone();
                if b.get("email").is_some() {
                    b["email"] = json!(format!("{}-{}", role.as_str().to_lowercase(), "x@example.com"));
                }
                b
            });
            let status = stack.authed(method.clone(), path, token, body.as_ref()).await.status();
            let expected_refused = !allowed.contains(role);
            if refused(status) != expected_refused || (expected_refused && status != StatusCode::FORBIDDEN) {
                table.push(format!("{role} {method} {path}: {status}"));
            }
        }
    }
    assert!(table.is_empty(), "the policy was not applied: {table:#?}");
}

async fn signup_as(stack: &TestStack, email: &str, role: Option<&str>, token: Option<&str>) -> reqwest::Response {
    let mut body = json!({"email": email, "username": "someone", "password": "correct-horse-battery"});
    if let Some(role) = role {
        body["role"] = json!(role);
    }
    let mut request = stack.client.post(stack.url("/auth/signup")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("signup")
}

#[tokio::test]
async fn in_approval_mode_a_new_account_waits_for_an_admin_to_grant_a_role() {
    let stack = spawn_stack_with(GatewayOverrides { signup_mode: SignupMode::Approval, ..Default::default() }).await;
    // The seed's client asks for USER: in approval mode it gets a PENDING account.
    let created = signup_as(&stack, "nurse@example.com", Some("USER"), None).await;
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    // Asking for a role above the mode's is not a way around the approval.
    let response = signup_as(&stack, "eve@example.com", Some("CLINICIAN"), None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(response).await["fields"][0]["field"], "role");

    let token = token_of(stack.login("nurse@example.com", "correct-horse-battery").await).await;
    let body = patient_body("waiting@example.com");
    assert_eq!(stack.create_patient(&token, &body).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(stack.authed(Method::GET, "/api/patients", &token, None).await.status(), StatusCode::FORBIDDEN);

    let admin = stack.admin_token().await;
    let waiting = json_of(stack.authed(Method::GET, "/auth/users?role=PENDING", &admin, None).await).await;
    let ids: Vec<&str> = waiting.as_array().expect("list").iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "{waiting}");
    assert_eq!(waiting[0]["email"], "nurse@example.com");
    // A clinician cannot grant roles; the admin can.
    let path = format!("/auth/users/{}/role", ids[0]);
    let grant = json!({"role": "USER"});
    let clinician = stack.token_with_role("doc@example.com", Role::Clinician).await;
    assert_eq!(stack.authed(Method::PUT, &path, &clinician, Some(&grant)).await.status(), StatusCode::FORBIDDEN);
    let response = stack.authed(Method::PUT, &path, &admin, Some(&grant)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await["role"], "USER");
    // The grant ended the pending session (every gateway hears of it within 5 s); the
    // next login carries the role.
    eventually("the pending session's token refused", Duration::from_secs(5), || async {
        let status = stack.authed(Method::GET, "/api/patients", &token, None).await.status();
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    let token = token_of(stack.login("nurse@example.com", "correct-horse-battery").await).await;
    assert_eq!(stack.create_patient(&token, &body).await.status(), StatusCode::CREATED);

    // Bad grants are named and change nothing.
    let response = stack.authed(Method::PUT, &path, &admin, Some(&json!({"role": "ROOT"}))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["fields"][0]["field"], "role");
    let missing = format!("/auth/users/{}/role", uuid::Uuid::new_v4());
    assert_eq!(stack.authed(Method::PUT, &missing, &admin, Some(&grant)).await.status(), StatusCode::NOT_FOUND);
    let me = json_of(stack.authed(Method::GET, "/auth/users?role=ADMIN", &admin, None).await).await;
    let own = format!("/auth/users/{}/role", me[0]["id"].as_str().expect("admin id"));
    assert_eq!(stack.authed(Method::PUT, &own, &admin, Some(&grant)).await.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn in_closed_mode_only_an_admin_creates_accounts() {
    let stack = spawn_stack_with(GatewayOverrides { signup_mode: SignupMode::Closed, ..Default::default() }).await;
    let response = signup_as(&stack, "walk-in@example.com", None, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(stack.login("walk-in@example.com", "correct-horse-battery").await.status(), StatusCode::UNAUTHORIZED);
    let admin = stack.admin_token().await;
    let response = signup_as(&stack, "billing@example.com", Some("BILLING"), Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_of(response).await["role"], "BILLING");
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in whole seconds")
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_account_with_429_and_retry_after() {
    let stack = spawn_stack().await;
    let lockout = auth_service::repository::Lockout::default();
    // The free failures, then the one that locks.
    for _ in 0..=lockout.free {
        assert_eq!(stack.login(ADMIN_EMAIL, "wrong-password").await.status(), StatusCode::UNAUTHORIZED);
    }
    let response = stack.login(ADMIN_EMAIL, "wrong-password").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&response);
    assert!((1..=lockout.first_lock.as_secs().max(1)).contains(&wait), "Retry-After {wait}");
    assert_eq!(json_of(response).await["error"], "TOO_MANY_REQUESTS");
    // While locked, even the right password waits.
    assert_eq!(stack.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    assert_eq!(stack.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), StatusCode::OK);
    // A success forgets the failures: the free ones are free again.
    for _ in 0..lockout.free {
        assert_eq!(stack.login(ADMIN_EMAIL, "wrong-password").await.status(), StatusCode::UNAUTHORIZED);
    }
}

async fn login_from(stack: &TestStack, client_addr: &str, email: &str, password: &str) -> reqwest::Response {
    let body = json!({"email": email, "password": password});
    stack
        .client
        .post(stack.url("/auth/login"))
        .header("x-forwarded-for", client_addr)
        .json(&body)
        .send()
        .await
        .expect("login")
}

/// The gateway trusts the test's loopback as a proxy, so X-Forwarded-For names the
/// client; one address guessing passwords is slowed without touching another's login.
#[tokio::test]
async fn failed_logins_are_limited_per_client_address_behind_a_trusted_proxy() {
    let stack = spawn_stack_with(GatewayOverrides {
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("net")],
        login_throttle: auth_service::config::LoginThrottleConfig {
            failures_per_minute_per_address: 3,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let guesser = "198.51.100.7";
    for i in 0..3 {
        let response = login_from(&stack, guesser, &format!("nobody{i}@example.com"), "guess-guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = login_from(&stack, guesser, "nobody9@example.com", "guess-guess").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&response) >= 1);
    // The limit is the address's: its right password waits too, another address logs in.
    assert_eq!(login_from(&stack, guesser, ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&stack, "198.51.100.8", ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_is_not_a_trusted_proxy_cannot_choose_its_address() {
    let stack = spawn_stack_with(GatewayOverrides {
        login_throttle: auth_service::config::LoginThrottleConfig {
            failures_per_minute_per_address: 2,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    // A new X-Forwarded-For for every guess: all of them count against 127.0.0.1.
    for i in 0..2 {
        let response = login_from(&stack, &format!("203.0.113.{i}"), "nobody@example.com", "guess-guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = login_from(&stack, "203.0.113.99", "nobody@example.com", "guess-guess").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_login_password_longer_than_the_policy_is_400_naming_the_field() {
    let stack = spawn_stack().await;
    let response = stack.login(ADMIN_EMAIL, &"x".repeat(10_000)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["fields"][0]["field"], "password");
}

#[tokio::test]
async fn each_account_is_rate_limited_at_the_gateway_with_retry_after() {
    let stack =
        spawn_stack_with(GatewayOverrides { rate_limit: Rate { per_second: 0.5, burst: 6.0 }, ..Default::default() })
            .await;
    // Signup and login are public routes, limited per client address: 4 requests here.
    let busy = stack.token_with_role("busy@example.com", Role::Clinician).await;
    let quiet = token_of(stack.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).await;
    for _ in 0..6 {
        assert_eq!(stack.authed(Method::GET, "/api/patients", &busy, None).await.status(), StatusCode::OK);
    }
    let response = stack.authed(Method::GET, "/api/patients", &busy, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=2).contains(&retry_after(&response)));
    // Another account has its own budget.
    assert_eq!(stack.authed(Method::GET, "/api/patients", &quiet, None).await.status(), StatusCode::OK);
}

/// Reads until the server closes the connection; what it sent before that.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed_by_the_server() {
    let limits = ServerLimits { header_read_timeout: Duration::from_millis(500), ..ServerLimits::default() };
    let stack = spawn_stack_with(GatewayOverrides { gateway_limits: limits, ..Default::default() }).await;
    let addr = stack.gateway.trim_start_matches("http://").to_string();

    // 50 connections that send half a header and stop.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ").await.expect("write");
        slow.push(stream);
    }
    let started = Instant::now();
    for stream in &mut slow {
        let sent = read_until_closed(stream, Duration::from_secs(5)).await;
        let sent = sent.expect("the server closes a connection that does not finish its header");
        assert!(sent.is_empty() || sent.starts_with("HTTP/1.1 408"), "{sent}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // A finished request is answered; the idle keep-alive connection is then closed.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n").await.expect("write");
    let sent = read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("closed when idle");
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
}

/// An upstream that accepts connections and never answers.
async fn silent_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_are_shed_at_once_with_503() {
    let limits = ServerLimits { max_in_flight: 2, ..ServerLimits::default() };
    let stack = spawn_stack_with(GatewayOverrides {
        patient_url: Some(silent_upstream().await),
        upstream_timeout: Duration::from_secs(5),
        gateway_limits: limits,
        ..Default::default()
    })
    .await;
    let token = stack.admin_token().await;
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let request = stack.client.get(stack.url("/api/patients")).bearer_auth(&token).send();
            tokio::spawn(request)
        })
        .collect();
    // Both slots taken (the requests wait on the silent upstream).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let response = stack.authed(Method::GET, "/api/patients", &token, None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(1), "shed at once, not queued");
    assert_eq!(retry_after(&response), 1);
    assert_eq!(json_of(response).await["status"], 503);
    // The probes are not shed: a busy gateway is not a dead one.
    let health = stack.client.get(stack.url("/health")).send().await.expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    for request in stuck {
        let status = request.await.expect("task").expect("response").status();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    }
}

#[tokio::test]
async fn a_request_longer_than_the_request_timeout_is_503() {
    let limits = ServerLimits { request_timeout: Duration::from_millis(400), ..ServerLimits::default() };
    let stack = spawn_stack_with(GatewayOverrides {
        patient_url: Some(silent_upstream().await),
        upstream_timeout: Duration::from_secs(10),
        gateway_limits: limits,
        ..Default::default()
    })
    .await;
    let token = stack.admin_token().await;
    let started = Instant::now();
    let response = stack.authed(Method::GET, "/api/patients", &token, None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(json_of(response).await["error"], "REQUEST_TIMEOUT");
}
