//! Transactional outbox. A patient change and the work that must follow it (the
//! billing account request and the `PatientEvent`) commit in one transaction; the
//! [`Dispatcher`] then delivers that work, retrying with backoff until the receiver
//! has it. Nothing is lost while billing-service or the broker is down, and since
//! billing is idempotent per patient and every event carries a unique id, a delivery
//! repeated after a crash creates no duplicate downstream.

use std::{
    future::Future,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use futures_util::future::join_all;
use prost::Message;
use pulsetrack_common::{
    kafka::{KafkaConfig, PATIENT_TOPIC, is_fatal, is_transient, is_unknown_topic},
    trace_context,
};
use pulsetrack_proto::{
    billing::{
        BillingBatchItem, BillingBatchRequest, BillingRequest, billing_batch_result::Outcome,
        billing_service_client::BillingServiceClient,
    },
    patient_events::PatientEvent,
};
use rdkafka::{
    error::KafkaResult,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tonic::{
    Code,
    metadata::{MetadataKey, MetadataValue},
    transport::Channel,
};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{config::OutboxConfig, domain::Patient};

/// The most rows one pass delivers. Smaller passes report the lag to [`Backpressure`]
/// sooner: at 100 clients, 500 kept the create -> analytics delay at p99 1.06 s where
/// 1,000 gave 1.42 s (bench/ISSUE17.md).
const BATCH: i64 = 500;

/// The first key of the outbox's advisory locks ("PTOX"), so that they cannot collide
/// with another use of advisory locks in the database.
pub const OUTBOX_LOCKS: i32 = 0x5054_4f58;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// billing-service's CreateBillingAccounts: one call for a claimed batch.
    Billing,
    /// billing-service's CloseBillingAccount (a deleted patient). Its own stream: a
    /// close commutes with the create, so the two need no order between them.
    BillingClose,
    /// Kafka topic `patient`.
    PatientEvent,
}

impl Destination {
    pub const ALL: [Destination; 3] = [Destination::Billing, Destination::BillingClose, Destination::PatientEvent];

    /// The second key of the destination's advisory lock (the first is [`OUTBOX_LOCKS`]):
    /// the dispatcher that holds it is the one delivering the destination.
    pub fn lock_key(self) -> i32 {
        match self {
            Destination::Billing => 1,
            Destination::BillingClose => 2,
            Destination::PatientEvent => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Billing => "billing",
            Destination::BillingClose => "billing-close",
            Destination::PatientEvent => "patient-event",
        }
    }
}

/// Wakes the dispatcher after a commit, so delivery does not wait for the next poll.
#[derive(Clone, Default)]
pub struct Wakeup {
    billing: Arc<Notify>,
    billing_close: Arc<Notify>,
    events: Arc<Notify>,
}

impl Wakeup {
    pub fn wake(&self) {
        for destination in Destination::ALL {
            self.of(destination).notify_one();
        }
    }

    fn of(&self, destination: Destination) -> &Notify {
        match destination {
            Destination::Billing => &self.billing,
            Destination::BillingClose => &self.billing_close,
            Destination::PatientEvent => &self.events,
        }
    }
}

/// How far behind the dispatcher may fall (the age of the oldest row a pass claimed on
/// its first attempt) before creates are slowed down.
pub const LAG_LIMIT: Duration = Duration::from_millis(100);
/// How long a create is held per second of lag above [`LAG_LIMIT`].
pub const HOLD_PER_LAG: f64 = 0.5;
/// The longest a create is held: past it the create goes ahead anyway (the outbox keeps
/// what the pipeline cannot take yet; it only delays).
pub const MAX_HOLD: Duration = Duration::from_secs(1);

/// Backpressure from the dispatcher to creates. Creates cost far less than delivering
/// their billing request and event, so under sustained load they would outrun the
/// pipeline and the outbox would only grow (seen: 89,000 events waiting, the oldest
/// 38 s, after 60 s at 100 clients). Each pass reports how old the oldest row it claimed
/// on its first attempt was; above [`LAG_LIMIT`] every create is held in proportion to
/// the excess ([`HOLD_PER_LAG`], at most [`MAX_HOLD`]). Closed-loop clients then send
/// less, and intake settles where the pipeline keeps up, with the lag a little above
/// the limit and the same small hold for every create (a gate that stops all creates
/// until the lag is gone makes a sawtooth instead: some creates wait a second). Retried
/// rows do not count: an outage delays deliveries, not creates.
#[derive(Clone, Default)]
pub struct Backpressure {
    /// Per destination (`Destination::ALL` order): the last pass's lag, in microseconds.
    lag_us: Arc<[AtomicU64; Destination::ALL.len()]>,
}

impl Backpressure {
    fn record(&self, destination: Destination, lag: Duration) {
        let index = Destination::ALL.iter().position(|d| *d == destination).unwrap_or(0);
        self.lag_us[index].store(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// How long a create is held now: in proportion to the largest lag above [`LAG_LIMIT`].
    pub fn hold(&self) -> Duration {
        let lag = self.lag_us.iter().map(|lag| lag.load(Ordering::Relaxed)).max().unwrap_or(0);
        let excess = Duration::from_micros(lag).saturating_sub(LAG_LIMIT);
        excess.mul_f64(HOLD_PER_LAG).min(MAX_HOLD)
    }

    /// Holds the caller for [`Backpressure::hold`]; tells how long.
    pub async fn admit(&self) -> Duration {
        let hold = self.hold();
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        hold
    }
}

/// One outbox row to be written with a patient change.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub destination: Destination,
    pub payload: Vec<u8>,
}

/// The billing account request for a new patient.
pub fn billing_message(patient: &Patient) -> OutboxMessage {
    OutboxMessage { destination: Destination::Billing, payload: billing_request(patient).encode_to_vec() }
}

/// The request that closes a deleted patient's billing account.
pub fn billing_close_message(patient: &Patient) -> OutboxMessage {
    OutboxMessage { destination: Destination::BillingClose, payload: billing_request(patient).encode_to_vec() }
}

fn billing_request(patient: &Patient) -> BillingRequest {
    BillingRequest { patient_id: patient.id.to_string(), name: patient.name.clone(), email: patient.email.clone() }
}

/// The `PATIENT_DELETED` event: the patient's id only, no personal data (analytics then
/// removes the name and email from the patient's earlier events).
pub fn deleted_event_message(patient: &Patient) -> OutboxMessage {
    let anonymous = Patient { name: String::new(), email: String::new(), ..patient.clone() };
    event_message(&anonymous, pulsetrack_proto::event_type::PATIENT_DELETED)
}

/// A `PatientEvent` of `event_type` with a fresh event id.
pub fn event_message(patient: &Patient, event_type: &str) -> OutboxMessage {
    let now = Utc::now();
    let event = PatientEvent {
        patient_id: patient.id.to_string(),
        name: patient.name.clone(),
        email: patient.email.clone(),
        event_type: event_type.to_string(),
        event_id: Uuid::now_v7().to_string(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
    };
    OutboxMessage { destination: Destination::PatientEvent, payload: event.encode_to_vec() }
}

/// Queues `messages` about `patient` (same transaction as the change), in order.
pub async fn enqueue(conn: &mut PgConnection, patient: &Patient, messages: &[OutboxMessage]) -> sqlx::Result<()> {
    let destinations: Vec<&str> = messages.iter().map(|m| m.destination.as_str()).collect();
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
    sqlx::query(
        "INSERT INTO outbox (destination, aggregate_id, payload, trace_parent) \
         SELECT m.destination, $1, m.payload, $4 \
         FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS m(destination, payload, n) ORDER BY m.n",
    )
    .bind(patient.id)
    .bind(&destinations)
    .bind(&payloads)
    .bind(pulsetrack_common::trace_context::current_traceparent())
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    aggregate_id: Uuid,
    payload: Vec<u8>,
    attempts: i32,
    /// The writing request's trace, continued by the delivery.
    trace_parent: Option<String>,
    /// How long the row had waited when this pass claimed it.
    age_s: f64,
}

impl Row {
    /// The span a delivery of this row runs in: a child of the request that wrote it.
    fn delivery_span(&self, destination: Destination) -> tracing::Span {
        let span = tracing::info_span!("outbox.deliver", destination = destination.as_str(),
            patient_id = %self.aggregate_id, outbox_id = self.id, trace_id = tracing::field::Empty);
        trace_context::adopt(&span, trace_context::from_traceparent(self.trace_parent.as_deref()));
        span
    }
}

/// Rows whose deliveries failed this many times in a row with the same error, none of
/// them plainly transient, are marked dead (kept, with the reason, and counted).
pub const DEAD_AFTER_SAME_FAILURES: i32 = 10;

/// Why one delivery failed.
#[derive(Debug)]
enum Failure {
    /// The receiver is unreachable, timing out or unavailable: retried for as long as
    /// it takes (a long outage delays, never loses).
    Transient(String),
    /// The broker does not know the topic (a fresh in-memory broker): create it, retry.
    MissingTopic(String),
    /// The producer went fatal: replace it, retry (transient).
    FatalProducer(String),
    /// Another failure: retried, and dead after [`DEAD_AFTER_SAME_FAILURES`] in a row.
    Retry(String),
    /// The receiver rejected the message: it never will take it; dead at once.
    Reject(String),
}

impl Failure {
    fn reason(&self) -> &str {
        match self {
            Failure::Transient(r)
            | Failure::MissingTopic(r)
            | Failure::FatalProducer(r)
            | Failure::Retry(r)
            | Failure::Reject(r) => r,
        }
    }

    /// Whether this failure counts towards marking the row dead.
    fn counts(&self) -> bool {
        matches!(self, Failure::Retry(_))
    }
}

/// Outbox depth of one destination, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    /// Rows still to be delivered (waiting, claimed or backing off).
    pub pending: i64,
    /// Rows given up on (rejected, or failing the same way too often).
    pub dead: i64,
}

/// `{"billing": {"pending": n, "dead": n}, "patient-event": {...}}`.
pub async fn depths(pool: &PgPool) -> sqlx::Result<serde_json::Value> {
    let map: serde_json::Map<String, serde_json::Value> = gauges(pool)
        .await?
        .into_iter()
        .map(|g| (g.destination, serde_json::json!(Depth { pending: g.pending, dead: g.dead })))
        .collect();
    Ok(serde_json::Value::Object(map))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct DestinationLabel {
    destination: &'static str,
}

/// The outbox's gauges, read at each scrape: `outbox_pending`, `outbox_dead` and
/// `outbox_oldest_pending_age_seconds`, by destination, and `outbox_create_hold_seconds`.
pub fn register_metrics(metrics: &pulsetrack_common::metrics::Metrics, pool: PgPool, backpressure: Backpressure) {
    use prometheus_client::metrics::{family::Family, gauge::Gauge};
    type AgeGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
    let hold = AgeGauge::default();
    metrics.register(
        "outbox_create_hold_seconds",
        "How long each create is held now so that the outbox dispatcher keeps up (backpressure)",
        hold.clone(),
    );
    let pending = Family::<DestinationLabel, Gauge>::default();
    let dead = Family::<DestinationLabel, Gauge>::default();
    let oldest = Family::<DestinationLabel, AgeGauge>::default();
    metrics.register("outbox_pending", "Outbox rows still to be delivered", pending.clone());
    metrics.register("outbox_dead", "Outbox rows given up on (kept with their reason)", dead.clone());
    metrics.register(
        "outbox_oldest_pending_age_seconds",
        "How long the oldest row still to be delivered has waited",
        oldest.clone(),
    );
    metrics.on_scrape(move || {
        let (pool, pending, dead, oldest) = (pool.clone(), pending.clone(), dead.clone(), oldest.clone());
        hold.set(backpressure.hold().as_secs_f64());
        async move {
            match gauges(&pool).await {
                Ok(rows) => {
                    for row in rows {
                        let Some(destination) = Destination::ALL.into_iter().find(|d| d.as_str() == row.destination)
                        else {
                            continue;
                        };
                        let label = DestinationLabel { destination: destination.as_str() };
                        pending.get_or_create(&label).set(row.pending);
                        dead.get_or_create(&label).set(row.dead);
                        oldest.get_or_create(&label).set(row.oldest_pending_age_s);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the outbox for the metrics"),
            }
        }
    });
}

/// How often the outbox's gauges go to CloudWatch.
const CLOUDWATCH_EVERY: Duration = Duration::from_secs(60);

/// One destination's outbox gauges.
#[derive(sqlx::FromRow)]
struct Gauges {
    destination: String,
    pending: i64,
    dead: i64,
    oldest_pending_age_s: f64,
}

/// The outbox's backlog, dead rows and oldest pending age per destination, now (for
/// `/metrics` and CloudWatch).
async fn gauges(pool: &PgPool) -> sqlx::Result<Vec<Gauges>> {
    sqlx::query_as(
        "SELECT d.destination, count(o.id) FILTER (WHERE o.dead_at IS NULL) AS pending, \
         count(o.id) FILTER (WHERE o.dead_at IS NOT NULL) AS dead, \
         coalesce(extract(epoch FROM now() - min(o.created_at) FILTER (WHERE o.dead_at IS NULL)), 0)::float8 \
             AS oldest_pending_age_s \
         FROM unnest($1::text[]) AS d(destination) LEFT JOIN outbox o ON o.destination = d.destination \
         GROUP BY d.destination ORDER BY d.destination",
    )
    .bind(Destination::ALL.map(Destination::as_str))
    .fetch_all(pool)
    .await
}

/// One CloudWatch embedded-metric-format document: the awslogs driver ships stdout to
/// CloudWatch Logs, which turns such a line into metrics (`namespace`,
/// `OutboxOldestPendingAgeSeconds` and `OutboxPending`, by `Destination`).
pub fn emf_line(namespace: &str, destination: &str, pending: i64, oldest_age_s: f64, at_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Destination"]],
                "Metrics": [
                    {"Name": "OutboxOldestPendingAgeSeconds", "Unit": "Seconds"},
                    {"Name": "OutboxPending", "Unit": "Count"}
                ]
            }]
        },
        "Destination": destination,
        "OutboxOldestPendingAgeSeconds": oldest_age_s,
        "OutboxPending": pending
    })
    .to_string()
}

