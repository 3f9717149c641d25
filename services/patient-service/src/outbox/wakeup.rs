//! The nudge from a committed change to the dispatcher, so delivery does not wait for
//! the next poll.

use std::sync::Arc;

use tokio::sync::Notify;

use super::destination::Destination;

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

    pub(super) fn of(&self, destination: Destination) -> &Notify {
        match destination {
            Destination::Billing => &self.billing,
            Destination::BillingClose => &self.billing_close,
            Destination::PatientEvent => &self.events,
        }
    }
}
