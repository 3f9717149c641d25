//! Issue 15's audit trail, through the gateway: every access to patient data is
//! recorded in the trail of the service that served it, `GET /api/audit` merges the
//! trails for ADMIN and AUDITOR, and the sealed chain shows an edited row
//! (`patient-service/tests/verify_audit.rs` does every kind of tampering).

use std::time::Duration;

use base64::Engine as _;
use pulsetrack_common::identity::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestStack, eventually, json_of, patient_body, spawn_pipeline};

/// The account id (`sub`) a token was issued to.
fn subject(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice::<Value>(&json).expect("claims")["sub"].as_str().expect("sub").to_string()
}

async fn audit(stack: &TestStack, token: &str, query: &str) -> Vec<Value> {
    let response = stack.authed(Method::GET, &format!("/api/audit{query}"), token, None).await;
    assert_eq!(response.status(), StatusCode::OK, "GET /api/audit{query}");
    json_of(response).await.as_array().expect("an array of entries").clone()
}

fn actions(entries: &[Value]) -> Vec<(String, i64)> {
    entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap_or_default().to_string(), e["outcome"].as_i64().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn every_access_to_patient_data_is_recorded_with_who_what_and_how_it_ended() {
    let stack = spawn_pipeline().await;
    let clinician = stack.token_with_role("clin@example.com", Role::Clinician).await;
    let billing = stack.token_with_role("bill@example.com", Role::Billing).await;
    let auditor = stack.token_with_role("aud@example.com", Role::Auditor).await;
    let admin = stack.admin_token().await;

    let created = stack
        .client
        .post(stack.url("/api/patients"))
        .bearer_auth(&clinician)
        .header("x-request-id", "audit-create-1")
        .json(&patient_body("audited@example.com"))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = json_of(created).await["id"].as_str().expect("id").to_string();
    assert_eq!(stack.authed(Method::GET, &format!("/api/patients/{id}"), &clinician, None).await.status(), 200);
    assert_eq!(stack.authed(Method::GET, "/api/patients?size=100", &clinician, None).await.status(), 200);
    assert_eq!(stack.authed(Method::GET, "/api/patients?search=audited", &clinician, None).await.status(), 200);
    let mut body = patient_body("audited@example.com");
    body["name"] = "Ada Audited".into();
    assert_eq!(stack.authed(Method::PUT, &format!("/api/patients/{id}"), &clinician, Some(&body)).await.status(), 200);
    // The billing account arrives over gRPC through the outbox.
    let account = format!("/api/billing/accounts/{id}");
    eventually("the billing account", Duration::from_secs(20), || async {
        (stack.authed(Method::GET, &account, &billing, None).await.status() == StatusCode::OK).then_some(())
    })
    .await;
    let events = format!("/api/analytics/patients/{id}/events");
    assert_eq!(stack.authed(Method::GET, &events, &admin, None).await.status(), 200);
    // A refused access is recorded too (the gateway lets an ADMIN through; the service
    // answers 404 for an unknown patient).
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(stack.authed(Method::GET, &format!("/api/patients/{unknown}"), &admin, None).await.status(), 404);

    let entries = audit(&stack, &auditor, &format!("?patientId={id}&limit=1000")).await;
    let found = actions(&entries);
    for expected in [
        ("PATIENT_CREATE", 201),
        ("PATIENT_READ", 200),
        ("PATIENT_LIST", 200),
        ("PATIENT_SEARCH", 200),
        ("PATIENT_UPDATE", 200),
        ("BILLING_READ", 200),
        ("ANALYTICS_EVENTS_READ", 200),
    ] {
        assert!(found.contains(&(expected.0.to_string(), expected.1)), "{expected:?} missing from {found:?}");
    }
    // Newest first, across the three trails.
    let times: Vec<&str> = entries.iter().filter_map(|e| e["at"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first: {times:?}");
    let services: std::collections::BTreeSet<&str> = entries.iter().filter_map(|e| e["service"].as_str()).collect();
    assert_eq!(services.into_iter().collect::<Vec<_>>(), ["analytics-service", "billing-service", "patient-service"]);

    let create = entries.iter().find(|e| e["action"] == "PATIENT_CREATE").expect("the create");
    assert_eq!(create["actorId"], subject(&clinician).as_str());
    assert_eq!(create["actorRole"], "CLINICIAN");
    assert_eq!(create["patientIds"], serde_json::json!([id]));
    assert_eq!(create["requestId"], "audit-create-1");
    assert_eq!(create["clientAddr"], "127.0.0.1");
    assert_eq!(create["hash"].as_str().map(str::len), Some(64));
    let read = entries.iter().find(|e| e["action"] == "BILLING_READ" && e["outcome"] == 200).expect("billing read");
    assert_eq!(
        (read["actorId"].as_str(), read["actorRole"].as_str()),
        (Some(subject(&billing).as_str()), Some("BILLING"))
    );

    let not_found = audit(&stack, &auditor, &format!("?patientId={unknown}")).await;
    assert_eq!(actions(&not_found), [("PATIENT_READ".to_string(), 404)]);
    assert_eq!(not_found[0]["actorRole"], "ADMIN");

    // By actor, and by time.
    let by_billing = audit(&stack, &admin, &format!("?actor={}", subject(&billing))).await;
    assert!(!by_billing.is_empty() && by_billing.iter().all(|e| e["actorRole"] == "BILLING"), "{by_billing:?}");
    let future = audit(&stack, &auditor, "?from=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty(), "{future:?}");
    let past = audit(&stack, &auditor, &format!("?patientId={id}&to=2000-01-01T00:00:00Z")).await;
    assert!(past.is_empty(), "{past:?}");
    // Reading the trail is in the trail.
    let reads = audit(&stack, &admin, "?limit=1000").await;
    assert!(reads.iter().any(|e| e["action"] == "AUDIT_READ" && e["actorRole"] == "AUDITOR"));
}

#[tokio::test]
async fn only_admin_and_auditor_read_the_trail_and_bad_queries_name_the_field() {
    let stack = spawn_pipeline().await;
    let auditor = stack.token_with_role("aud2@example.com", Role::Auditor).await;
    for role in [Role::User, Role::Clinician, Role::Billing] {
        let token = stack.token_with_role(&format!("{}-a@example.com", role.as_str().to_lowercase()), role).await;
        for path in ["/api/audit", "/api/audit/verify"] {
            assert_eq!(stack.authed(Method::GET, path, &token, None).await.status(), 403, "{role} {path}");
        }
    }
    // An AUDITOR reads the trail but no patient data.
    assert_eq!(stack.authed(Method::GET, "/api/patients", &auditor, None).await.status(), 403);
    assert_eq!(stack.client.get(stack.url("/api/audit")).send().await.expect("anonymous").status(), 401);

    let response = stack.authed(Method::GET, "/api/audit?patientId=x&from=yesterday&limit=0", &auditor, None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_of(response).await;
    let fields: Vec<&str> =
        body["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, ["patientId", "from", "limit"]);
}

#[tokio::test]
async fn the_chain_is_intact_and_an_edited_row_is_found() {
    let stack = spawn_pipeline().await;
    let clinician = stack.token_with_role("clin3@example.com", Role::Clinician).await;
    let auditor = stack.token_with_role("aud3@example.com", Role::Auditor).await;
    for n in 0..5 {
        let created = stack.create_patient(&clinician, &patient_body(&format!("chain{n}@example.com"))).await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let verify = || async {
        let response = stack.authed(Method::GET, "/api/audit/verify", &auditor, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        json_of(response).await
    };
    let report = verify().await;
    assert_eq!(report["intact"], true, "{report}");
    let patient_trail = |report: &Value| {
        report["trails"].as_array().expect("trails").iter().find(|t| t["service"] == "patient-service").cloned()
    };
    let trail = patient_trail(&report).expect("patient-service's trail");
    assert!(trail["entries"].as_i64().expect("entries") >= 5, "{trail}");
    assert_eq!(trail["head"].as_str().map(str::len), Some(64));

    let mut db = PgConnection::connect(&stack.patient_db_url).await.expect("patient db");
    // Append-only for everyone, the owner included: the triggers refuse.
    for statement in ["UPDATE audit_log SET actor_id = 'x' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 2"] {
        let error = sqlx::query(statement).execute(&mut db).await.expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    // Someone who can bypass triggers (a superuser) edits an entry: the chain shows it.
    sqlx::query("SET session_replication_role = replica").execute(&mut db).await.expect("replica role");
    sqlx::query("UPDATE audit_log SET actor_role = 'ADMIN' WHERE seq = 2").execute(&mut db).await.expect("tamper");
    let report = verify().await;
    assert_eq!(report["intact"], false, "{report}");
    let trail = patient_trail(&report).expect("patient-service's trail");
    assert_eq!((trail["intact"].as_bool(), trail["brokenAt"].as_i64()), (Some(false), Some(2)), "{trail}");
    assert_eq!(trail["breach"], "entry-forged", "{trail}");
    // A removed entry is found as well.
    sqlx::query("UPDATE audit_log SET actor_role = 'CLINICIAN' WHERE seq = 2").execute(&mut db).await.expect("undo");
    sqlx::query("DELETE FROM audit_log WHERE seq = 3").execute(&mut db).await.expect("remove");
    let trail = patient_trail(&verify().await).expect("trail");
    assert_eq!(trail["brokenAt"].as_i64(), Some(3), "{trail}");
    assert_eq!(trail["breach"], "rewritten", "{trail}");
    assert!(trail["reason"].as_str().is_some_and(|r| r.contains("missing")), "{trail}");
}

/// Each trail's index of patient ids takes an entry straight into the index: with GIN's
/// pending list, the INSERT that found the list full merged all of it, and every request
/// waiting on that batch of entries waited for the merge (over 128 ms under load).
#[tokio::test]
async fn every_trail_indexes_patient_ids_without_a_pending_list() {
    let stack = spawn_pipeline().await;
    let trails = [
        ("patient-service", stack.patient_db_url.as_str()),
        ("billing-service", stack.billing_db_url.as_str()),
        ("analytics-service", stack.analytics_db_url.as_deref().expect("the pipeline has analytics")),
    ];
    for (service, url) in trails {
        let mut db = PgConnection::connect(url).await.expect(service);
        let options: Vec<String> = sqlx::query_scalar(
            "SELECT unnest(reloptions) FROM pg_class WHERE relname = 'audit_log_patients' AND relkind = 'i'",
        )
        .fetch_all(&mut db)
        .await
        .expect(service);
        assert!(options.iter().any(|o| o == "fastupdate=off"), "{service}: audit_log_patients has {options:?}");
    }
}