/// Publishes the outbox's gauges to CloudWatch every minute, as embedded-metric-format
/// lines on stdout (the stack alarms when the oldest pending row gets old). A minute
/// the database does not answer publishes nothing: the alarm treats missing data as
/// breaching.
pub fn publish_to_cloudwatch(pool: PgPool, namespace: String) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CLOUDWATCH_EVERY);
        loop {
            every.tick().await;
            match gauges(&pool).await {
                Ok(rows) => {
                    let at_ms = Utc::now().timestamp_millis();
                    for row in rows {
                        println!(
                            "{}",
                            emf_line(&namespace, &row.destination, row.pending, row.oldest_pending_age_s, at_ms)
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the outbox for CloudWatch"),
            }
        }
    });
}

/// A producer that delivers nothing for this long while it has events to send (the
/// broker answering again, say) is replaced by a new one.
const PRODUCER_STALLED_AFTER: Duration = Duration::from_secs(15);

/// The Kafka producer, replaced by a new one when it went fatal or stalled: librdkafka
/// never recovers a fatal producer, and a broker that restarted without its producer
/// state can keep a producer waiting forever. The rows stay in the outbox meanwhile,
/// so nothing is lost; events the old producer may have written are sent again, which
/// analytics ignores by event id.
struct Producer {
    kafka: KafkaConfig,
    delivery_timeout: Duration,
    current: RwLock<Arc<FutureProducer>>,
    /// Since when every send of the current producer failed (None: it delivers).
    failing_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Producer {
    fn new(kafka: KafkaConfig, delivery_timeout: Duration) -> KafkaResult<Self> {
        let producer = Self::create(&kafka, delivery_timeout)?;
        Ok(Self {
            kafka,
            delivery_timeout,
            current: RwLock::new(Arc::new(producer)),
            failing_since: std::sync::Mutex::new(None),
        })
    }

    fn create(kafka: &KafkaConfig, delivery_timeout: Duration) -> KafkaResult<FutureProducer> {
        kafka
            .client_config()
            .set("acks", "all")
            // Not idempotent: the outbox already keeps one patient's events in order
            // (one in flight per patient) and analytics drops duplicates by event id,
            // while an idempotent producer dies with the broker's producer state (a
            // restarted in-memory tansu answers "unknown producer id" forever; tansu's
            // SQLite storage panics on a producer epoch it did not persist).
            .set("enable.idempotence", "false")
            .set("linger.ms", "1")
            .set("message.timeout.ms", delivery_timeout.as_millis().to_string())
            .create()
    }

    fn get(&self) -> Arc<FutureProducer> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// After a pass: replaces `used` by a new producer if it is fatal, or delivered
    /// nothing for [`PRODUCER_STALLED_AFTER`], and is still the current one.
    fn heal(&self, used: &Arc<FutureProducer>, saw_fatal: bool, delivered: bool) {
        let mut failing_since = self.failing_since.lock().unwrap_or_else(PoisonError::into_inner);
        let failing_for = if delivered {
            *failing_since = None;
            Duration::ZERO
        } else {
            failing_since.get_or_insert_with(std::time::Instant::now).elapsed()
        };
        let fatal = used.client().fatal_error();
        let stalled = failing_for >= PRODUCER_STALLED_AFTER;
        if fatal.is_none() && !saw_fatal && !stalled {
            return;
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&current, used) {
            return; // Already replaced.
        }
        match Self::create(&self.kafka, self.delivery_timeout) {
            Ok(fresh) => {
                let reason = match fatal {
                    Some((code, message)) => format!("fatal: {code:?}: {message}"),
                    None if saw_fatal => "fatal".to_string(),
                    None => format!("nothing delivered for {} s", failing_for.as_secs()),
                };
                tracing::warn!(%reason, "replaced the Kafka producer by a new one");
                *current = Arc::new(fresh);
                *failing_since = None;
            }
            Err(e) => tracing::warn!(error = %e, "the Kafka producer went fatal and cannot be replaced yet"),
        }
    }
}

pub struct Dispatcher {
    pool: PgPool,
    wakeup: Wakeup,
    backpressure: Backpressure,
    billing: BillingServiceClient<Channel>,
    producer: Producer,
    kafka: KafkaConfig,
    config: OutboxConfig,
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        wakeup: Wakeup,
        backpressure: Backpressure,
        billing_url: &str,
        kafka: KafkaConfig,
        config: OutboxConfig,
    ) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(billing_url.to_string())?
            .connect_timeout(Duration::from_secs(2))
            // The client enforces the deadline too: a silently dropped connection must
            // not hold the dispatcher (and its claims) longer than a lease.
            .timeout(config.billing_deadline)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        let producer = Producer::new(kafka.clone(), config.kafka_delivery_timeout)?;
        Ok(Self { pool, wakeup, backpressure, billing: BillingServiceClient::new(channel), producer, kafka, config })
    }

    /// Runs one delivery loop per destination until the process ends.
    pub fn spawn(self) {
        let this = Arc::new(self);
        for destination in Destination::ALL {
            let this = this.clone();
            tokio::spawn(async move { this.run(destination).await });
        }
    }

    async fn run(&self, destination: Destination) {
        loop {
            match self.drain(destination).await {
                // A full batch: there may be more.
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(destination = destination.as_str(), error = %e, "outbox pass failed"),
            }
            let _ = tokio::time::timeout(self.config.poll_interval, self.wakeup.of(destination).notified()).await;
        }
    }

    /// Delivers one batch of due rows; returns how many the claim read (a full batch:
    /// there may be more). One dispatcher at a time delivers a destination: the pass
    /// takes the destination's advisory lock in a transaction it holds while it
    /// delivers, and in that transaction deletes what was delivered and records what
    /// failed. The claim writes nothing (no lease in every row, no row locks), and until
    /// its DELETE the transaction has no transaction id, so it does not hold back the
    /// cleanup of the outbox's dead rows either. A replica that dies loses the lock the
    /// moment Postgres sees its connection close; one that hangs is ended by Postgres
    /// after [`OutboxConfig::claim_timeout`] idle.
    async fn drain(&self, destination: Destination) -> sqlx::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock($1, $2) \
             FROM set_config('idle_in_transaction_session_timeout', $3, true)",
        )
        .bind(OUTBOX_LOCKS)
        .bind(destination.lock_key())
        .bind(format!("{}ms", self.config.claim_timeout().as_millis()))
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            // Another replica delivers this destination now. This replica's creates are
            // held by that dispatcher's lag too: the age of the oldest row still waiting
            // for its first attempt.
            let waited: Option<f64> = sqlx::query_scalar(
                "SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox \
                 WHERE destination = $1 AND dead_at IS NULL AND attempts = 0 ORDER BY id LIMIT 1",
            )
            .bind(destination.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let lag = Duration::try_from_secs_f64(waited.unwrap_or(0.0)).unwrap_or_default();
            self.backpressure.record(destination, lag);
            return Ok(0);
        }
        // Only the oldest pending row of a patient is eligible: a row waits while an
        // older one for the same patient is pending, so one patient's events reach Kafka
        // in the order they happened. An older pending row is either due, and then in
        // this pass before it (rows come in id order; a first attempt is always due),
        // which `first_per_patient` sees, or it failed and waits for its retry, which
        // the NOT EXISTS finds in the small index of failed rows (`outbox_retrying`,
        // empty while deliveries succeed; migration 0009).
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, aggregate_id, payload, attempts, trace_parent, \
                    extract(epoch FROM now() - created_at)::float8 AS age_s FROM outbox o \
             WHERE destination = $1 AND dead_at IS NULL AND (attempts = 0 OR next_attempt_at <= now()) \
             AND NOT EXISTS (SELECT 1 FROM outbox failed WHERE failed.destination = o.destination \
                 AND failed.aggregate_id = o.aggregate_id AND failed.id < o.id \
                 AND failed.attempts > 0 AND failed.dead_at IS NULL) \
             ORDER BY id LIMIT $2",
        )
        .bind(destination.as_str())
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let claimed = rows.len();
        let rows = first_per_patient(rows);
        // Rows on their first attempt only: a retried row is old by nature (it waited out
        // its backoff), and counting it would hold creates back for an outage.
        let oldest = rows.iter().filter(|r| r.attempts == 0).map(|r| r.age_s).fold(0.0, f64::max);
        self.backpressure.record(destination, Duration::try_from_secs_f64(oldest).unwrap_or_default());
        if rows.is_empty() {
            return Ok(0);
        }
        // A delivery never outlives its claim.
        let bound = self.config.delivery_bound();
        let outcomes = match destination {
            Destination::Billing => {
                // One call and one commit in billing-service for the whole batch.
                let spans: Vec<tracing::Span> = rows.iter().map(|r| r.delivery_span(destination)).collect();
                let outcomes =
                    tokio::time::timeout(bound, self.deliver_billing_batch(&rows, &spans)).await.unwrap_or_else(|_| {
                        let reason = format!("no answer within {} ms", bound.as_millis());
                        rows.iter().map(|_| Err(Failure::Transient(reason.clone()))).collect()
                    });
                drop(spans);
                outcomes
            }
            Destination::BillingClose => {
                join_all(
                    rows.iter()
                        .map(|r| within(bound, self.deliver_billing_close(r)).instrument(r.delivery_span(destination))),
                )
                .await
            }
            Destination::PatientEvent => {
                let producer = self.producer.get();
                let outcomes =
                    join_all(rows.iter().map(|r| {
                        within(bound, self.deliver_event(&producer, r)).instrument(r.delivery_span(destination))
                    }))
                    .await;
                let saw_fatal = outcomes.iter().any(|o| matches!(o, Err(Failure::FatalProducer(_))));
                self.producer.heal(&producer, saw_fatal, outcomes.iter().any(Result::is_ok));
                outcomes
            }
        };
        let mut delivered = Vec::with_capacity(rows.len());
        let mut failed = Failed::default();
        let mut missing_topic = false;
        for (row, outcome) in rows.iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.push(row.id),
                Err(failure) => {
                    missing_topic |= matches!(failure, Failure::MissingTopic(_));
                    failed.push(row, &failure, backoff(&self.config, row.attempts));
                }
            }
        }
        if !delivered.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)").bind(&delivered).execute(&mut *tx).await?;
        }
        if let Some(first) = failed.reasons.first() {
            tracing::warn!(destination = destination.as_str(), failed = failed.ids.len(), delivered = delivered.len(),
                first_reason = %first, "deliveries failed; will retry");
            record_failures(&mut tx, destination, &failed).await?;
        }
        tx.commit().await?;
        if missing_topic && let Err(e) = self.kafka.ensure_topics(&[PATIENT_TOPIC]).await {
            tracing::warn!(error = %e, "cannot create the patient topic yet");
        }
        Ok(claimed)
    }

    /// Closes a deleted patient's account with one `CloseBillingAccount` call (closes
    /// are rare: one call each, in the delivery's trace).
    async fn deliver_billing_close(&self, row: &Row) -> Result<(), Failure> {
        let request = BillingRequest::decode(row.payload.as_slice()).map_err(|e| Failure::Reject(e.to_string()))?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.config.billing_deadline);
        // billing-service's span continues this delivery's trace.
        for (key, value) in trace_context::current_fields() {
            if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value)) {
                request.metadata_mut().insert(key, value);
            }
        }
        match self.billing.clone().close_billing_account(request).await {
            Ok(response) => {
                tracing::debug!(patient_id = %row.aggregate_id, account_id = %response.get_ref().account_id,
                    status = %response.get_ref().status, "billing account delivered");
                Ok(())
            }
            Err(status) => Err(classify_status(&status)),
        }
    }

    /// Opens the accounts of `rows` with one `CreateBillingAccounts` call; each item
    /// carries the trace of its delivery span (`spans`, one per row), which
    /// billing-service continues. Returns one outcome per row, in order.
    async fn deliver_billing_batch(&self, rows: &[Row], spans: &[tracing::Span]) -> Vec<Result<(), Failure>> {
        let mut outcomes: Vec<Result<(), Failure>> = Vec::with_capacity(rows.len());
        let mut items = Vec::with_capacity(rows.len());
        let mut sent = Vec::with_capacity(rows.len());
        for (n, (row, span)) in rows.iter().zip(spans).enumerate() {
            match BillingRequest::decode(row.payload.as_slice()) {
                Ok(request) => {
                    let traceparent = span.in_scope(trace_context::current_traceparent).unwrap_or_default();
                    items.push(BillingBatchItem { request: Some(request), traceparent });
                    sent.push(n);
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(Failure::Reject(e.to_string()))),
            }
        }
        if items.is_empty() {
            return outcomes;
        }
        let mut request = tonic::Request::new(BillingBatchRequest { items });
        request.set_timeout(self.config.billing_deadline);
        let answer = self.billing.clone().create_billing_accounts(request).await;
        let results = match answer {
            Ok(response) if response.get_ref().results.len() == sent.len() => response.into_inner().results,
            Ok(response) => {
                let reason =
                    format!("billing answered {} results for {} items", response.get_ref().results.len(), sent.len());
                for &n in &sent {
                    outcomes[n] = Err(Failure::Retry(reason.clone()));
                }
                return outcomes;
            }
            Err(status) => {
                for &n in &sent {
                    outcomes[n] = Err(classify_status(&status));
                }
                return outcomes;
            }
        };
        for (&n, result) in sent.iter().zip(results) {
            outcomes[n] = match result.outcome {
                Some(Outcome::Account(account)) => {
                    tracing::debug!(patient_id = %rows[n].aggregate_id, account_id = %account.account_id,
                        status = %account.status, "billing account delivered");
                    Ok(())
                }
                Some(Outcome::Invalid(reason)) => Err(Failure::Reject(reason)),
                None => Err(Failure::Retry("billing answered an item without an outcome".into())),
            };
        }
        outcomes
    }

    async fn deliver_event(&self, producer: &FutureProducer, row: &Row) -> Result<(), Failure> {
        let key = row.aggregate_id.to_string();
        // analytics' span continues this delivery's trace.
        let mut headers = OwnedHeaders::new();
        for (name, value) in trace_context::current_fields() {
            headers = headers.insert(Header { key: &name, value: Some(&value) });
        }
        let record = FutureRecord::to(PATIENT_TOPIC).key(&key).payload(&row.payload).headers(headers);
        match producer.send(record, self.config.kafka_delivery_timeout).await {
            Ok(_) => Ok(()),
            Err((e, _)) if is_unknown_topic(&e) => Err(Failure::MissingTopic(e.to_string())),
            Err((e, _)) if is_fatal(&e) => Err(Failure::FatalProducer(e.to_string())),
            Err((e, _)) if is_transient(&e) => Err(Failure::Transient(e.to_string())),
            Err((e, _)) => Err(Failure::Retry(e.to_string())),
        }
    }
}

