//! Transactional outbox. A patient change and the work that must follow it (the
//! billing account request and the `PatientEvent`) commit in one transaction; the
//! [`Dispatcher`] then delivers that work, retrying with backoff until the receiver
//! has it. Nothing is lost while billing-service or the broker is down, and since
//! billing is idempotent per patient and every event carries a unique id, a delivery
//! repeated after a crash creates no duplicate downstream.
//!
//! A pass of the dispatcher (`dispatcher`) claims a batch of due rows (`claim`),
//! delivers them (`delivery`) and settles the outcomes (`settle`) in one transaction.

mod backpressure;
mod claim;
mod cloudwatch;
mod delivery;
mod destination;
mod dispatcher;
mod gauges;
mod message;
mod metrics;
mod settle;
mod wakeup;

pub use self::{
    backpressure::{Backpressure, HOLD_PER_LAG, LAG_LIMIT, MAX_HOLD},
    cloudwatch::{emf_line, publish_to_cloudwatch},
    destination::{Destination, OUTBOX_LOCKS},
    dispatcher::Dispatcher,
    gauges::{Depth, depths},
    message::{OutboxMessage, billing_close_message, billing_message, deleted_event_message, enqueue, event_message},
    metrics::register_metrics,
    settle::DEAD_AFTER_SAME_FAILURES,
    wakeup::Wakeup,
};
