//! Real crashes: the tansu process is killed with SIGKILL while patients are being
//! created, then started again. After recovery, within a bounded time, every patient
//! that got 201 has exactly one billing account and exactly one `PATIENT_CREATED`
//! event in analytics, and nothing else is there.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pulsetrack_common::testing::Storage;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{GatewayOverrides, TestStack, eventually, json_of, patient_body, spawn_stack_with};

/// How long the system has to heal once the broker is back.
const RECOVERY: Duration = Duration::from_secs(60);
/// Concurrent clients creating patients (CI has two cores).
const CLIENTS: usize = 4;

async fn spawn_direct(storage: Storage) -> TestStack {
    spawn_stack_with(GatewayOverrides { kafka: true, direct_broker: Some(storage), ..Default::default() }).await
}

/// Clients creating patients through the gateway until stopped; every create must
/// answer 201 (the response never waits on Kafka).
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Uuid>>>,
}

impl Load {
    fn start(stack: &TestStack, token: &str, tag: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CLIENTS)
            .map(|client| {
                let (stop, http, token) = (stop.clone(), stack.client.clone(), token.to_string());
                let (url, tag) = (stack.url("/api/patients"), tag.to_string());
                tokio::spawn(async move {
                    let mut created = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let email = format!("{tag}-{client}-{}@example.com", created.len());
                        let response = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&patient_body(&email))
                            .send()
                            .await
                            .expect("create");
                        assert_eq!(response.status(), StatusCode::CREATED, "create {email}");
                        let body = json_of(response).await;
                        created.push(body["id"].as_str().and_then(|id| Uuid::parse_str(id).ok()).expect("id"));
                    }
                    created
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the clients; returns every patient that got 201.
    async fn stop(self) -> BTreeSet<Uuid> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = BTreeSet::new();
        for task in self.tasks {
            all.extend(task.await.expect("a load client failed"));
        }
        all
    }
}

/// Patient id → how many rows `sql` counts for it.
async fn counts(pool: &PgPool, sql: &'static str) -> BTreeMap<Uuid, i64> {
    sqlx::query_as::<_, (Uuid, i64)>(sql).fetch_all(pool).await.expect("count query").into_iter().collect()
}

/// patient-service's `/health`: the outbox depths.
async fn outbox(stack: &TestStack) -> Value {
    let response = stack.client.get(format!("{}/health", stack.patient)).send().await.expect("health");
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await["outbox"].clone()
}

/// Waits until every created patient has its account and its event, then checks that
/// each has exactly one of each and that there is nothing else.
async fn assert_all_delivered_once(stack: &TestStack, created: &BTreeSet<Uuid>) {
    let analytics = PgPool::connect(stack.analytics_db_url.as_deref().expect("pipeline")).await.expect("analytics db");
    let billing = PgPool::connect(&stack.billing_db_url).await.expect("billing db");
    const EVENTS: &str =
        "SELECT patient_id, count(*) FROM patient_events WHERE event_type = 'PATIENT_CREATED' GROUP BY patient_id";
    const ACCOUNTS: &str = "SELECT patient_id, count(*) FROM billing_accounts GROUP BY patient_id";
    let started = Instant::now();
    let (events, accounts) = loop {
        let (events, accounts) = (counts(&analytics, EVENTS).await, counts(&billing, ACCOUNTS).await);
        let arrived = |m: &BTreeMap<Uuid, i64>| created.iter().filter(|p| m.contains_key(p)).count();
        let (with_event, with_account) = (arrived(&events), arrived(&accounts));
        if with_event == created.len() && with_account == created.len() {
            break (events, accounts);
        }
        assert!(
            started.elapsed() < RECOVERY,
            "not healed within {RECOVERY:?}: of {} patients, {with_event} have their event and {with_account} \
             their account; outbox: {}",
            created.len(),
            outbox(stack).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("healed {:.1} s after the broker came back", started.elapsed().as_secs_f64());
    for (name, found) in [("PATIENT_CREATED event", &events), ("billing account", &accounts)] {
        let duplicated: Vec<_> = found.iter().filter(|(_, n)| **n != 1).collect();
        assert!(duplicated.is_empty(), "more than one {name}: {duplicated:?}");
        let unknown: Vec<_> = found.keys().filter(|p| !created.contains(p)).collect();
        assert!(unknown.is_empty(), "{name} of a patient that was never created: {unknown:?}");
    }
    // The outbox drained and gave up on nothing.
    let depth = eventually("an empty outbox", RECOVERY, || async {
        let depth = outbox(stack).await;
        (depth["patient-event"]["pending"] == 0 && depth["billing"]["pending"] == 0).then_some(depth)
    })
    .await;
    assert_eq!((depth["billing"]["dead"].as_i64(), depth["patient-event"]["dead"].as_i64()), (Some(0), Some(0)));
    analytics.close().await;
    billing.close().await;
}

/// Creates run for a second, tansu is SIGKILLed, creates go on for two seconds
/// against no broker, tansu starts again and creates go on for one more second.
async fn kill_broker_under_load(storage: Storage, tag: &str) {
    let mut stack = spawn_direct(storage).await;
    let token = stack.user_token(&format!("{tag}@example.com")).await;
    // The pipeline is live before the crash: a first patient went all the way through.
    let load = Load::start(&stack, &token, &format!("{tag}-warm"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let warm = load.stop().await;
    assert_all_delivered_once(&stack, &warm).await;

    let load = Load::start(&stack, &token, tag);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.broker().kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.broker().restart().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut created = load.stop().await;
    eprintln!("{} patients created around the crash", created.len());
    created.extend(warm);
    assert_all_delivered_once(&stack, &created).await;
    // Close the consumer while the broker is there: closing it waits on the broker.
    stack.stop_analytics().await;
}

#[tokio::test]
async fn broker_sigkill_with_durable_storage_loses_and_duplicates_nothing() {
    kill_broker_under_load(Storage::Sqlite, "durable").await;
}

// A broker that comes back empty (tansu on memory storage) is deployer/tests/crash.rs's:
// analytics-service then ends its process for a fresh one, which needs processes.
