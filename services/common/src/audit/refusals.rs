//! The gateway's refusals as it reports them to auth-service's trail: the gateway has
//! no database, so it counts its own 401, 403 and 429 per client, route, status and
//! minute, and sends each finished minute's counts over one authenticated internal
//! call (`POST /internal/audit/refusals`, a service credential of the gateway's). One
//! entry per count: a flood of refusals is a few entries a minute, not a write storm.

use std::net::IpAddr;

use axum::http::StatusCode;
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::entry::{Access, Action, SERVICE_ROLE};

/// Where auth-service takes the gateway's reports (not routed by the gateway).
pub const REFUSALS_PATH: &str = "/internal/audit/refusals";
/// The most counts one report may carry.
pub const MAX_REFUSALS_PER_REPORT: usize = 10_000;
/// The statuses the gateway reports.
pub const REFUSAL_STATUSES: [StatusCode; 3] =
    [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::TOO_MANY_REQUESTS];
const MAX_ROUTE_CHARS: usize = 200;

/// How many times the gateway refused one client on one route with one status in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusalCount {
    /// `None`: the counts past the gateway's limit of distinct clients, together.
    pub client: Option<IpAddr>,
    /// The route as the gateway matched it (`GET /api/patients/{*rest}`).
    pub route: String,
    pub status: u16,
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    pub count: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefusalReport {
    pub refusals: Vec<RefusalCount>,
}

/// The start of the minute `at` is in.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(at)
}

impl RefusalCount {
    /// The entry this count becomes in the trail, reported by `reporter`; `Err` names
    /// what is wrong with it.
    pub fn access(&self, reporter: &str) -> Result<Access, String> {
        let status = StatusCode::from_u16(self.status)
            .ok()
            .filter(|s| REFUSAL_STATUSES.contains(s))
            .ok_or_else(|| format!("status: must be one of 401, 403, 429, not {}", self.status))?;
        let route = self.route.trim();
        if route.is_empty() || route.chars().count() > MAX_ROUTE_CHARS || route.chars().any(char::is_control) {
            return Err(format!("route: must be 1 to {MAX_ROUTE_CHARS} printable characters"));
        }
        if self.count == 0 || i32::try_from(self.count).is_err() {
            return Err("count: must be a positive 32-bit number".into());
        }
        if minute_of(self.minute) != self.minute {
            return Err("minute: must be the start of a minute".into());
        }
        let mut access = Access::by(reporter, SERVICE_ROLE, Action::GatewayRefusal, status)
            .subject(route)
            .detail(format!("minute {}", self.minute.format("%Y-%m-%dT%H:%MZ")))
            .from_client(None, self.client);
        access.count = i32::try_from(self.count).unwrap_or(i32::MAX);
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count() -> RefusalCount {
        RefusalCount {
            client: Some([10, 0, 0, 7].into()),
            route: "GET /api/patients".into(),
            status: 401,
            minute: minute_of(Utc::now()),
            count: 17,
        }
    }

    #[test]
    fn a_count_becomes_one_entry_and_bad_ones_are_named() {
        let access = count().access("api-gateway").expect("valid");
        assert_eq!((access.action, access.count, access.outcome), (Action::GatewayRefusal, 17, 401));
        assert_eq!(access.subject.as_deref(), Some("GET /api/patients"));
        let field = |c: RefusalCount| c.access("api-gateway").expect_err("bad").split(':').next().map(str::to_string);
        assert_eq!(field(RefusalCount { status: 500, ..count() }).as_deref(), Some("status"));
        assert_eq!(field(RefusalCount { route: " ".into(), ..count() }).as_deref(), Some("route"));
        assert_eq!(field(RefusalCount { route: "a\nb".into(), ..count() }).as_deref(), Some("route"));
        assert_eq!(field(RefusalCount { count: 0, ..count() }).as_deref(), Some("count"));
        assert_eq!(field(RefusalCount { count: u32::MAX, ..count() }).as_deref(), Some("count"));
        let late = count().minute + chrono::Duration::seconds(3);
        assert_eq!(field(RefusalCount { minute: late, ..count() }).as_deref(), Some("minute"));
    }
}
