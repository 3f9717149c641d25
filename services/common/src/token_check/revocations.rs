//! The sessions that have ended, as auth-service publishes them: each service follows
//! the feed (`GET /internal/revocations?after=<cursor>`) every [`POLL_INTERVAL`] and
//! refuses any token of an ended session, cached or not. A revocation is kept until
//! the last token of its session has expired.
//!
//! Fail closed: when the feed has not been read for [`MAX_STALENESS`] (auth-service or
//! its database unreachable), protected routes answer 503, because the service can no
//! longer promise that an ended session's tokens are refused within that time.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::Uri;
use http_body_util::{BodyExt, Empty, Limited};
use uuid::Uuid;

use super::TokenError;
use crate::{http_client::HttpClient, revocation::RevocationFeed};

/// How often the feed is read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The oldest view of the feed a token is checked against; older, and protected
/// routes answer 503. Also the promise: an ended session is refused within this.
pub const MAX_STALENESS: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The ended sessions this service knows of, and how fresh that knowledge is.
pub struct Revocations {
    feed: Uri,
    client: HttpClient,
    state: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    ended: HashMap<Uuid, DateTime<Utc>>,
    cursor: i64,
    synced_at: Option<Instant>,
}

impl Revocations {
    /// Follows the feed at `feed` (auth-service's `/internal/revocations`).
    pub fn new(feed: Uri, client: HttpClient) -> Self {
        Self { feed, client, state: RwLock::new(Known::default()) }
    }

    /// `Ok` when session `sid` has not ended, as of a view of the feed at most
    /// [`MAX_STALENESS`] old.
    pub fn check(&self, sid: Uuid) -> Result<(), TokenError> {
        let known = self.state.read().map_err(|_| TokenError::RevocationsStale)?;
        if known.synced_at.is_none_or(|at| at.elapsed() > MAX_STALENESS) {
            return Err(TokenError::RevocationsStale);
        }
        if known.ended.contains_key(&sid) {
            return Err(TokenError::SessionEnded);
        }
        Ok(())
    }

    /// Whether the view of the feed is fresh enough to serve protected routes.
    pub fn ready(&self) -> Result<(), String> {
        let known = self.state.read().map_err(|_| "revocations lock poisoned".to_string())?;
        match known.synced_at {
            Some(at) if at.elapsed() <= MAX_STALENESS => Ok(()),
            Some(at) => Err(format!("revocation feed last read {}s ago", at.elapsed().as_secs())),
            None => Err("revocation feed not read yet".into()),
        }
    }

    /// Reads the feed until it is caught up; returns how many revocations were new.
    pub async fn sync(&self) -> anyhow::Result<usize> {
        let mut added = 0;
        loop {
            let after = self.state.read().map_err(|_| anyhow::anyhow!("lock poisoned"))?.cursor;
            let page = self.fetch(after).await?;
            let full = page.is_full();
            let mut known = self.state.write().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
            if page.cursor < after {
                // The feed started again (a new database): so does the follower.
                tracing::warn!(cursor = page.cursor, after, "the revocation feed restarted");
                known.cursor = 0;
                continue;
            }
            added += page.revocations.len();
            for entry in page.revocations {
                known.ended.insert(entry.session_id, entry.until);
            }
            known.cursor = page.cursor;
            let now = Utc::now();
            known.ended.retain(|_, until| *until > now);
            if !full {
                known.synced_at = Some(Instant::now());
                return Ok(added);
            }
        }
    }

    /// Follows the feed for ever; failures are logged (once per outage) and retried.
    pub async fn follow(&self) {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match self.sync().await {
                Ok(added) => {
                    if failing {
                        tracing::info!("revocation feed readable again");
                    }
                    if added > 0 {
                        tracing::debug!(added, "sessions ended");
                    }
                    failing = false;
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, feed = %self.feed, "cannot read the revocation feed");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    async fn fetch(&self, after: i64) -> anyhow::Result<RevocationFeed> {
        let uri: Uri = format!("{}?after={after}", self.feed).parse()?;
        let request = http::Request::get(uri).body(axum::body::Body::new(Empty::<Bytes>::new()))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request)).await??;
        anyhow::ensure!(response.status().is_success(), "the revocation feed answered {}", response.status());
        let body = Limited::new(response.into_body(), MAX_PAGE_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the revocation feed: {e}"))?
            .to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }
}
