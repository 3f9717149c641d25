//! The Kafka producer the events go through, and its replacement when it went fatal
//! or stalled.

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use pulsetrack_common::kafka::KafkaConfig;
use rdkafka::{
    error::KafkaResult,
    producer::{FutureProducer, Producer as _},
};

/// A producer that delivers nothing for this long while it has events to send (the
/// broker answering again, say) is replaced by a new one.
const PRODUCER_STALLED_AFTER: Duration = Duration::from_secs(15);

/// The Kafka producer, replaced by a new one when it went fatal or stalled: librdkafka
/// never recovers a fatal producer, and a broker that restarted without its producer
/// state can keep a producer waiting forever. The rows stay in the outbox meanwhile,
/// so nothing is lost; events the old producer may have written are sent again, which
/// analytics ignores by event id.
pub(super) struct Producer {
    kafka: KafkaConfig,
    delivery_timeout: Duration,
    current: RwLock<Arc<FutureProducer>>,
    /// Since when every send of the current producer failed (None: it delivers).
    failing_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Producer {
    pub(super) fn new(kafka: KafkaConfig, delivery_timeout: Duration) -> KafkaResult<Self> {
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

    pub(super) fn get(&self) -> Arc<FutureProducer> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// After a pass: replaces `used` by a new producer if it is fatal, or delivered
    /// nothing for [`PRODUCER_STALLED_AFTER`], and is still the current one.
    pub(super) fn heal(&self, used: &Arc<FutureProducer>, saw_fatal: bool, delivered: bool) {
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
