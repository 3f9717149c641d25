//! The event pipeline end to end: patient create → billing account (gRPC, outbox) and
//! PatientEvent (Kafka on a real tansu broker) → analytics, through outages.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestStack, eventually, json_of, patient_body, sample, scrape, spawn_pipeline, spawn_stack};

const WAIT: Duration = Duration::from_secs(60);

async fn create(stack: &TestStack, token: &str, email: &str) -> String {
    let response = stack.create_patient(token, &patient_body(email)).await;
    assert_eq!(response.status(), StatusCode::CREATED, "create {email}");
    json_of(response).await["id"].as_str().expect("id").to_string()
}

/// The billing account of a patient, read through the gateway (a BILLING or ADMIN token).
async fn billing_account(stack: &TestStack, token: &str, patient: &str) -> Option<Value> {
    let response = stack.authed(Method::GET, &format!("/api/billing/accounts/{patient}"), token, None).await;
    match response.status() {
        StatusCode::OK => Some(json_of(response).await),
        _ => None,
    }
}

/// The events analytics stored for a patient, read through the gateway (ADMIN).
async fn analytics_events(stack: &TestStack, admin: &str, patient: &str) -> Vec<Value> {
    let response = stack.authed(Method::GET, &format!("/api/analytics/patients/{patient}/events"), admin, None).await;
    if response.status() != StatusCode::OK {
        return Vec::new();
    }
    json_of(response).await.as_array().cloned().unwrap_or_default()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["eventType"].as_str()).collect()
}

async fn billing_rows(stack: &TestStack) -> i64 {
    let pool = sqlx::PgPool::connect(&stack.billing_db_url).await.expect("billing db");
    let n = sqlx::query_scalar("SELECT count(*) FROM billing_accounts").fetch_one(&pool).await.expect("count");
    pool.close().await;
    n
}

/// Waits until every patient has exactly one PATIENT_CREATED event in analytics.
async fn wait_created_once(stack: &TestStack, admin: &str, patients: &[String]) {
    for patient in patients {
        let events = eventually("the PATIENT_CREATED event", WAIT, || async {
            let events = analytics_events(stack, admin, patient).await;
            (!events.is_empty()).then_some(events)
        })
        .await;
        assert_eq!(types(&events), ["PATIENT_CREATED"], "exactly once for {patient}");
    }
}

#[tokio::test]
async fn a_created_patient_gets_one_billing_account_and_one_analytics_event() {
    let stack = spawn_pipeline().await;
    let user = stack.user_token("flow@example.com").await;
    let admin = stack.admin_token().await;
    let patient = create(&stack, &user, "flow-patient@example.com").await;

    let account = eventually("the billing account", WAIT, || billing_account(&stack, &admin, &patient)).await;
    assert_eq!(account["status"], "ACTIVE");
    assert_eq!(account["patientId"], patient.as_str());
    assert_eq!(account["email"], "flow-patient@example.com");
    wait_created_once(&stack, &admin, std::slice::from_ref(&patient)).await;
    let summary = json_of(stack.authed(Method::GET, "/api/analytics/summary", &admin, None).await).await;
    assert_eq!(summary["eventsByType"]["PATIENT_CREATED"], 1);
    assert_eq!(summary["patientsCreatedPerDay"][0]["count"], 1);
    // Nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(analytics_events(&stack, &admin, &patient).await.len(), 1);
    assert_eq!(billing_rows(&stack).await, 1);
}