/// Records failed deliveries on rows the pass's transaction holds; marks dead the
/// rejected ones and those failing the same way too often.
async fn record_failures(conn: &mut PgConnection, destination: Destination, failed: &Failed) -> sqlx::Result<()> {
    let dead: Vec<(i64, Uuid, i32, String)> = sqlx::query_as(
        "UPDATE outbox o SET attempts = o.attempts + 1, \
             same_failures = CASE WHEN o.last_error = f.reason THEN o.same_failures + 1 ELSE 1 END, \
             last_error = f.reason, \
             next_attempt_at = now() + make_interval(secs => f.delay), \
             dead_at = CASE WHEN f.reject OR (f.counts AND o.last_error = f.reason AND o.same_failures + 1 >= $6) \
                 THEN now() END \
         FROM unnest($1::int8[], $2::text[], $3::float8[], $4::bool[], $5::bool[]) AS f(id, reason, delay, counts, reject) \
         WHERE o.id = f.id \
         RETURNING o.id, o.aggregate_id, o.attempts, f.reason, o.dead_at IS NOT NULL AS dead",
    )
    .bind(&failed.ids)
    .bind(&failed.reasons)
    .bind(&failed.delays)
    .bind(&failed.counts)
    .bind(&failed.rejects)
    .bind(DEAD_AFTER_SAME_FAILURES)
    .fetch_all(conn)
    .await?
    .into_iter()
    .filter_map(|(id, aggregate, attempts, reason, dead): (i64, Uuid, i32, String, bool)| {
        dead.then_some((id, aggregate, attempts, reason))
    })
    .collect();
    for (id, patient_id, attempts, reason) in dead {
        tracing::error!(destination = destination.as_str(), outbox_id = id, %patient_id, attempts, %reason,
            "outbox row is dead: it will not be delivered (kept with its reason)");
    }
    Ok(())
}

