//! Backpressure from the dispatcher to creates: how long a create is held so that
//! intake does not outrun delivery.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::destination::Destination;

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
    pub(super) fn record(&self, destination: Destination, lag: Duration) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