#[tokio::test]
async fn analytics_is_admin_only() {
    let stack = spawn_stack().await;
    let user = stack.user_token("nosy@example.com").await;
    let response = stack.authed(Method::GET, "/api/analytics/summary", &user, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = stack.client.get(stack.url("/api/analytics/summary")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = stack.client.get(stack.url("/api/billing/accounts/x")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn billing_outage_loses_no_account_and_duplicates_none() {
    let mut stack = spawn_stack().await;
    let user = stack.user_token("outage@example.com").await;
    let admin = stack.admin_token().await;
    stack.stop_billing().await;

    let mut patients = Vec::new();
    for i in 0..10 {
        patients.push(create(&stack, &user, &format!("b{i}@example.com")).await);
    }
    // billing-service is down: the accounts wait in the outbox.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = stack.authed(Method::GET, &format!("/api/billing/accounts/{}", patients[0]), &admin, None).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    // An operator sees them waiting, and none given up on.
    let health = json_of(stack.client.get(format!("{}/health", stack.patient)).send().await.expect("health")).await;
    assert_eq!(health["status"], "UP");
    assert_eq!(health["outbox"]["billing"], json!({"pending": 10, "dead": 0}));

    stack.start_billing().await;
    for patient in &patients {
        eventually("the billing account after the outage", WAIT, || billing_account(&stack, &admin, patient)).await;
    }
    assert_eq!(billing_rows(&stack).await, 10, "exactly one account per patient");
}

#[tokio::test]
async fn broker_outage_delays_events_but_loses_and_duplicates_none() {
    let mut stack = spawn_pipeline().await;
    let user = stack.user_token("broker@example.com").await;
    let admin = stack.admin_token().await;
    let before = create(&stack, &user, "before@example.com").await;
    wait_created_once(&stack, &admin, std::slice::from_ref(&before)).await;

    stack.broker().outage().await;
    let mut during = Vec::new();
    for i in 0..5 {
        // Creates succeed while the broker is down: the response never waits on Kafka.
        during.push(create(&stack, &user, &format!("during{i}@example.com")).await);
    }
    // The outage is real: nothing reaches analytics while the broker is away.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for patient in &during {
        assert!(analytics_events(&stack, &admin, patient).await.is_empty(), "delivered during the outage");
    }
    stack.broker().recover().await;

    wait_created_once(&stack, &admin, &during).await;
    let all: Vec<String> = std::iter::once(before).chain(during).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_created_once(&stack, &admin, &all).await;
}

#[tokio::test]
async fn analytics_restart_mid_stream_loses_and_duplicates_nothing() {
    let mut stack = spawn_pipeline().await;
    let user = stack.user_token("restart@example.com").await;
    let admin = stack.admin_token().await;
    let mut patients = Vec::new();
    for i in 0..20 {
        if i == 8 {
            stack.stop_analytics().await;
        }
        if i == 14 {
            stack.start_analytics().await;
        }
        patients.push(create(&stack, &user, &format!("r{i}@example.com")).await);
    }
    wait_created_once(&stack, &admin, &patients).await;
    let summary = json_of(stack.authed(Method::GET, "/api/analytics/summary", &admin, None).await).await;
    assert_eq!(summary["eventsByType"]["PATIENT_CREATED"], 20);
}

#[tokio::test]
async fn update_and_delete_events_arrive_in_order() {
    let stack = spawn_pipeline().await;
    let user = stack.user_token("lifecycle@example.com").await;
    let admin = stack.admin_token().await;
    let patient = create(&stack, &user, "life@example.com").await;
    let update =
        json!({"name": "Renamed", "email": "life@example.com", "address": "Elsewhere", "dateOfBirth": "1990-05-17"});
    let response = stack.authed(Method::PUT, &format!("/api/patients/{patient}"), &user, Some(&update)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let events = eventually("two events", WAIT, || async {
        let events = analytics_events(&stack, &admin, &patient).await;
        (events.len() >= 2).then_some(events)
    })
    .await;
    assert_eq!(types(&events), ["PATIENT_CREATED", "PATIENT_UPDATED"]);
    assert_eq!(events[1]["name"], "Renamed");
    let account = eventually("the billing account", WAIT, || billing_account(&stack, &admin, &patient)).await;
    assert_eq!(account["status"], "ACTIVE");

    let response = stack.authed(Method::DELETE, &format!("/api/patients/{patient}"), &admin, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let events = eventually("three events", WAIT, || async {
        let events = analytics_events(&stack, &admin, &patient).await;
        (events.len() >= 3).then_some(events)
    })
    .await;
    assert_eq!(types(&events), ["PATIENT_CREATED", "PATIENT_UPDATED", "PATIENT_DELETED"]);
    let ids: std::collections::HashSet<&str> = events.iter().filter_map(|e| e["eventId"].as_str()).collect();
    assert_eq!(ids.len(), 3, "each event has its own id");
    // Deleting a patient removes its personal data from analytics (the events keep
    // their ids, types and times) and closes its billing account.
    let events = eventually("the name and email erased", WAIT, || async {
        let events = analytics_events(&stack, &admin, &patient).await;
        events.iter().all(|e| e["name"] == "" && e["email"] == "").then_some(events)
    })
    .await;
    assert!(events.iter().all(|e| e["patientId"] == patient.as_str() && e["occurredAt"].is_string()), "{events:?}");
    let closed = eventually("the account closed", WAIT, || async {
        billing_account(&stack, &admin, &patient).await.filter(|a| a["status"] == "CLOSED")
    })
    .await;
    assert_eq!(closed["id"], account["id"]);
    assert_eq!(billing_rows(&stack).await, 1);
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dead_letter_topic_and_consumption_continues() {
    use rdkafka::{
        ClientConfig, Message,
        consumer::{Consumer, StreamConsumer},
        message::Headers,
        producer::{FutureProducer, FutureRecord},
    };
    let mut stack = spawn_pipeline().await;
    let brokers = stack.broker().brokers();
    let user = stack.user_token("poison@example.com").await;
    let admin = stack.admin_token().await;
    // Wait for the pipeline to be live (topics created, consumer assigned).
    let first = create(&stack, &user, "first@example.com").await;
    wait_created_once(&stack, &admin, std::slice::from_ref(&first)).await;

    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("test producer");
    producer
        .send(
            FutureRecord::to("patient").key("poison-key").payload(&b"\xde\xad\xbe\xef not protobuf"[..]),
            Duration::from_secs(5),
        )
        .await
        .expect("poison produced");

    let next = create(&stack, &user, "next@example.com").await;
    wait_created_once(&stack, &admin, std::slice::from_ref(&next)).await;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "dlt-inspector")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("test consumer");
    consumer.subscribe(&["patient.dlt"]).expect("subscribe");
    let message = tokio::time::timeout(WAIT, consumer.recv()).await.expect("a DLT message in time").expect("message");
    assert_eq!(message.key(), Some(&b"poison-key"[..]));
    assert_eq!(message.payload(), Some(&b"\xde\xad\xbe\xef not protobuf"[..]));
    let headers = message.headers().expect("headers");
    let error = headers.iter().find(|h| h.key == "x-error").and_then(|h| h.value).expect("x-error header");
    assert!(String::from_utf8_lossy(error).contains("PatientEvent"));
}

/// Another replica's dispatcher is delivering billing (it holds the destination's lock
/// in its open transaction): this one leaves billing's rows alone while that lasts, and
/// delivers them at once when the replica dies (its connection closes).
#[tokio::test]
async fn a_destination_another_dispatcher_holds_waits_for_it_and_not_after_it_died() {
    use patient_service::outbox::{Destination, OUTBOX_LOCKS};
    use sqlx::Connection as _;
    // With the broker: events flow, so any hold comes from billing's lag.
    let mut stack = spawn_pipeline().await;
    let user = stack.user_token("claims@example.com").await;
    let admin = stack.admin_token().await;
    stack.stop_billing().await;
    let patients = [create(&stack, &user, "held@example.com").await, create(&stack, &user, "also@example.com").await];

    // The replica takes billing's lock, as a dispatcher does, in an open transaction.
    // This service's own dispatcher may be in a pass (holding the lock) right now: the
    // replica waits for that pass to end.
    let mut replica = sqlx::PgConnection::connect(&stack.patient_db_url).await.expect("patient db");
    sqlx::query("BEGIN").execute(&mut replica).await.expect("begin");
    let lock = sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(OUTBOX_LOCKS)
        .bind(Destination::Billing.lock_key())
        .execute(&mut replica);
    tokio::time::timeout(Duration::from_secs(10), lock).await.expect("the lock within 10 s").expect("lock");

    stack.start_billing().await;
    // A create whose billing request now waits for the replica: this replica's creates
    // are held by the replica's lag (backpressure reads it from the outbox).
    let waiting = create(&stack, &user, "waiting@example.com").await;
    eventually("creates held for the other dispatcher's lag", Duration::from_secs(5), || async {
        (create_hold_seconds(&stack).await > 0.0).then_some(())
    })
    .await;
    // Passes run meanwhile (billing answers again) and leave billing to the replica.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for patient in patients.iter().chain([&waiting]) {
        assert!(billing_account(&stack, &admin, patient).await.is_none(), "delivered by two dispatchers at once");
    }

    // The replica dies mid-delivery: its claim ends with its connection.
    drop(replica);
    for patient in patients.iter().chain([&waiting]) {
        eventually("the account after the claim ended", Duration::from_secs(10), || {
            billing_account(&stack, &admin, patient)
        })
        .await;
    }
    assert_eq!(billing_rows(&stack).await, 3);
    eventually("no hold once delivered", Duration::from_secs(5), || async {
        (create_hold_seconds(&stack).await == 0.0).then_some(())
    })
    .await;
}

/// patient-service's `outbox_create_hold_seconds` now.
async fn create_hold_seconds(stack: &TestStack) -> f64 {
    sample(&scrape(stack, &stack.patient).await, "outbox_create_hold_seconds").expect("the hold gauge")
}

#[tokio::test]
async fn a_rejected_outbox_row_is_dead_at_once_and_counted() {
    let stack = spawn_stack().await;
    let user = stack.user_token("dead@example.com").await;
    let admin = stack.admin_token().await;
    let patient = create(&stack, &user, "alive@example.com").await;
    // A row billing-service can never take: not a BillingRequest.
    let pool = sqlx::PgPool::connect(&stack.patient_db_url).await.expect("patient db");
    sqlx::query("INSERT INTO outbox (destination, aggregate_id, payload) VALUES ('billing', $1, '\\xffffffff')")
        .bind(uuid::Uuid::now_v7())
        .execute(&pool)
        .await
        .expect("insert");
    let health = eventually("the dead row counted", WAIT, || async {
        let health = json_of(stack.client.get(format!("{}/health", stack.patient)).send().await.expect("health")).await;
        (health["outbox"]["billing"]["dead"] == 1).then_some(health)
    })
    .await;
    assert_eq!(health["outbox"]["billing"]["pending"], 0, "{health}");
    let (attempts, reason): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE dead_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .expect("the dead row, kept");
    assert_eq!(attempts, 1, "rejected at the first attempt");
    assert!(reason.is_some_and(|r| !r.is_empty()), "the reason is kept");
    // The real patient's account went through regardless.
    eventually("the billing account", WAIT, || billing_account(&stack, &admin, &patient)).await;
    pool.close().await;
}

/// A row that fails every time is dead at the tenth failure, with its reason; until
/// then a later row of the same patient waits behind it (one patient's events stay in
/// order), and once it is dead the later row goes.
#[tokio::test]
async fn a_failing_row_holds_its_patients_later_rows_and_is_dead_at_the_tenth_failure() {
    let stack = spawn_pipeline().await;
    let user = stack.user_token("too-large@example.com").await;
    let patient = create(&stack, &user, "fine@example.com").await;
    let admin = stack.admin_token().await;
    wait_created_once(&stack, &admin, std::slice::from_ref(&patient)).await;
    // An event the producer refuses every time, the same way, without it being an
    // outage: larger than the client's largest message (message.max.bytes, 1 MB). Then,
    // in the same transaction, a valid event of the same patient.
    let blocked = patient_service::domain::Patient {
        id: uuid::Uuid::now_v7(),
        name: "Behind".into(),
        email: "behind@example.com".into(),
        address: "1 Queue Street".into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).expect("date"),
        registered_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
    };
    let later = patient_service::outbox::event_message(&blocked, "PATIENT_UPDATED").payload;
    let pool = sqlx::PgPool::connect(&stack.patient_db_url).await.expect("patient db");
    sqlx::query(
        "INSERT INTO outbox (destination, aggregate_id, payload) \
         VALUES ('patient-event', $1, $2), ('patient-event', $1, $3)",
    )
    .bind(blocked.id)
    .bind(vec![0u8; 2_000_000])
    .bind(&later)
    .execute(&pool)
    .await
    .expect("insert");
    // While the first is retried, the second waits: after two failed passes it has
    // not been tried, and an event created meanwhile goes past both.
    let attempts = || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i32>("SELECT attempts FROM outbox WHERE aggregate_id = $1 ORDER BY id")
                .bind(blocked.id)
                .fetch_all(&pool)
                .await
                .expect("attempts")
        }
    };
    eventually("the first row failed twice", WAIT, || async {
        attempts().await.first().is_some_and(|&a| a >= 2).then_some(())
    })
    .await;
    let passing = create(&stack, &user, "passing@example.com").await;
    wait_created_once(&stack, &admin, std::slice::from_ref(&passing)).await;
    let waiting = attempts().await;
    assert_eq!(waiting.get(1), Some(&0), "the later row waits behind the failing one: {waiting:?}");
    assert!(analytics_events(&stack, &admin, &blocked.id.to_string()).await.is_empty());

    eventually("the dead row counted", WAIT, || async {
        let health = json_of(stack.client.get(format!("{}/health", stack.patient)).send().await.expect("health")).await;
        (health["outbox"]["patient-event"]["dead"] == 1).then_some(health)
    })
    .await;
    let (attempts, same, reason): (i32, i32, Option<String>) =
        sqlx::query_as("SELECT attempts, same_failures, last_error FROM outbox WHERE dead_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .expect("the dead row, kept");
    assert_eq!((attempts, same), (patient_service::outbox::DEAD_AFTER_SAME_FAILURES, 10), "dead at the tenth");
    assert!(reason.as_deref().is_some_and(|r| r.contains("too large")), "the reason is kept: {reason:?}");
    // The dead row no longer holds the patient's later event back.
    let events = eventually("the later event", WAIT, || async {
        let events = analytics_events(&stack, &admin, &blocked.id.to_string()).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(types(&events), ["PATIENT_UPDATED"], "{events:?}");
    // Nothing left pending: the dead row is counted as dead, the later one is delivered.
    let health = eventually("nothing pending", WAIT, || async {
        let health = json_of(stack.client.get(format!("{}/health", stack.patient)).send().await.expect("health")).await;
        (health["outbox"]["patient-event"]["pending"] == 0).then_some(health)
    })
    .await;
    assert_eq!(health["outbox"]["patient-event"]["dead"], 1, "{health}");
    pool.close().await;
}
