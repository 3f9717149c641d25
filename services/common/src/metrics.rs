//! Prometheus metrics (issue 16): every service serves `GET /metrics` in the text
//! exposition format, with
//! - `http_server_requests_total` and `http_server_request_duration_seconds` by method,
//!   route (the matched route pattern, never the raw path) and status;
//! - `db_pool_connections{state}`, `db_pool_max_connections` and
//!   `db_pool_acquire_wait_seconds` (from [`crate::pool_wait`]) for a Postgres pool;
//! - whatever the service registers itself (the outbox, the consumer's lag, logins ...),
//!   some of it read fresh at each scrape ([`Metrics::on_scrape`]).
//!
//! `/metrics` is for the operator's scraper on the service's own port: a request that
//! came through a proxy (it carries `X-Forwarded-For`, which the gateway and the ALB
//! always set) is answered 404, so the gateway's metrics are not public on :4004.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Metric, Registry},
};
use sqlx::PgPool;

use crate::{ApiError, identity::CLIENT_ADDR_HEADER};

pub const METRICS_PATH: &str = "/metrics";
/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Inner {
    registry: Mutex<Registry>,
    refreshers: Mutex<Vec<Refresh>>,
    requests: Family<HttpLabels, Counter>,
    durations: Family<HttpLabels, Histogram>,
}

/// A service's metrics: the registry, the HTTP metrics, and what is read at each scrape.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets from 0.5 ms to ~16 s, doubling: request latencies of a local service.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Self {
        let requests = Family::<HttpLabels, Counter>::default();
        let durations = Family::<HttpLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let mut registry = Registry::default();
        registry.register("http_server_requests", "HTTP requests answered", requests.clone());
        registry.register_with_unit(
            "http_server_request_duration",
            "Time from a request's arrival to its response's head",
            prometheus_client::registry::Unit::Seconds,
            durations.clone(),
        );
        Self(Arc::new(Inner {
            registry: Mutex::new(registry),
            refreshers: Mutex::new(Vec::new()),
            requests,
            durations,
        }))
    }

    /// Registers one more metric (a counter, gauge, histogram or family of them).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.0.registry.lock().unwrap_or_else(PoisonError::into_inner).register(name, help, metric);
    }

    /// Runs `refresh` before each scrape (gauges read from a database or a pool).
    pub fn on_scrape<F, Fut>(&self, refresh: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let refresh: Refresh = Arc::new(move || Box::pin(refresh()));
        self.0.refreshers.lock().unwrap_or_else(PoisonError::into_inner).push(refresh);
    }

    /// `db_pool_connections{state="idle"|"in_use"}`, `db_pool_max_connections` and
    /// `db_pool_acquire_wait_seconds`.
    pub fn track_pool(&self, pool: PgPool, max_connections: u32) {
        self.register(
            "db_pool_acquire_wait_seconds",
            "Time from asking the Postgres pool for a connection to holding one",
            crate::pool_wait::ACQUIRE_WAIT.clone(),
        );
        let connections = Family::<StateLabel, Gauge>::default();
        let max = Gauge::<i64>::default();
        max.set(i64::from(max_connections));
        self.register("db_pool_connections", "Connections of the Postgres pool, by state", connections.clone());
        self.register("db_pool_max_connections", "The Postgres pool's size limit", max);
        self.on_scrape(move || {
            let (size, idle) = (i64::from(pool.size()), i64::try_from(pool.num_idle()).unwrap_or(i64::MAX));
            connections.get_or_create(&StateLabel { state: "idle" }).set(idle);
            connections.get_or_create(&StateLabel { state: "in_use" }).set(size - idle);
            std::future::ready(())
        });
    }

    /// The text exposition of every metric, refreshed.
    pub async fn render(&self) -> Result<String, std::fmt::Error> {
        let refreshers: Vec<Refresh> = self.0.refreshers.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for refresh in refreshers {
            refresh().await;
        }
        let mut text = String::new();
        encode(&mut text, &self.0.registry.lock().unwrap_or_else(PoisonError::into_inner))?;
        Ok(text)
    }

    /// `router` with `GET /metrics` and the HTTP metrics around every route.
    pub fn instrument(&self, router: Router) -> Router {
        router
            .route(METRICS_PATH, get(scrape).with_state(self.clone()))
            .layer(middleware::from_fn_with_state(self.clone(), observe))
    }
}

/// Counts and times one request under its route pattern.
async fn observe(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let response = next.run(request).await;
    let labels = HttpLabels { method, route, status: response.status().as_u16() };
    metrics.0.requests.get_or_create(&labels).inc();
    metrics.0.durations.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}

async fn scrape(State(metrics): State<Metrics>, headers: HeaderMap) -> Response {
    if headers.contains_key(CLIENT_ADDR_HEADER) {
        return ApiError::not_found("no such route").into_response();
    }
    match metrics.render().await {
        Ok(text) => ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            ApiError::internal().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_route_pattern_and_proxied_scrapes_refused() {
        let metrics = Metrics::new();
        let hits = Counter::<u64>::default();
        metrics.register("things", "Things", hits.clone());
        let app = metrics.instrument(Router::new().route("/items/{id}", get(|| async { "ok" })));
        for id in ["1", "2"] {
            let request = Request::get(format!("/items/{id}")).body(Body::empty()).expect("request");
            assert_eq!(app.clone().oneshot(request).await.expect("response").status(), 200);
        }
        hits.inc();
        let response = app.clone().oneshot(Request::get("/metrics").body(Body::empty()).expect("request")).await;
        let text = to_bytes(response.expect("response").into_body(), 1 << 20).await.expect("body");
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.contains(r#"http_server_requests_total{method="GET",route="/items/{id}",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains("http_server_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains("things_total 1"), "{text}");
        let proxied = Request::get("/metrics").header(CLIENT_ADDR_HEADER, "203.0.113.1").body(Body::empty());
        assert_eq!(app.oneshot(proxied.expect("request")).await.expect("response").status(), 404);
    }
}
