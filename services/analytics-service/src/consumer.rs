//! The `patient` topic consumer: decode, validate, store once, then commit.
//!
//! Offsets are committed only after the event is in the database (or, for a message
//! that cannot be decoded, after it is in the dead-letter topic), so a crash at any
//! point redelivers rather than loses; the unique event id makes redelivery harmless.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use chrono::{DateTime, Datelike, Utc};
use prost::Message as _;
use pulsetrack_common::kafka::{
    KafkaConfig, PATIENT_DLT_TOPIC, PATIENT_TOPIC, is_fatal, is_missing_topic, is_unknown_topic,
};
use pulsetrack_proto::{event_type, patient_events::PatientEvent};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::{BorrowedMessage, Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use uuid::Uuid;

use crate::repository::{EventRepository, StoredEvent};

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long `recv` waits before the loop looks at the consumer's health.
const QUIET: Duration = Duration::from_secs(1);
/// Topics are (re)created at most this often while the broker says they are missing.
const TOPICS_EVERY: Duration = Duration::from_secs(2);
/// A consumer that has seen only errors for this long (no message, no quiet spell with
/// partitions assigned) is replaced by a new one of the same group: it resumes from the
/// committed offsets, and what it replays is stored once.
const STALLED_AFTER: Duration = Duration::from_secs(10);

pub struct EventConsumer {
    consumer: StreamConsumer,
    dlt: FutureProducer,
    events: EventRepository,
    kafka: KafkaConfig,
    group_id: String,
    /// Partitions this consumer has committed an offset for.
    committed: std::sync::Mutex<std::collections::BTreeSet<i32>>,
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
    pub fn new(kafka: &KafkaConfig, group_id: &str, events: EventRepository) -> anyhow::Result<Self> {
        let consumer = subscribed(kafka, group_id)?;
        let dlt: FutureProducer = kafka.client_config().set("acks", "all").set("linger.ms", "1").create()?;
        Ok(Self {
            consumer,
            dlt,
            events,
            kafka: kafka.clone(),
            group_id: group_id.to_string(),
            committed: Default::default(),
        })
    }

    /// Consumes until `shutdown` completes. Heals on the way: topics that vanished (a
    /// broker that came back empty) are created again and subscribed anew, and a
    /// consumer that sees nothing but errors for [`STALLED_AFTER`] is replaced.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut healthy_at = Instant::now();
        let mut failing_since: Option<Instant> = None;
        let mut topics_at: Option<Instant> = None;
        loop {
            let received = tokio::select! {
                () = &mut shutdown => break,
                received = tokio::time::timeout(QUIET, self.consumer.recv()) => received,
            };
            match received {
                // On shutdown mid-message nothing is committed: it is redelivered.
                Ok(Ok(message)) => {
                    let after_errors = failing_since.is_some();
                    (healthy_at, failing_since) = (Instant::now(), None);
                    match after_errors.then(|| self.broker_forgot_offsets()) {
                        // The message is read again from the start, with everything before it.
                        Some(Ok(true)) => continue,
                        Some(Err(e)) => {
                            drop(message);
                            tracing::warn!(error = %e, "cannot rewind");
                            self.replace("cannot rewind");
                            continue;
                        }
                        _ => {}
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        partition = self.handle(&message) => {
                            if let Some(partition) = partition {
                                self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(partition);
                            }
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka receive error");
                    failing_since.get_or_insert_with(Instant::now);
                    if is_missing_topic(&e) && topics_at.is_none_or(|at| at.elapsed() >= TOPICS_EVERY) {
                        topics_at = Some(Instant::now());
                        self.recreate_topics().await;
                    }
                    if is_fatal(&e) {
                        self.replace("the consumer went fatal");
                        (healthy_at, failing_since) = (Instant::now(), None);
                    }
                    tokio::time::sleep(RETRY_MIN).await;
                }
                // A quiet spell: fine when partitions are assigned and no error came.
                Err(_) => {
                    if self.consumer.assignment().is_ok_and(|a| a.count() > 0) {
                        (healthy_at, failing_since) = (Instant::now(), None);
                    }
                }
            }
            if failing_since.is_some() && healthy_at.elapsed() >= STALLED_AFTER {
                self.replace("only errors from the broker");
                (healthy_at, failing_since) = (Instant::now(), None);
            }
        }
        tracing::info!("consumer stopped");
    }

    /// After the broker was away: whether it came back without this group's committed
    /// offsets (an in-memory broker restarts empty, and its recreated topics start at
    /// offset 0 again, below this consumer's positions). Then every assigned partition
    /// is read again from its beginning: the positions held point into a log that no
    /// longer exists, and events stored twice are stored once.
    fn broker_forgot_offsets(&self) -> Result<bool, rdkafka::error::KafkaError> {
        let Ok(committed) = self.consumer.committed(Duration::from_secs(2)) else { return Ok(false) };
        let mut ours = self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let forgotten: Vec<i32> = committed
            .elements()
            .iter()
            .filter(|e| e.offset() == Offset::Invalid && ours.contains(&e.partition()))
            .map(|e| e.partition())
            .collect();
        if forgotten.is_empty() {
            return Ok(false);
        }
        tracing::warn!(?forgotten, "the broker lost the committed offsets; reading the partitions from the start");
        ours.clear();
        let mut from_start = TopicPartitionList::new();
        for element in committed.elements() {
            from_start.add_partition_offset(element.topic(), element.partition(), Offset::Beginning)?;
        }
        self.consumer.assign(&from_start)?;
        Ok(true)
    }

    /// Creates the topics again (the broker lost them) and subscribes anew, so the
    /// group is rebalanced onto the new partitions.
    async fn recreate_topics(&self) {
        match self.kafka.ensure_topics(&[PATIENT_TOPIC, PATIENT_DLT_TOPIC]).await {
            Ok(()) => {
                self.consumer.unsubscribe();
                if let Err(e) = self.consumer.subscribe(&[PATIENT_TOPIC]) {
                    tracing::warn!(error = %e, "cannot subscribe again");
                } else {
                    tracing::info!("topics ensured; subscribed again");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot create the topics yet"),
        }
    }

    /// Replaces the consumer by a new one of the same group (it resumes from the
    /// committed offsets). The old one is closed off the async threads: closing waits
    /// on the broker.
    fn replace(&mut self, why: &str) {
        match subscribed(&self.kafka, &self.group_id) {
            Ok(fresh) => {
                tracing::warn!(reason = why, "replacing the Kafka consumer by a new one");
                let old = std::mem::replace(&mut self.consumer, fresh);
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(e) => tracing::warn!(error = %e, "cannot create a new Kafka consumer yet"),
        }
    }

    async fn handle(&self, message: &BorrowedMessage<'_>) -> Option<i32> {
        let payload = message.payload().unwrap_or_default();
        match decode(payload, message.partition(), message.offset()) {
            Ok(event) => {
                // Transient failures (Postgres down) are retried; an event Postgres
                // refuses for its content would block the partition, so it is dead-lettered.
                let stored = retry("store event", || async {
                    match self.events.insert(&event).await {
                        Ok(_) => Ok(Ok(())),
                        Err(e) if is_permanent(&e) => Ok(Err(e.to_string())),
                        Err(e) => Err(e),
                    }
                })
                .await;
                match stored {
                    Ok(()) => {
                        tracing::debug!(event_id = %event.event_id, event_type = %event.event_type, "event stored")
                    }
                    Err(reason) => {
                        tracing::warn!(event_id = %event.event_id, %reason, "event refused by the database; to DLT");
                        retry("send to DLT", || self.to_dead_letter(message, &reason)).await;
                    }
                }
            }
            Err(reason) => {
                tracing::warn!(partition = message.partition(), offset = message.offset(), %reason, "poison message to DLT");
                retry("send to DLT", || self.to_dead_letter(message, &reason)).await;
            }
        }
        match self.consumer.commit_message(message, CommitMode::Async) {
            Ok(()) => Some(message.partition()),
            Err(e) => {
                // The next commit covers this offset; at worst the message is redelivered.
                tracing::warn!(error = %e, "offset commit failed");
                None
            }
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
            Ok(_) => Ok(()),
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

/// A consumer of `group_id`, subscribed to the patient topic.
fn subscribed(kafka: &KafkaConfig, group_id: &str) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[PATIENT_TOPIC])?;
    Ok(consumer)
}

/// Whether Postgres refused the data itself (SQLSTATE class 22 data exception or 23
/// integrity violation), so retrying can never succeed.
fn is_permanent(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Encode(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        _ => false,
    }
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
