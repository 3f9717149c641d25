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
//! A report that fails to arrive is kept and sent again; one auth-service refuses (a
//! 4xx, which a retry would not change) is logged and dropped. The counts stay bounded:
//! a route is named by its standard method (any other is `OTHER`) and its matched
//! path, and past [`MAX_COUNTS`] distinct counts new ones are counted together, with
//! no address and route `(overflow)`. Reports carry at most
//! [`MAX_REFUSALS_PER_REPORT`] counts each. A gateway stopped loses the counts of its
//! unfinished minute.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use axum::{
    body::Body,
    http::{self, StatusCode, Uri, header},
};
use chrono::{DateTime, Utc};
use pulsetrack_common::{
    audit::{MAX_REFUSALS_PER_REPORT, REFUSAL_STATUSES, REFUSALS_PATH, RefusalCount, RefusalReport, minute_of},
    http_client::HttpClient,
    service_auth::{API_GATEWAY, AUTH_SERVICE, CredentialMinter, ServiceSecret},
};
use std::sync::Arc;

/// How often finished minutes are reported.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// The most distinct counts held (a minute of a flood from this many addresses).
pub const MAX_COUNTS: usize = 50_000;
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The route of the counts past [`MAX_COUNTS`].
const OVERFLOW_ROUTE: &str = "(overflow)";

/// Why a report did not land: it may arrive if sent again, or it was refused.
enum Undelivered {
    Failed(String),
    Refused(String),
}

/// A request's method as a route names it: the standard ones, else `OTHER` (a method
/// is any token a client makes up).
pub fn method_name(method: &http::Method) -> &'static str {
    use http::Method as M;
    [M::GET, M::HEAD, M::POST, M::PUT, M::DELETE, M::PATCH, M::OPTIONS, M::CONNECT, M::TRACE]
        .iter()
        .find(|m| *m == method)
        .map_or("OTHER", |m| m.as_str())
}

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

    /// Counts one refusal of `client` on `route` with `status` (401, 403 or 429; any
    /// other is not a refusal and not counted), now.
    pub fn count(&self, client: IpAddr, route: String, status: StatusCode) {
        if !REFUSAL_STATUSES.contains(&status) {
            return;
        }
        let minute = minute_of(Utc::now());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = Key { client: Some(client), route, status: status.as_u16(), minute };
        if counts.len() >= MAX_COUNTS && !counts.contains_key(&key) {
            key.client = None;
            key.route = OVERFLOW_ROUTE.into();
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

    /// Sends the finished minutes' counts to auth-service, in reports of at most
    /// [`MAX_REFUSALS_PER_REPORT`]: those that do not arrive are kept for the next try,
    /// those it refuses are dropped (logged). Returns how many it took.
    pub async fn report_finished(&self) -> Result<usize, String> {
        let mut finished = self.take_finished(Utc::now());
        let mut taken = 0;
        while !finished.is_empty() {
            let rest = finished.split_off(finished.len().min(MAX_REFUSALS_PER_REPORT));
            let report = RefusalReport { refusals: finished };
            match self.send(&report).await {
                Ok(()) => taken += report.refusals.len(),
                Err(Undelivered::Refused(why)) => {
                    tracing::error!(counts = report.refusals.len(), %why, "auth-service refused a refusal report: dropped");
                }
                Err(Undelivered::Failed(why)) => {
                    self.put_back(report.refusals);
                    self.put_back(rest);
                    return Err(why);
                }
            }
            finished = rest;
        }
        Ok(taken)
    }

    async fn send(&self, report: &RefusalReport) -> Result<(), Undelivered> {
        let failed = |e: &dyn std::fmt::Display| Undelivered::Failed(e.to_string());
        let body = serde_json::to_vec(report).map_err(|e| failed(&e))?;
        let authorization = self.minter.authorization().map_err(|e| failed(&e))?;
        let request = http::Request::post(self.report_url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, authorization)
            .body(Body::from(body))
            .map_err(|e| failed(&e))?;
        let response = tokio::time::timeout(REPORT_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| failed(&"auth-service did not answer in time"))?
            .map_err(|e| failed(&e))?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(()),
            status if status.is_client_error() => Err(Undelivered::Refused(format!("auth-service answered {status}"))),
            status => Err(failed(&format!("auth-service answered {status}"))),
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
    fn methods_are_named_from_a_fixed_set() {
        assert_eq!(method_name(&http::Method::GET), "GET");
        let made_up = http::Method::from_bytes("X".repeat(300).as_bytes()).expect("a token");
        assert_eq!(method_name(&made_up), "OTHER");
    }

    #[test]
    fn past_the_limit_new_clients_are_counted_together() {
        let r = refusals();
        for i in 0..MAX_COUNTS as u32 + 10 {
            r.count(IpAddr::from(i.to_be_bytes()), "GET /x".into(), StatusCode::FORBIDDEN);
        }
        let counts = r.take_finished(Utc::now() + chrono::Duration::minutes(1));
        assert_eq!(counts.len(), MAX_COUNTS + 1);
        let overflow = counts.iter().find(|c| c.client.is_none()).expect("the overflow count");
        assert_eq!((overflow.route.as_str(), overflow.count), (OVERFLOW_ROUTE, 10));
    }
}
