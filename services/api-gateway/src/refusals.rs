//! The gateway's own refusals (401, 403, 429), recorded in auth-service's audit trail.
//!
//! The gateway has no database, and a refusal is cheap to cause: recording each one
//! would let a flood become a write storm on the trail. So each refusal only counts,
//! in memory, per client address, route (as matched, never the raw path), status and
//! minute; every [`REPORT_EVERY`] the finished minutes go to auth-service in one
//! authenticated internal call ([`pulsetrack_common::audit::REFUSALS_PATH`], a
//! service credential minted with `GATEWAY_AUDIT_SECRET`), one entry per count. Why
//! auth-service: refusals are authentication and authorization events, the ones its
//! trail holds; it is the one service every deployment has, and the gateway already
//! depends on it.
//!
//! A report that fails is kept and sent again (the counts stay bounded: past
//! [`MAX_COUNTS`] distinct counts, new clients are counted together, with no address).
//! A gateway stopped loses the counts of its unfinished minute.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{self, StatusCode, Uri, header},
    middleware::Next,
    response::Response,
};
use chrono::{DateTime, Utc};
use pulsetrack_common::{
    audit::{REFUSAL_STATUSES, REFUSALS_PATH, RefusalCount, RefusalReport, minute_of},
    http_client::HttpClient,
    service_auth::{API_GATEWAY, AUTH_SERVICE, CredentialMinter, ServiceSecret},
};
use std::sync::Arc;

use crate::gateway::Gateway;

/// How often finished minutes are reported.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// The most distinct counts held (a minute of a flood from this many addresses).
pub const MAX_COUNTS: usize = 50_000;
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// On a response the gateway itself refused (not one an upstream answered).
#[derive(Debug, Clone, Copy)]
pub struct Refused;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    client: Option<IpAddr>,
    route: String,
    status: u16,
    minute: DateTime<Utc>,
}

/// The counts not yet reported, and where they go.
pub struct Refusals {
    counts: Mutex<HashMap<Key, u32>>,
    client: HttpClient,
    report_url: Uri,
    minter: CredentialMinter,
}

impl Refusals {
    pub fn new(client: HttpClient, auth_url: &Uri, secret: &ServiceSecret) -> anyhow::Result<Self> {
        let base = auth_url.to_string();
        let report_url = format!("{}{REFUSALS_PATH}", base.trim_end_matches('/')).parse()?;
        Ok(Self {
            counts: Mutex::new(HashMap::new()),
            client,
            report_url,
            minter: CredentialMinter::new(secret, API_GATEWAY, AUTH_SERVICE),
        })
    }

    /// Counts one refusal of `client` on `route` with `status`, now.
    pub fn count(&self, client: IpAddr, route: String, status: StatusCode) {
        let minute = minute_of(Utc::now());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = Key { client: Some(client), route, status: status.as_u16(), minute };
        if counts.len() >= MAX_COUNTS && !counts.contains_key(&key) {
            key.client = None;
        }
        let n = counts.entry(key).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// The counts of the minutes before `now`'s, taken out.
    fn take_finished(&self, now: DateTime<Utc>) -> Vec<RefusalCount> {
        let current = minute_of(now);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let finished: Vec<Key> = counts.keys().filter(|k| k.minute < current).cloned().collect();
        finished
            .into_iter()
            .filter_map(|key| {
                let count = counts.remove(&key)?;
                Some(RefusalCount {
                    client: key.client,
                    route: key.route,
                    status: key.status,
                    minute: key.minute,
                    count,
                })
            })
            .collect()
    }

    /// Puts counts a report could not deliver back, to be sent again.
    fn put_back(&self, unsent: Vec<RefusalCount>) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for c in unsent {
            let key = Key { client: c.client, route: c.route, status: c.status, minute: c.minute };
            let n = counts.entry(key).or_insert(0);
            *n = n.saturating_add(c.count);
        }
    }

