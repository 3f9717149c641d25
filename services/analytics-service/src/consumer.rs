//! The `patient` topic consumer: decode, validate, store once, then commit.
//!
//! Offsets are committed only after the event is in the database (or, for a message
//! that cannot be decoded, after it is in the dead-letter topic), so a crash at any
//! point redelivers rather than loses; the unique event id makes redelivery harmless.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Datelike, Utc};
use futures_util::FutureExt as _;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use prost::Message as _;
use pulsetrack_common::kafka::{KafkaConfig, PATIENT_DLT_TOPIC, PATIENT_TOPIC, is_missing_topic, is_unknown_topic};
use pulsetrack_common::{
    metrics::Metrics,
    trace_context::{self, TRACE_HEADERS},
};
use pulsetrack_proto::{event_type, patient_events::PatientEvent};
use rdkafka::{
    ClientContext, Message, Offset, Statistics, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer},
    error::KafkaError,
    message::{BorrowedMessage, Header, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaRespErr,
};
use uuid::Uuid;

use crate::repository::{EventRepository, StoredEvent};

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// The most messages stored and committed together (one insert, one offset commit).
/// Committing each message on its own sends the broker one OffsetCommit per event.
const BATCH_MAX: usize = 500;
/// How long a consumer whose topic vanished tries to leave its reset request.
const RESET_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the consumer stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The subscribed topic vanished from the broker (deleted, or a broker that came
    /// back empty). Its replacement is a new topic (a new topic id, offsets from 0)
    /// that this consumer does not follow: librdkafka 2.12 neither fetches its
    /// partitions nor survives replacing the consumer in the same process (SIGSEGV in
    /// its metadata cache). The process ends and its supervisor (`deployer up`, ECS)
    /// starts a fresh one, which reads the new topic from its beginning (the request
    /// this one leaves in `consumer_resets`), not from the group's committed offsets.
    #[error("the {PATIENT_TOPIC} topic vanished from the broker ({0}); a new consumer must follow its replacement")]
    TopicLost(KafkaError),
}

/// Whether the consumer is a member of its group with an assignment (possibly empty,
/// when there are more consumers than partitions): set by the rebalance callbacks,
/// read by `/ready`.
#[derive(Clone, Debug, Default)]
pub struct GroupMembership(Arc<AtomicBool>);

impl GroupMembership {
    pub fn joined(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, joined: bool) {
        self.0.store(joined, Ordering::Release);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// The consumer's metrics: `kafka_consumer_lag` per partition (from librdkafka's
/// statistics, every [`STATISTICS_INTERVAL`]), `analytics_events_stored_total` and
/// `analytics_dead_letters_total`.
#[derive(Clone, Default)]
pub struct ConsumerMetrics {
    lag: Family<PartitionLabels, Gauge>,
    stored: Counter,
    dead_letters: Counter,
}

/// How often librdkafka reports its statistics (the consumer's lag among them).
const STATISTICS_INTERVAL: Duration = Duration::from_secs(2);

/// How long the broker may hold a fetch to gather records (`fetch.wait.max.ms`). Every
/// fetch costs the broker a fixed amount besides its records (tansu 0.6 reads each
/// partition's watermarks several times per fetch, and holds a fetch for this long
/// even when records are there at once), so a longer wait means fewer, larger fetches
/// under load, for at most this much more delay per event.
const FETCH_WAIT: Duration = Duration::from_millis(50);

impl ConsumerMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let this = Self::default();
        metrics.register(
            "kafka_consumer_lag",
            "Messages in the partition not yet consumed by this group member",
            this.lag.clone(),
        );
        metrics.register("analytics_events_stored", "Events stored (each event id once)", this.stored.clone());
        metrics.register("analytics_dead_letters", "Messages sent to the dead-letter topic", this.dead_letters.clone());
        this
    }
}

/// The consumer's context: records the group membership and the lag, and applies a
/// requested reset to the first assignment.
struct GroupContext {
    membership: GroupMembership,
    metrics: ConsumerMetrics,
    reset: Arc<TopicReset>,
}

