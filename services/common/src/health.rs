//! `/health` (liveness: the process answers) and `/ready` (readiness: every dependency
//! answers; 503 while one does not). Probe failures are logged, not returned: at DEBUG
//! until the service has first been ready (a starting service is expected to fail its
//! probes), at WARN afterwards (a dependency was lost).

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Extension, Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Map, Value, json};
use sqlx::PgPool;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;
type DetailFuture = Pin<Box<dyn Future<Output = Option<Value>> + Send>>;
type DetailFn = Arc<dyn Fn() -> DetailFuture + Send + Sync>;

/// Liveness: the process answers.
pub const HEALTH_PATH: &str = "/health";
/// Readiness: every dependency answers.
pub const READY_PATH: &str = "/ready";

/// How long one readiness probe may take before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The named dependency checks behind `/ready`, and the details `/health` reports.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, CheckFn)>,
    details: Vec<(&'static str, DetailFn)>,
    /// Whether a probe has passed since the process started.
    been_ready: Arc<AtomicBool>,
}

/// Marks a `/ready` 503: the probe's answer, not a server failure, so the access log
/// does not report it as one (see `request_id::layer`).
#[derive(Clone, Copy, Debug)]
pub struct NotReady;

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check; `Err` means the dependency is down (the reason is logged).
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// Adds a `SELECT 1` probe on the pool.
    pub fn postgres(self, pool: PgPool) -> Self {
        self.check("postgres", move || {
            let pool = pool.clone();
            async move { crate::db::ping(&pool).await.map_err(|e| e.to_string()) }
        })
    }

    /// Adds a named field to `/health` (for operators: queue depths and the like). It
    /// never changes the status: `null` when it cannot be told within the probe timeout.
    pub fn detail<F, Fut>(mut self, name: &'static str, detail: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Value>> + Send + 'static,
    {
        self.details.push((name, Arc::new(move || Box::pin(detail()))));
        self
    }

    /// `{"status": "UP"}` and each detail.
    pub async fn health(&self) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), json!("UP"));
        for (name, detail) in &self.details {
            let value = tokio::time::timeout(PROBE_TIMEOUT, detail()).await.ok().flatten();
            body.insert(name.to_string(), value.unwrap_or(Value::Null));
        }
        Value::Object(body)
    }

    /// Runs every check concurrently; returns whether all passed and each one's state.
    pub async fn probe(&self) -> (bool, Map<String, Value>) {
        let mut set = tokio::task::JoinSet::new();
        for (name, check) in &self.checks {
            let (name, fut) = (*name, check());
            set.spawn(async move {
                match tokio::time::timeout(PROBE_TIMEOUT, fut).await {
                    Ok(result) => (name, result),
                    Err(_) => (name, Err("timed out".to_string())),
                }
            });
        }
        let mut results = Vec::with_capacity(self.checks.len());
        while let Some(joined) = set.join_next().await {
            results.push(joined.unwrap_or(("check", Err("check panicked".to_string()))));
        }
        results.sort_by_key(|(name, _)| *name);
        let been_ready = self.been_ready.load(Ordering::Relaxed);
        let mut all_up = true;
        let mut states = Map::new();
        for (name, outcome) in results {
            if let Err(reason) = &outcome {
                all_up = false;
                if been_ready {
                    tracing::warn!(dependency = name, %reason, "readiness check failed");
                } else {
                    tracing::debug!(dependency = name, %reason, "readiness check failed (not ready yet)");
                }
            }
            states.insert(name.to_string(), json!(if outcome.is_ok() { "UP" } else { "DOWN" }));
        }
        if all_up && !been_ready && !self.been_ready.swap(true, Ordering::Relaxed) {
            tracing::info!("ready: every dependency answers");
        }
        (all_up, states)
    }

    /// `/health` and `/ready` for any router state.
    pub fn routes<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let this = Arc::new(self);
        Router::new()
            .route(HEALTH_PATH, get(health).with_state(this.clone()))
            .route(READY_PATH, get(ready).with_state(this))
    }
}

/// Liveness: 200 whenever the process answers, with the details.
async fn health(State(readiness): State<Arc<Readiness>>) -> Json<Value> {
    Json(readiness.health().await)
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> Response {
    let (up, checks) = readiness.probe().await;
    let body = Json(json!({"status": if up { "UP" } else { "DOWN" }, "checks": checks}));
    if up {
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Extension(NotReady), body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_is_down_when_one_check_fails() {
        let readiness = Readiness::new()
            .check("good", || async { Ok(()) })
            .check("bad", || async { Err("connection refused".to_string()) });
        let (up, states) = readiness.probe().await;
        assert!(!up);
        assert_eq!(states["good"], "UP");
        assert_eq!(states["bad"], "DOWN");
    }

    #[tokio::test]
    async fn health_reports_details_and_null_for_an_unknown_one() {
        let readiness = Readiness::new()
            .detail("queue", || async { Some(json!({"pending": 3})) })
            .detail("unknown", || async { None });
        let body = readiness.health().await;
        assert_eq!(body, json!({"status": "UP", "queue": {"pending": 3}, "unknown": null}));
    }

    #[tokio::test]
    async fn a_not_ready_answer_is_marked_for_the_access_log() {
        let router: Router = Readiness::new().check("bad", || async { Err("down".to_string()) }).routes();
        let request = axum::http::Request::get(READY_PATH).body(axum::body::Body::empty()).expect("request");
        let response = tower::ServiceExt::oneshot(router, request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.extensions().get::<NotReady>().is_some());
    }

    #[tokio::test]
    async fn ready_is_up_when_all_pass() {
        let (up, _) = Readiness::new().check("good", || async { Ok(()) }).probe().await;
        assert!(up);
    }
}
