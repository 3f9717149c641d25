//! Behind the gateway nothing is believed: every service verifies the caller's token
//! itself (signature, expiry, audience, the session against the revocation feed) and
//! checks the policy again. Requests go straight to each service's port, as anything
//! inside the VPC could send them.

use std::time::Duration;

use pulsetrack_common::identity::Role;
use reqwest::{Method, RequestBuilder, StatusCode};

use crate::helpers::{TestStack, eventually, patient_body, spawn_pipeline, spawn_stack};

/// The identity headers older gateways forwarded, forged for an ADMIN.
fn forged(request: RequestBuilder) -> RequestBuilder {
    request
        .header("x-user-id", uuid::Uuid::new_v4().to_string())
        .header("x-user-email", "forger@example.com")
        .header("x-user-role", "ADMIN")
        .header("x-session-id", uuid::Uuid::new_v4().to_string())
}

/// One protected read on each service, straight to its port.
fn protected_reads(stack: &TestStack) -> Vec<String> {
    let analytics = stack.gateway_config.analytics_url.to_string();
    vec![
        format!("{}/patients", stack.patient),
        format!("{}/audit", stack.patient),
        format!("{}/billing/accounts/{}", stack.billing_http, uuid::Uuid::new_v4()),
        format!("{}/audit", stack.billing_http),
        format!("{}/analytics/summary", analytics.trim_end_matches('/')),
        format!("{}/audit", analytics.trim_end_matches('/')),
        format!("{}/auth/users", stack.auth),
    ]
}

#[tokio::test]
async fn forged_identity_headers_straight_to_any_service_are_refused() {
    let stack = spawn_pipeline().await;
    for url in protected_reads(&stack) {
        let response = forged(stack.client.get(&url)).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{url}");
        let forged_token = forged(stack.client.get(&url)).bearer_auth("e30.e30.c2ln").send().await.expect("request");
        assert_eq!(forged_token.status(), StatusCode::UNAUTHORIZED, "{url} with a token that does not verify");
    }
    let create = format!("{}/patients", stack.patient);
    let response = forged(stack.client.post(&create)).json(&patient_body("forged@example.com")).send().await;
    assert_eq!(response.expect("post").status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admins_own_token_straight_to_each_service_is_accepted() {
    let stack = spawn_pipeline().await;
    let admin = stack.admin_token().await;
    for url in protected_reads(&stack) {
        let response = forged(stack.client.get(&url)).bearer_auth(&admin).send().await.expect("request");
        // Billing has no account for a made-up patient: 404 is the service answering.
        let status = response.status();
        assert!(status == StatusCode::OK || status == StatusCode::NOT_FOUND, "{url}: {status}");
    }
}

#[tokio::test]
async fn each_service_checks_the_policy_again_with_the_tokens_role_not_a_header() {
    let stack = spawn_stack().await;
    let url = format!("{}/patients", stack.patient);
    for role in [Role::Pending, Role::Billing, Role::Auditor] {
        let token = stack.token_with_role(&format!("{}@example.com", role.as_str().to_lowercase()), role).await;
        let response = forged(stack.client.get(&url)).bearer_auth(&token).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role} with a forged ADMIN header");
        let response = stack.client.post(&url).bearer_auth(&token).json(&patient_body("d@example.com")).send().await;
        assert_eq!(response.expect("post").status(), StatusCode::FORBIDDEN, "{role}");
    }
    let clinician = stack.token_with_role("clinician@example.com", Role::Clinician).await;
    let response = stack.client.get(&url).bearer_auth(&clinician).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let billing = format!("{}/billing/accounts/{}", stack.billing_http, uuid::Uuid::new_v4());
    let response = stack.client.get(&billing).bearer_auth(&clinician).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_revoked_token_straight_to_a_service_is_refused_within_five_seconds() {
    let stack = spawn_pipeline().await;
    let token = stack.user_token("revoked@example.com").await;
    let url = format!("{}/patients", stack.patient);
    let get = || stack.client.get(&url).bearer_auth(&token).send();
    assert_eq!(get().await.expect("get").status(), StatusCode::OK);
    let logout = stack.authed(Method::POST, "/auth/logout", &token, None).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    eventually("patient-service to refuse the ended session", Duration::from_secs(5), || async {
        (get().await.expect("get").status() == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    let analytics =
        format!("{}/analytics/summary", stack.gateway_config.analytics_url.to_string().trim_end_matches('/'));
    let admin = stack.admin_token().await;
    let response = stack.client.get(&analytics).bearer_auth(&admin).send().await.expect("analytics");
    assert_eq!(response.status(), StatusCode::OK, "an ADMIN reads analytics");
    let admin_logout = stack.authed(Method::POST, "/auth/logout", &admin, None).await;
    assert_eq!(admin_logout.status(), StatusCode::NO_CONTENT);
    eventually("analytics-service to refuse the ended session", Duration::from_secs(5), || async {
        let status = stack.client.get(&analytics).bearer_auth(&admin).send().await.expect("analytics").status();
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
}