/// A reset of the patient topic to its beginning, asked for by a predecessor that saw
/// the topic vanish (`consumer_resets`, migration 0003).
#[derive(Default)]
struct TopicReset {
    /// Requested: the next assignment starts every partition at the beginning.
    requested: AtomicBool,
    /// Applied to an assignment; the request can be deleted.
    applied: AtomicBool,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in statistics.topics {
            for (partition, p) in stats.partitions {
                // -1 is librdkafka's "not known" (a partition not assigned to this member).
                if partition >= 0 && p.consumer_lag >= 0 {
                    let labels = PartitionLabels { topic: topic.clone(), partition };
                    self.metrics.lag.get_or_create(&labels).set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    /// librdkafka's default (the eager protocol: assign what is given, unassign on a
    /// revocation or an error), except that a requested reset starts the first
    /// assignment of the patient topic at the beginning of every partition.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let assigned = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let ours = partitions.elements().iter().any(|p| p.topic() == PATIENT_TOPIC);
                if ours && self.reset.requested.load(Ordering::Acquire) {
                    if let Err(e) = partitions.set_all_offsets(Offset::Beginning) {
                        tracing::warn!(error = %e, "cannot start the assignment at the beginning");
                    } else {
                        tracing::warn!(
                            partitions = partitions.count(),
                            "reading the patient topic from its beginning \
                            (a predecessor saw it vanish; committed offsets may be the old topic's)"
                        );
                        self.reset.requested.store(false, Ordering::Release);
                        self.reset.applied.store(true, Ordering::Release);
                    }
                }
                consumer.assign(partitions).map(|()| true)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!("partitions revoked: rejoining the consumer group");
                consumer.unassign().map(|()| false)
            }
            other => {
                tracing::warn!(error = ?other, "consumer group rebalance failed");
                consumer.unassign().map(|()| false)
            }
        };
        match assigned {
            Ok(joined) => {
                if joined {
                    tracing::info!(partitions = partitions.count(), "joined the consumer group");
                }
                self.membership.set(joined);
            }
            Err(e) => {
                tracing::warn!(error = %e, "consumer group (un)assignment failed");
                self.membership.set(false);
            }
        }
    }
}

pub struct EventConsumer {
    consumer: StreamConsumer<GroupContext>,
    reset: Arc<TopicReset>,
    dlt: FutureProducer,
    events: EventRepository,
    kafka: KafkaConfig,
    metrics: ConsumerMetrics,
}

/// Why a message is not a valid `PatientEvent`.
pub fn decode(payload: &[u8], partition: i32, offset: i64) -> Result<StoredEvent, String> {
    let event = PatientEvent::decode(payload).map_err(|e| format!("not a PatientEvent: {e}"))?;
    let event_id = Uuid::parse_str(&event.event_id).map_err(|_| "event_id: not a UUID".to_string())?;
    let patient_id = Uuid::parse_str(&event.patient_id).map_err(|_| "patientId: not a UUID".to_string())?;
    if ![event_type::PATIENT_CREATED, event_type::PATIENT_UPDATED, event_type::PATIENT_DELETED]
        .contains(&event.event_type.as_str())
    {
        return Err(format!("event_type: unknown {:?}", event.event_type));
    }
    let occurred_at = event
        .occurred_at
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .filter(|t| (2000..=9999).contains(&t.year()))
        .ok_or("occurred_at: missing or out of range")?;
    // Postgres text cannot hold NUL; such an event could never be stored.
    if event.name.contains('\0') || event.email.contains('\0') {
        return Err("name/email: contains a NUL character".into());
    }
    Ok(StoredEvent {
        event_id,
        patient_id,
        event_type: event.event_type,
        name: event.name,
        email: event.email,
        occurred_at,
        kafka_partition: partition,
        kafka_offset: offset,
    })
}

