//! The revocation feed: the sessions that have ended, as auth-service publishes them
//! and the gateways follow them. One definition for both sides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// auth-service's feed (internal: the gateway routes no `/internal` path).
pub const FEED_PATH: &str = "/internal/revocations";
/// The most revocations one page holds; a follower asks again while pages are full.
pub const PAGE: usize = 10_000;

/// One ended session: its tokens are refused until `until`, when the last of them has
/// expired anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    pub seq: i64,
    pub session_id: Uuid,
    pub until: DateTime<Utc>,
}

/// A page of the feed: the revocations after the asked cursor (a `seq`; revocations
/// commit in `seq` order, so none that is still to commit is passed), oldest first, and
/// the cursor to ask with next. A cursor below the one asked means the feed started
/// again (a new database): the follower starts again from 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationFeed {
    pub revocations: Vec<Revocation>,
    pub cursor: i64,
}

impl RevocationFeed {
    /// Whether more may follow at once (the page was full).
    pub fn is_full(&self) -> bool {
        self.revocations.len() >= PAGE
    }
}