/// Of rows in id order, each patient's first only: a later row of the same patient
/// waits for the next pass, after the earlier one was delivered.
fn first_per_patient(rows: Vec<Row>) -> Vec<Row> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    rows.into_iter().filter(|row| seen.insert(row.aggregate_id)).collect()
}

/// `delivery`, or a transient failure when it takes longer than `bound`.
async fn within(bound: Duration, delivery: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    tokio::time::timeout(bound, delivery)
        .await
        .unwrap_or_else(|_| Err(Failure::Transient(format!("no answer within {} ms", bound.as_millis()))))
}

/// The failures of one pass, as columns for one `UPDATE ... FROM unnest(...)`.
#[derive(Default)]
struct Failed {
    ids: Vec<i64>,
    reasons: Vec<String>,
    delays: Vec<f64>,
    counts: Vec<bool>,
    rejects: Vec<bool>,
}

impl Failed {
    fn push(&mut self, row: &Row, failure: &Failure, delay: Duration) {
        self.ids.push(row.id);
        self.reasons.push(failure.reason().to_string());
        self.delays.push(delay.as_secs_f64());
        self.counts.push(failure.counts());
        self.rejects.push(matches!(failure, Failure::Reject(_)));
    }
}

/// billing-service's answer: a rejection is final; unreachable, timing out or
/// overloaded is transient; anything else is retried but counts towards dead.
fn classify_status(status: &tonic::Status) -> Failure {
    let reason = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument => Failure::Reject(status.message().to_string()),
        // Cancelled: the channel's own deadline (tonic reports it so) or a dropped connection.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted | Code::Aborted => {
            Failure::Transient(reason)
        }
        _ => Failure::Retry(reason),
    }
}

