//! Where outbox rows go, and the advisory lock that lets one dispatcher at a time
//! deliver each destination.

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
