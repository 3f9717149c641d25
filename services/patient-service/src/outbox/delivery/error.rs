//! Why one delivery failed, sorted by what the outbox does about it (retry, replace
//! the producer, create the topic, give up).

/// Why one delivery failed.
#[derive(Debug)]
pub(in crate::outbox) enum DeliveryError {
    /// The receiver is unreachable, timing out or unavailable: retried for as long as
    /// it takes (a long outage delays, never loses).
    Transient(String),
    /// The broker does not know the topic (a fresh in-memory broker): create it, retry.
    MissingTopic(String),
    /// The producer went fatal: replace it, retry (transient).
    FatalProducer(String),
    /// Another failure: retried, and dead after [`DEAD_AFTER_SAME_FAILURES`] in a row.
    ///
    /// [`DEAD_AFTER_SAME_FAILURES`]: crate::outbox::DEAD_AFTER_SAME_FAILURES
    Retry(String),
    /// The receiver rejected the message: it never will take it; dead at once.
    Reject(String),
}

impl DeliveryError {
    pub(in crate::outbox) fn reason(&self) -> &str {
        match self {
            DeliveryError::Transient(r)
            | DeliveryError::MissingTopic(r)
            | DeliveryError::FatalProducer(r)
            | DeliveryError::Retry(r)
            | DeliveryError::Reject(r) => r,
        }
    }

    /// Whether this failure counts towards marking the row dead.
    pub(in crate::outbox) fn counts(&self) -> bool {
        matches!(self, DeliveryError::Retry(_))
    }
}