/// `base * 2^attempts`, capped at `max`.
fn backoff(config: &OutboxConfig, attempts: i32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.clamp(0, 20) as u32);
    config.base_backoff.saturating_mul(factor).min(config.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cloudwatch_line_is_an_embedded_metric_format_document() {
        let line = emf_line("PulseTrack", "billing", 3, 12.5, 1_764_000_000_000);
        let doc: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "PulseTrack");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Destination"]]));
        // Every metric named in the directive, and every dimension, is a member.
        for metric in directive["Metrics"].as_array().expect("metrics") {
            assert!(doc[metric["Name"].as_str().expect("name")].is_number(), "{line}");
        }
        assert_eq!(doc["Destination"], "billing");
        assert_eq!(
            (doc["OutboxPending"].as_i64(), doc["OutboxOldestPendingAgeSeconds"].as_f64()),
            (Some(3), Some(12.5))
        );
        assert!(!line.contains('\n'), "one line");
    }

    #[test]
    fn creates_are_held_in_proportion_to_the_lag_above_the_limit() {
        let backpressure = Backpressure::default();
        assert_eq!(backpressure.hold(), Duration::ZERO);
        backpressure.record(Destination::Billing, LAG_LIMIT);
        assert_eq!(backpressure.hold(), Duration::ZERO, "at the limit");
        // The largest lag of any destination counts.
        backpressure.record(Destination::PatientEvent, LAG_LIMIT + Duration::from_millis(500));
        assert_eq!(backpressure.hold(), Duration::from_millis(500).mul_f64(HOLD_PER_LAG));
        backpressure.record(Destination::PatientEvent, Duration::from_secs(3600));
        assert_eq!(backpressure.hold(), MAX_HOLD);
        backpressure.record(Destination::PatientEvent, Duration::ZERO);
        assert_eq!(backpressure.hold(), Duration::ZERO, "caught up");
    }

    #[tokio::test]
    async fn admit_holds_the_caller_for_the_hold() {
        let backpressure = Backpressure::default();
        assert_eq!(backpressure.admit().await, Duration::ZERO);
        backpressure.record(Destination::Billing, LAG_LIMIT + Duration::from_millis(400));
        let started = std::time::Instant::now();
        let held = backpressure.admit().await;
        assert_eq!(held, Duration::from_millis(400).mul_f64(HOLD_PER_LAG));
        assert!(started.elapsed() >= held);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let config = OutboxConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..OutboxConfig::default()
        };
        let delays: Vec<u128> = (0..6).map(|a| backoff(&config, a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&config, i32::MAX), Duration::from_secs(1));
    }
}
