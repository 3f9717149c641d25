//! analytics-service against a real tansu broker: readiness that follows the broker
//! and the consumer group, and the Kafka clients over TLS (a test CA, a TLS terminator
//! in front of the broker, as MSK's TLS listener is).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use analytics_service::{Application, config::Config};
use auth_service::testing::TestAuth;
use prost::Message as _;
use pulsetrack_common::{
    config::ListenConfig,
    db::DatabaseConfig,
    kafka::{KafkaConfig, PATIENT_TOPIC},
    testing::{Storage, TestBroker, TestCa, TestDatabase, init_test_logs},
};
use pulsetrack_proto::{event_type, patient_events::PatientEvent};
use rdkafka::{
    ClientContext, Offset, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext},
    error::KafkaError,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long joining, healing or an event's way may take before a test fails.
const LIMIT: Duration = Duration::from_secs(60);

struct Analytics {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The real auth-service whose tokens the routes verify.
    auth: TestAuth,
    _db: TestDatabase,
}

impl Analytics {
    async fn start(kafka: KafkaConfig) -> Self {
        Self::start_in_group(kafka, &format!("analytics-{}", Uuid::new_v4().simple())).await
    }

    async fn start_in_group(kafka: KafkaConfig, group_id: &str) -> Self {
        Self::start_in_group_with(kafka, group_id, false).await
    }

    /// With `reset_requested`: as after a predecessor saw the topic vanish.
    async fn start_in_group_with(kafka: KafkaConfig, group_id: &str, reset_requested: bool) -> Self {
        init_test_logs();
        let db = TestDatabase::create("analytics").await;
        let auth = TestAuth::start().await;
        let config = Config {
            listen: ListenConfig::new("127.0.0.1", 0),
            database: DatabaseConfig::with_url(db.url()),
            audit: pulsetrack_common::audit::AuditConfig::for_tests(),
            kafka,
            token_check: auth.token_check(),
            group_id: group_id.into(),
        };
        let app = Application::build(config).await.expect("analytics-service starts");
        if reset_requested {
            let pool = sqlx::PgPool::connect(db.url()).await.expect("analytics db");
            sqlx::query("INSERT INTO consumer_resets (topic) VALUES ($1)")
                .bind(PATIENT_TOPIC)
                .execute(&pool)
                .await
                .expect("request a reset");
            pool.close().await;
        }
        let url = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self { url, stop, task, auth, _db: db }
    }

    /// `/ready`'s status code and its checks.
    async fn ready(&self) -> (u16, Value) {
        let response = reqwest::get(format!("{}/ready", self.url)).await.expect("/ready answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        (status, body["checks"].clone())
    }

    /// Polls `/ready` until it is `status`; returns the checks then.
    async fn until_ready_is(&self, status: u16) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            let (now, checks) = self.ready().await;
            if now == status {
                return checks;
            }
            assert!(Instant::now() < deadline, "/ready did not become {status} within {LIMIT:?}: {checks}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(30), self.task).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "analytics-service stops cleanly: {stopped:?}");
    }
}

fn event(patient_id: Uuid) -> Vec<u8> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    PatientEvent {
        patient_id: patient_id.to_string(),
        name: "Ada".into(),
        email: "ada@example.com".into(),
        event_type: event_type::PATIENT_CREATED.into(),
        event_id: Uuid::new_v4().to_string(),
        occurred_at: Some(prost_types::Timestamp { seconds: now.as_secs() as i64, nanos: 0 }),
    }
    .encode_to_vec()
}

/// `(events stored, reset requests left)` in `analytics`' database.
async fn stored_and_requests(analytics: &Analytics) -> (i64, i64) {
    let pool = sqlx::PgPool::connect(analytics._db.url()).await.expect("analytics db");
    let counts = sqlx::query_as("SELECT (SELECT count(*) FROM patient_events), (SELECT count(*) FROM consumer_resets)")
        .fetch_one(&pool)
        .await
        .expect("counts");
    pool.close().await;
    counts
}