    /// Sends the finished minutes' counts to auth-service; kept for the next try when
    /// it does not take them.
    pub async fn report_finished(&self) -> Result<usize, String> {
        let finished = self.take_finished(Utc::now());
        if finished.is_empty() {
            return Ok(0);
        }
        let sent = finished.len();
        let report = RefusalReport { refusals: finished };
        match self.send(&report).await {
            Ok(()) => Ok(sent),
            Err(e) => {
                self.put_back(report.refusals);
                Err(e)
            }
        }
    }

    async fn send(&self, report: &RefusalReport) -> Result<(), String> {
        let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
        let authorization = self.minter.authorization().map_err(|e| e.to_string())?;
        let request = http::Request::post(self.report_url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, authorization)
            .body(Body::from(body))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(REPORT_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "auth-service did not answer in time".to_string())?
            .map_err(|e| e.to_string())?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(()),
            status => Err(format!("auth-service answered {status}")),
        }
    }
}

/// Reports the finished minutes every [`REPORT_EVERY`], for the gateway's life.
pub async fn report_every(refusals: Arc<Refusals>) {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match refusals.report_finished().await {
            Ok(0) => {}
            Ok(sent) => tracing::debug!(sent, "refusals reported to the audit trail"),
            Err(e) => tracing::error!(error = %e, "the gateway's refusals cannot be reported to the audit trail; kept"),
        }
    }
}

/// Counts the responses the gateway itself refused with 401, 403 or 429.
pub async fn count_refusals(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let client = gw.client(&request);
    let route = format!(
        "{} {}",
        request.method(),
        request.extensions().get::<MatchedPath>().map_or("(unmatched)", MatchedPath::as_str)
    );
    let response = next.run(request).await;
    if response.extensions().get::<Refused>().is_some() && REFUSAL_STATUSES.contains(&response.status()) {
        gw.refusals.count(client, route, response.status());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusals() -> Refusals {
        let secret = ServiceSecret::new("s".repeat(40)).expect("secret");
        let client = pulsetrack_common::http_client::http_client(None);
        Refusals::new(client, &"http://127.0.0.1:1".parse().expect("uri"), &secret).expect("refusals")
    }

    #[test]
    fn a_flood_is_one_count_per_client_route_status_and_minute() {
        let r = refusals();
        let client: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..1000 {
            r.count(client, "GET /api/patients".into(), StatusCode::UNAUTHORIZED);
        }
        r.count(client, "GET /api/patients".into(), StatusCode::TOO_MANY_REQUESTS);
        r.count([192, 0, 2, 2].into(), "GET /api/patients".into(), StatusCode::UNAUTHORIZED);
        assert!(r.take_finished(Utc::now()).is_empty(), "the current minute is not finished");
        let mut counts = r.take_finished(Utc::now() + chrono::Duration::minutes(1));
        counts.sort_by_key(|c| (c.client, c.status));
        let summary: Vec<(Option<IpAddr>, u16, u32)> = counts.iter().map(|c| (c.client, c.status, c.count)).collect();
        assert_eq!(summary, [(Some(client), 401, 1000), (Some(client), 429, 1), (Some([192, 0, 2, 2].into()), 401, 1)]);
        assert!(r.take_finished(Utc::now() + chrono::Duration::minutes(1)).is_empty(), "taken once");
        r.put_back(counts);
        assert_eq!(r.take_finished(Utc::now() + chrono::Duration::minutes(1)).len(), 3, "put back to be sent again");
    }

    #[test]
    fn past_the_limit_new_clients_are_counted_together() {
        let r = refusals();
        for i in 0..MAX_COUNTS as u32 + 10 {
            r.count(IpAddr::from(i.to_be_bytes()), "GET /x".into(), StatusCode::FORBIDDEN);
        }
        let counts = r.take_finished(Utc::now() + chrono::Duration::minutes(1));
        assert_eq!(counts.len(), MAX_COUNTS + 1);
        assert_eq!(counts.iter().find(|c| c.client.is_none()).map(|c| c.count), Some(10));
    }
}