impl EventConsumer {
    /// A member of `group_id`; it reads the topic from the beginning when a predecessor
    /// asked for it (see [`ConsumerError::TopicLost`]).
    pub async fn new(
        kafka: &KafkaConfig,
        group_id: &str,
        events: EventRepository,
        membership: GroupMembership,
        metrics: ConsumerMetrics,
    ) -> anyhow::Result<Self> {
        let reset = Arc::new(TopicReset::default());
        let requested = retry("read the topic reset request", || events.reset_requested(PATIENT_TOPIC)).await;
        reset.requested.store(requested, Ordering::Release);
        let context = GroupContext { membership, metrics: metrics.clone(), reset: reset.clone() };
        let consumer: StreamConsumer<GroupContext> = kafka
            .client_config()
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .set("fetch.wait.max.ms", FETCH_WAIT.as_millis().to_string())
            .set("statistics.interval.ms", STATISTICS_INTERVAL.as_millis().to_string())
            .create_with_context(context)?;
        consumer.subscribe(&[PATIENT_TOPIC])?;
        let dlt: FutureProducer = kafka.client_config().set("acks", "all").set("linger.ms", "1").create()?;
        Ok(Self { consumer, reset, dlt, events, kafka: kafka.clone(), metrics })
    }

    /// Consumes until `shutdown` completes, or until the topic vanishes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ConsumerError> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                received = self.consumer.recv() => match received {
                    // On shutdown mid-batch nothing is committed: it is redelivered.
                    Ok(first) => {
                        let (batch, lost) = self.take_batch(first);
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = self.handle(&batch) => {}
                        }
                        if let Some(e) = lost {
                            return Err(self.topic_lost(e).await);
                        }
                        self.reset_done().await;
                    }
                    // The topic existed when the consumer subscribed (`run_until` creates it
                    // first): missing now, it was deleted or the broker lost it.
                    Err(e) if is_missing_topic(&e) => return Err(self.topic_lost(e).await),
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka receive error");
                        tokio::time::sleep(RETRY_MIN).await;
                    }
                },
            }
        }
        tracing::info!("consumer stopped");
        Ok(())
    }

    /// Deletes the reset request once an assignment started at the beginning (and a
    /// batch from there was handled). Should that fail, the next process resets again.
    async fn reset_done(&self) {
        if self.reset.applied.swap(false, Ordering::AcqRel)
            && let Err(e) = self.events.clear_reset(PATIENT_TOPIC).await
        {
            tracing::warn!(error = %e, "cannot delete the topic reset request (the next start reads from the beginning again)");
        }
    }

    /// The topic vanished. A broker that lost it does not create it again, and
    /// patient-service does so only when it next produces: the consumer creates the
    /// topics before it ends, so that its successor finds them.
    async fn topic_lost(&self, error: KafkaError) -> ConsumerError {
        tracing::error!(%error, "the patient topic vanished: creating it again and ending this consumer, \
            for a fresh one to follow the new topic");
        // `ensure_topics` logs each topic it had to create.
        if let Err(e) = self.kafka.ensure_topics(&[PATIENT_TOPIC, PATIENT_DLT_TOPIC]).await {
            tracing::warn!(error = %e, "cannot create the missing topic yet");
        }
        // The successor must not trust the group's committed offsets: they may be the
        // old topic's (librdkafka retries a failed commit until the topic exists again).
        let asked = tokio::time::timeout(
            RESET_REQUEST_TIMEOUT,
            retry("ask the successor to read from the beginning", || self.events.request_reset(PATIENT_TOPIC)),
        )
        .await;
        if asked.is_err() {
            tracing::error!(
                "could not ask the successor to read the topic from its beginning: events \
                between its committed offsets and the start of the new topic may be skipped"
            );
        }
        ConsumerError::TopicLost(error)
    }

    /// `first` and the messages that have already arrived behind it, up to
    /// [`BATCH_MAX`]: one at a time when events trickle in, larger batches (one insert,
    /// one offset commit) when a backlog builds up. Also the error saying that the
    /// topic vanished, when one came behind the batch.
    fn take_batch<'c>(&'c self, first: BorrowedMessage<'c>) -> (Vec<BorrowedMessage<'c>>, Option<KafkaError>) {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match self.consumer.recv().now_or_never() {
                Some(Ok(message)) => batch.push(message),
                Some(Err(e)) if is_missing_topic(&e) => return (batch, Some(e)),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "kafka receive error");
                    break;
                }
                None => break,
            }
        }
        (batch, None)
    }

    /// Stores the batch's events, dead-letters what cannot be stored, then commits the
    /// batch's offsets: nothing is committed before it is in the database or the DLT.
    async fn handle(&self, batch: &[BorrowedMessage<'_>]) {
        let mut messages = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        for message in batch {
            match decode(message.payload().unwrap_or_default(), message.partition(), message.offset()) {
                Ok(event) => {
                    messages.push(message);
                    events.push(event);
                }
                Err(reason) => {
                    tracing::warn!(partition = message.partition(), offset = message.offset(), %reason, "poison message to DLT");
                    retry("send to DLT", || self.to_dead_letter(message, &reason)).await;
                }
            }
        }
        if !events.is_empty() {
            // One span per event, a child of the delivery that produced it; each ends
            // when its event is stored.
            let spans: Vec<tracing::Span> = messages.iter().zip(&events).map(|(m, e)| store_span(m, e)).collect();
            self.store(&messages, &events).await;
            self.erase_deleted(&events).await;
            drop(spans);
        }
        self.commit(batch);
    }

    /// One insert for the whole batch; when Postgres refuses one of them for its
    /// content, the batch is stored one by one so that only that event is dead-lettered.
    async fn store(&self, messages: &[&BorrowedMessage<'_>], events: &[StoredEvent]) {
        let stored = retry("store events", || async {
            match self.events.insert_many(events).await {
                Ok(new) => Ok(Ok(new)),
                Err(e) if is_permanent(&e) => Ok(Err(e.to_string())),
                Err(e) => Err(e),
            }
        })
        .await;
        match stored {
            Ok(new) => {
                self.metrics.stored.inc_by(new);
                tracing::debug!(events = events.len(), new, "events stored");
            }
            Err(reason) => {
                tracing::warn!(events = events.len(), %reason, "batch refused by the database; storing one by one");
                for (message, event) in messages.iter().zip(events) {
                    self.store_one(message, event).await;
                }
            }
        }
    }

    /// A deleted patient's name and email leave analytics: its earlier events keep only
    /// ids, types and times. Done before the offsets are committed, so a crash redoes it.
    async fn erase_deleted(&self, events: &[StoredEvent]) {
        let deleted: Vec<Uuid> =
            events.iter().filter(|e| e.event_type == event_type::PATIENT_DELETED).map(|e| e.patient_id).collect();
        if deleted.is_empty() {
            return;
        }
        let erased =
            retry("erase a deleted patient's personal data", || self.events.erase_personal_data(&deleted)).await;
        tracing::info!(patients = deleted.len(), events = erased, "personal data of deleted patients erased");
    }

    async fn store_one(&self, message: &BorrowedMessage<'_>, event: &StoredEvent) {
        // Transient failures (Postgres down) are retried; an event Postgres refuses for
        // its content would block the partition, so it is dead-lettered.
        let stored = retry("store event", || async {
            match self.events.insert(event).await {
                Ok(_) => Ok(Ok(())),
                Err(e) if is_permanent(&e) => Ok(Err(e.to_string())),
                Err(e) => Err(e),
            }
        })
        .await;
        if let Err(reason) = stored {
            tracing::warn!(event_id = %event.event_id, %reason, "event refused by the database; to DLT");
            retry("send to DLT", || self.to_dead_letter(message, &reason)).await;
        }
    }

    /// Commits, per partition, the offset after the batch's last message.
    fn commit(&self, batch: &[BorrowedMessage<'_>]) {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for message in batch {
            let offset = next.entry((message.topic(), message.partition())).or_insert(0);
            *offset = (*offset).max(message.offset() + 1);
        }
        let mut offsets = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            if let Err(e) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                tracing::warn!(error = %e, topic, partition, "offset not committed");
            }
        }
        if let Err(e) = self.consumer.commit(&offsets, CommitMode::Async) {
            // The next commit covers these offsets; at worst the batch is redelivered.
            tracing::warn!(error = %e, "offset commit failed");
        }
    }

    async fn to_dead_letter(&self, message: &BorrowedMessage<'_>, reason: &str) -> Result<(), String> {
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "x-error", value: Some(reason) })
            .insert(Header { key: "x-original-topic", value: Some(message.topic()) })
            .insert(Header { key: "x-original-partition", value: Some(&partition) })
            .insert(Header { key: "x-original-offset", value: Some(&offset) });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(PATIENT_DLT_TOPIC).payload(message.payload().unwrap_or_default()).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        match self.dlt.send(record, Duration::from_secs(5)).await {
            Ok(_) => {
                self.metrics.dead_letters.inc();
                Ok(())
            }
            Err((e, _)) => {
                if is_unknown_topic(&e) {
                    // A broker that lost its topics (a fresh local broker): create it again.
                    let _ = self.kafka.ensure_topics(&[PATIENT_DLT_TOPIC]).await;
                }
                Err(e.to_string())
            }
        }
    }
}