/// A group whose committed offsets are the end of every partition: as a predecessor
/// leaves them when its offsets belong to a topic that vanished and came back shorter.
async fn group_at_the_end(kafka: &KafkaConfig) -> String {
    let group = format!("analytics-{}", Uuid::new_v4().simple());
    let committer: BaseConsumer = kafka.client_config().set("group.id", &group).create().expect("consumer");
    tokio::task::spawn_blocking(move || {
        let metadata = committer.fetch_metadata(Some(PATIENT_TOPIC), LIMIT).expect("metadata");
        let mut offsets = TopicPartitionList::new();
        for partition in metadata.topics()[0].partitions() {
            let (_, high) = committer.fetch_watermarks(PATIENT_TOPIC, partition.id(), LIMIT).expect("watermarks");
            offsets.add_partition_offset(PATIENT_TOPIC, partition.id(), Offset::Offset(high)).expect("offset");
        }
        committer.commit(&offsets, CommitMode::Sync).expect("commit");
    })
    .await
    .expect("commit task");
    group
}

/// A consumer started after its predecessor asked for a reset (`consumer_resets`)
/// reads the topic from its beginning, not from the group's committed offsets, and then
/// deletes the request. Without the request the same offsets skip every event.
#[tokio::test]
async fn a_requested_reset_reads_the_topic_from_its_beginning() {
    let broker = TestBroker::start_direct(Storage::Memory).await;
    let kafka = KafkaConfig::local(broker.brokers());
    kafka.ensure_topics(&[PATIENT_TOPIC]).await.expect("topic");
    let producer: FutureProducer = kafka.client_config().create().expect("producer");
    for _ in 0..6 {
        let (key, payload) = (Uuid::new_v4().to_string(), event(Uuid::new_v4()));
        producer.send(FutureRecord::to(PATIENT_TOPIC).key(&key).payload(&payload), LIMIT).await.expect("produce");
    }

    // Without a request: the committed offsets are trusted, nothing is read.
    let trusting = Analytics::start_in_group(kafka.clone(), &group_at_the_end(&kafka).await).await;
    trusting.until_ready_is(200).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stored_and_requests(&trusting).await, (0, 0), "committed offsets skip the events");
    trusting.stop().await;

    let reset = Analytics::start_in_group_with(kafka.clone(), &group_at_the_end(&kafka).await, true).await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let counts = stored_and_requests(&reset).await;
        if counts == (6, 0) {
            break;
        }
        assert!(Instant::now() < deadline, "(events stored, requests left) = {counts:?}, not (6, 0)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reset.stop().await;
}

