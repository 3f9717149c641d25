//! Issue 16's metrics through real traffic: every service's `/metrics` moves after
//! creates, reads and logins go through the gateway; the gateway's own is not public.

use std::time::Duration;

use pulsetrack_common::identity::Role;
use reqwest::{Method, StatusCode};

use crate::helpers::{eventually, patient_body, sample, scrape, spawn_pipeline};

#[tokio::test]
async fn every_service_exposes_metrics_that_move_with_traffic() {
    let stack = spawn_pipeline().await;
    let clinician = stack.token_with_role("metrics@example.com", Role::Clinician).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let response = stack.create_patient(&clinician, &patient_body(&format!("m{n}@example.com"))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(response.json::<serde_json::Value>().await.expect("json")["id"].as_str().expect("id").to_string());
    }
    assert_eq!(stack.authed(Method::GET, &format!("/api/patients/{}", ids[0]), &clinician, None).await.status(), 200);
    assert_eq!(stack.login("metrics@example.com", "a-wrong-password").await.status(), StatusCode::UNAUTHORIZED);

    let gateway = scrape(&stack, &stack.gateway).await;
    let created = sample(&gateway, r#"http_server_requests_total{method="POST",route="/api/patients",status="201"}"#);
    assert_eq!(created, Some(5.0), "{gateway}");
    assert!(gateway.contains(r#"http_server_request_duration_seconds_bucket{le="#), "{gateway}");

    let patients = scrape(&stack, &stack.patient).await;
    let created = sample(&patients, r#"http_server_requests_total{method="POST",route="/patients",status="201"}"#);
    assert_eq!(created, Some(5.0), "{patients}");
    assert!(
        sample(&patients, r#"http_server_requests_total{method="GET",route="/patients/{id}",status="200"}"#)
            >= Some(1.0)
    );
    assert_eq!(sample(&patients, "db_pool_max_connections"), Some(10.0), "{patients}");
    assert!(patients.contains(r#"db_pool_connections{state="idle"}"#), "{patients}");
    // Every create and read waited for a connection, if only microseconds (the
    // histogram is the process's: here every service's acquires are in it).
    assert!(sample(&patients, "db_pool_acquire_wait_seconds_count") >= Some(6.0), "{patients}");
    assert!(patients.contains(r#"db_pool_acquire_wait_seconds_bucket{le="0.0001"}"#), "{patients}");
    for destination in ["billing", "billing-close", "patient-event"] {
        assert!(patients.contains(&format!(r#"outbox_pending{{destination="{destination}"}}"#)), "{patients}");
        assert!(patients.contains(&format!(r#"outbox_oldest_pending_age_seconds{{destination="{destination}"}}"#)));
    }
    // An idle pipeline holds no create back.
    assert_eq!(sample(&patients, "outbox_create_hold_seconds"), Some(0.0), "{patients}");

    let auth = scrape(&stack, &stack.auth).await;
    assert_eq!(sample(&auth, r#"auth_logins_total{outcome="invalid_credentials"}"#), Some(1.0), "{auth}");
    assert!(sample(&auth, r#"auth_logins_total{outcome="success"}"#) >= Some(1.0), "{auth}");
    assert_eq!(sample(&auth, "auth_password_hashes_waiting"), Some(0.0), "{auth}");

    // The pipeline delivers: billing's gRPC calls and analytics' stored events move.
    let analytics = format!("http://127.0.0.1:{}", stack.analytics_config.as_ref().expect("pipeline").listen.port);
    let billing = eventually("accounts opened over gRPC (batched)", Duration::from_secs(30), || async {
        let text = scrape(&stack, &stack.billing_http).await;
        let calls = sample(&text, r#"grpc_server_requests_total{method="CreateBillingAccounts",code="Ok"}"#);
        (calls >= Some(1.0)).then_some(text)
    })
    .await;
    assert!(billing.contains("grpc_server_request_duration_seconds_bucket"), "{billing}");
    let analytics = eventually("five events stored and the lag reported", Duration::from_secs(30), || async {
        let text = scrape(&stack, &analytics).await;
        let stored = sample(&text, "analytics_events_stored_total");
        (stored >= Some(5.0) && text.contains("kafka_consumer_lag{topic=\"patient\"")).then_some(text)
    })
    .await;
    assert_eq!(sample(&analytics, "analytics_dead_letters_total"), Some(0.0), "{analytics}");

    // The Grafana dashboard in the repository graphs only metrics the services export.
    let exported = [&gateway, &patients, &auth, &billing, &analytics].map(|t| t.as_str()).join("\n");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../dashboards/grafana-pulsetrack.json"))
            .expect("the dashboard"),
    )
    .expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{dashboard}");
    for expr in
        panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten()).filter_map(|t| t["expr"].as_str())
    {
        let names = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| {
            w.contains('_') && !w.starts_with("histogram_") && w.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
        for name in names.filter(|n| !["in_use"].contains(n)) {
            assert!(exported.lines().any(|l| l.starts_with(name)), "the dashboard's `{name}` ({expr}) is not exported");
        }
    }

    // Through a proxy (the ALB sets X-Forwarded-For), the gateway's metrics are not served.
    let proxied =
        stack.client.get(format!("{}/metrics", stack.gateway)).header("x-forwarded-for", "203.0.113.5").send().await;
    assert_eq!(proxied.expect("request").status(), StatusCode::NOT_FOUND);
}