/// The span of storing `event`: it continues the trace in the message's headers.
fn store_span(message: &BorrowedMessage<'_>, event: &StoredEvent) -> tracing::Span {
    let span = tracing::info_span!("analytics.store_event", event_id = %event.event_id,
        patient_id = %event.patient_id, trace_id = tracing::field::Empty);
    let fields: HashMap<String, String> = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .filter(|h| TRACE_HEADERS.contains(&h.key))
                .filter_map(|h| Some((h.key.to_string(), std::str::from_utf8(h.value?).ok()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    trace_context::adopt(&span, trace_context::from_fields(&fields));
    span
}

/// Whether the event can never be stored: it cannot be encoded, or Postgres refused
/// its data (SQLSTATE class 22 or 23), so retrying can never succeed.
fn is_permanent(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Encode(_)) || pulsetrack_common::error::refused_data(error)
}

/// Retries `op` with backoff until it succeeds: a message is never skipped because
/// Postgres or the broker is briefly unavailable.
async fn retry<T, E, F, Fut>(what: &str, mut op: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = RETRY_MIN;
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> PatientEvent {
        PatientEvent {
            patient_id: Uuid::new_v4().to_string(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            event_type: event_type::PATIENT_CREATED.into(),
            event_id: Uuid::new_v4().to_string(),
            occurred_at: Some(prost_types::Timestamp { seconds: 1_764_000_000, nanos: 5 }),
        }
    }

    #[test]
    fn a_valid_event_decodes() {
        let e = event();
        let stored = decode(&e.encode_to_vec(), 2, 7).expect("valid");
        assert_eq!(stored.event_id.to_string(), e.event_id);
        assert_eq!((stored.kafka_partition, stored.kafka_offset), (2, 7));
    }

    #[test]
    fn poison_messages_are_named() {
        assert!(decode(b"\xff\xff\xff", 0, 0).is_err());
        let mut e = event();
        e.event_id = "nope".into();
        assert!(decode(&e.encode_to_vec(), 0, 0).expect_err("bad id").contains("event_id"));
        let mut e = event();
        e.event_type = "PATIENT_EXPLODED".into();
        assert!(decode(&e.encode_to_vec(), 0, 0).expect_err("bad type").contains("event_type"));
        let mut e = event();
        e.occurred_at = None;
        assert!(decode(&e.encode_to_vec(), 0, 0).is_err());
        let mut e = event();
        e.occurred_at = Some(prost_types::Timestamp { seconds: 400_000_000_000, nanos: 0 });
        assert!(decode(&e.encode_to_vec(), 0, 0).expect_err("year 14645").contains("occurred_at"));
        let mut e = event();
        e.name = "nul\0byte".into();
        assert!(decode(&e.encode_to_vec(), 0, 0).expect_err("nul").contains("NUL"));
    }
}