#[tokio::test]
async fn ready_only_while_the_broker_answers_and_the_group_is_joined() {
    let mut broker = TestBroker::start().await;
    broker.outage().await;
    let analytics = Analytics::start(KafkaConfig::local(broker.brokers())).await;

    // No broker: not ready, however long it is asked.
    for _ in 0..5 {
        let (status, checks) = analytics.ready().await;
        assert_eq!(status, 503, "{checks}");
        assert_eq!(checks["kafka"], "DOWN", "{checks}");
        assert_eq!(checks["consumer-group"], "DOWN", "{checks}");
        assert_eq!(checks["postgres"], "UP", "{checks}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    broker.recover().await;
    let checks = analytics.until_ready_is(200).await;
    assert_eq!((&checks["kafka"], &checks["consumer-group"]), (&"UP".into(), &"UP".into()), "{checks}");

    // The broker goes away after the group was joined: not ready again, then ready.
    broker.outage().await;
    let checks = analytics.until_ready_is(503).await;
    assert_eq!(checks["kafka"], "DOWN", "{checks}");
    broker.recover().await;
    analytics.until_ready_is(200).await;
    analytics.stop().await;
}

#[tokio::test]
async fn not_ready_while_the_broker_answers_but_the_group_is_not_joined() {
    let broker = TestBroker::start().await;
    let kafka = KafkaConfig::local(broker.brokers());
    kafka.ensure_topics(&[PATIENT_TOPIC]).await.expect("topic");
    // A member of the group that is never polled after it joined: it cannot take part
    // in the rebalance a new member starts, so the group cannot complete it until this
    // member leaves.
    let group = format!("analytics-{}", Uuid::new_v4().simple());
    let blocker: BaseConsumer = kafka
        .client_config()
        .set("group.id", &group)
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "300000")
        .create()
        .expect("blocker");
    blocker.subscribe(&[PATIENT_TOPIC]).expect("subscribe");
    let blocker = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + LIMIT;
        while blocker.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
            assert!(Instant::now() < deadline, "the blocker did not join");
            let _ = blocker.poll(Duration::from_millis(100));
        }
        blocker
    })
    .await
    .expect("join");

    let analytics = Analytics::start_in_group(kafka, &group).await;
    // The broker answers, the consumer exists, but it has no assignment: not ready.
    let deadline = Instant::now() + LIMIT;
    let mut seen = 0;
    while seen < 10 {
        let (status, checks) = analytics.ready().await;
        assert_eq!(status, 503, "ready before joining its group: {checks}");
        assert_eq!(checks["consumer-group"], "DOWN", "{checks}");
        if checks["kafka"] == "UP" {
            seen += 1;
        }
        assert!(Instant::now() < deadline, "the broker never answered: {checks}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The other member leaves: the rebalance completes and analytics is ready.
    tokio::task::spawn_blocking(move || drop(blocker)).await.expect("close");
    let checks = analytics.until_ready_is(200).await;
    assert_eq!(checks["consumer-group"], "UP", "{checks}");
    analytics.stop().await;
}

/// Records what librdkafka logs and reports as errors (a failed TLS handshake among them).
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if let Ok(mut errors) = self.0.lock() {
            errors.push(format!("{level:?} {fac}: {message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut errors) = self.0.lock() {
            errors.push(format!("{error}: {reason}"));
        }
    }
}

impl ConsumerContext for Errors {}

impl Errors {
    fn text(&self) -> String {
        self.0.lock().map(|e| e.join("\n")).unwrap_or_default()
    }
}

/// Asks for metadata until it gets an answer or `limit` passes; returns whether the
/// broker answered and what the client reported.
async fn metadata(kafka: &KafkaConfig, limit: Duration) -> (bool, String) {
    let errors = Errors::default();
    let client: BaseConsumer<Errors> = kafka.client_config().create_with_context(errors.clone()).expect("client");
    let answered = tokio::task::spawn_blocking(move || {
        let answered = client.fetch_metadata(None, limit).is_ok();
        // Logs and errors reach the context when the client's queue is polled.
        for _ in 0..10 {
            let _ = client.poll(Duration::from_millis(50));
        }
        answered
    })
    .await
    .expect("join");
    (answered, errors.text())
}

#[tokio::test]
async fn events_flow_over_tls_and_a_wrong_ca_or_plaintext_is_refused() {
    let ca = TestCa::new();
    let broker = TestBroker::start_tls(&ca).await;
    let dir = std::env::temp_dir();
    let kafka = KafkaConfig::local(broker.brokers()).with_tls(Some(ca.write_ca(&dir)));
    let tls = broker.tls().expect("a TLS broker");

    let analytics = Analytics::start(kafka.clone()).await;
    analytics.until_ready_is(200).await;
    let producer: FutureProducer = kafka.client_config().set("acks", "all").create().expect("producer");
    let patient = Uuid::new_v4();
    let payload = event(patient);
    let key = patient.to_string();
    producer
        .send(FutureRecord::to(PATIENT_TOPIC).key(&key).payload(&payload), Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("produced over TLS");
    let deadline = Instant::now() + LIMIT;
    loop {
        let url = format!("{}/analytics/patients/{patient}/events", analytics.url);
        let events: Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(analytics.auth.token(pulsetrack_common::identity::Role::Admin).await)
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("json");
        if events.as_array().is_some_and(|e| e.len() == 1) {
            assert_eq!(events[0]["eventType"], "PATIENT_CREATED");
            break;
        }
        assert!(Instant::now() < deadline, "the event did not reach analytics over TLS: {events}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(producer);
    analytics.stop().await;
    assert!(tls.handshakes() > 0, "the clients spoke TLS to the terminator");

    // A CA that did not sign the broker's certificate: the handshake is refused.
    let before = tls.handshakes();
    let wrong = KafkaConfig::local(broker.brokers()).with_tls(Some(TestCa::new().write_ca(&dir)));
    let (answered, errors) = metadata(&wrong, Duration::from_secs(5)).await;
    assert!(!answered, "a broker with a certificate from another CA must not be trusted");
    assert!(errors.contains("certificate verify failed"), "the client says why: {errors}");
    assert_eq!(tls.handshakes(), before, "no TLS session was established");

    // Plain TCP to the TLS port gets no answer either.
    let (answered, _) = metadata(&KafkaConfig::local(broker.brokers()), Duration::from_secs(3)).await;
    assert!(!answered, "a plaintext client cannot talk to the TLS listener");

    // And the right CA still works (the refusals were not a broken broker).
    let (answered, errors) = metadata(&kafka, Duration::from_secs(10)).await;
    assert!(answered, "the right CA is trusted: {errors}");
}
