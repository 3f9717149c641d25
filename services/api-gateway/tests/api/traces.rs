//! Issue 16's traces: one create is one trace, from the gateway through patient-service
//! and the outbox to billing-service's gRPC call and analytics' insert, and each of
//! those spans carries the trace id as a field (so every log line inside it does too).

use std::time::Duration;

use opentelemetry::trace::TraceId;
use pulsetrack_common::{identity::Role, testing::finished_spans};
use reqwest::{Method, StatusCode};

use crate::helpers::{eventually, json_of, patient_body, spawn_pipeline};

#[tokio::test]
async fn one_create_is_one_trace_from_the_gateway_to_analytics() {
    let stack = spawn_pipeline().await;
    let clinician = stack.token_with_role("traced@example.com", Role::Clinician).await;
    let admin = stack.admin_token().await;
    // A caller's trace is continued (W3C traceparent); one of ours, to find it.
    let trace = format!("{}", uuid::Uuid::new_v4().simple());
    let created = stack
        .client
        .post(stack.url("/api/patients"))
        .bearer_auth(&clinician)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&patient_body("traced-patient@example.com"))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = json_of(created).await["id"].as_str().expect("id").to_string();
    eventually("the event in analytics", Duration::from_secs(30), || async {
        let path = format!("/api/analytics/patients/{id}/events");
        let response = stack.authed(Method::GET, &path, &admin, None).await;
        let events = json_of(response).await;
        (events.as_array().is_some_and(|e| !e.is_empty())).then_some(())
    })
    .await;

    let trace_id = TraceId::from_hex(&trace).expect("hex");
    let spans = eventually("every hop's span", Duration::from_secs(10), || async {
        let spans: Vec<_> = finished_spans().into_iter().filter(|s| s.span_context.trace_id() == trace_id).collect();
        let attr = |s: &opentelemetry_sdk::trace::SpanData, key: &str| {
            s.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
        };
        let hops = [
            spans.iter().any(|s| s.name == "request" && attr(s, "path").as_deref() == Some("/api/patients")),
            spans.iter().any(|s| s.name == "request" && attr(s, "path").as_deref() == Some("/patients")),
            spans.iter().any(|s| s.name == "outbox.deliver" && attr(s, "destination").as_deref() == Some("billing")),
            // One CreateBillingAccounts call serves a batch of creates; each item's span
            // continues its own create's trace.
            spans.iter().any(|s| s.name == "billing.open_account"),
            spans
                .iter()
                .any(|s| s.name == "outbox.deliver" && attr(s, "destination").as_deref() == Some("patient-event")),
            spans.iter().any(|s| s.name == "analytics.store_event"),
        ];
        hops.iter().all(|h| *h).then_some(spans)
    })
    .await;
    // Each hop a child of the one before it, not a trace of its own: every span but the
    // gateway's has a parent in this trace.
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_context.span_id()).collect();
    for span in spans
        .iter()
        .filter(|s| !(s.name == "request" && s.attributes.iter().any(|kv| kv.value.to_string() == "/api/patients")))
    {
        assert!(ids.contains(&span.parent_span_id), "{} has no parent in the trace", span.name);
    }
    for span in &spans {
        let logged = span.attributes.iter().find(|kv| kv.key.as_str() == "trace_id").map(|kv| kv.value.to_string());
        assert_eq!(logged.as_deref(), Some(trace.as_str()), "{} does not log its trace id", span.name);
    }
}
