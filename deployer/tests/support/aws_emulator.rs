//! An AWS endpoint for the tests that fills one gap of moto: the MSK API's
//! GetBootstrapBrokers (`GET /v1/clusters/{clusterArn}/bootstrap-brokers`), answered
//! with the documented response shape (MSK API reference, "BootstrapBrokers": JSON
//! members `bootstrapBrokerString`, `bootstrapBrokerStringTls`,
//! `bootstrapBrokerStringSaslScram`; errors as
//! `{"message", "invalidParameter"}` with `x-amzn-ErrorType`) from the clusters the
//! test declares. Every other request is forwarded unchanged to moto, so Secrets
//! Manager, ECS and the rest are moto's real implementations.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::{Body, to_bytes},
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

/// A cluster's brokers, as MSK reports them.
#[derive(Debug, Clone)]
pub struct ClusterBrokers {
    /// Plaintext listener (9092), when the cluster allows it.
    pub plaintext: Option<String>,
    /// TLS listener without authentication (9094), when the cluster allows it.
    pub tls: Option<String>,
    /// SASL/SCRAM listener over TLS (9096), when SCRAM authentication is on.
    pub sasl_scram: Option<String>,
}

#[derive(Clone)]
struct Shared {
    moto: String,
    clusters: Arc<Mutex<BTreeMap<String, ClusterBrokers>>>,
    /// GetBootstrapBrokers calls served, for the test to see the step asked.
    calls: Arc<Mutex<usize>>,
    http: reqwest::Client,
}

pub struct AwsEmulator {
    pub url: String,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AwsEmulator {
    /// Starts on a free loopback port, forwarding to `moto_url`.
    pub fn start(moto_url: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Shared {
            moto: moto_url.trim_end_matches('/').to_string(),
            clusters: Arc::default(),
            calls: Arc::default(),
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/v1/clusters/{arn}/bootstrap-brokers", get(bootstrap_brokers))
            .fallback(forward)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        Self { url, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// Declares (or changes) a cluster's brokers.
    pub fn set_cluster(&self, arn: &str, brokers: ClusterBrokers) {
        self.shared.clusters.lock().expect("clusters").insert(arn.to_string(), brokers);
    }

    pub fn bootstrap_broker_calls(&self) -> usize {
        *self.shared.calls.lock().expect("calls")
    }
}

impl Drop for AwsEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn msk_error(status: StatusCode, kind: &str, message: String) -> Response {
    let mut response = (status, Json(json!({ "message": message, "invalidParameter": "clusterArn" }))).into_response();
    response.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_str(kind).expect("header"));
    response
}

async fn bootstrap_brokers(State(shared): State<Shared>, Path(arn): Path<String>) -> Response {
    *shared.calls.lock().expect("calls") += 1;
    let found = shared.clusters.lock().expect("clusters").get(&arn).cloned();
    match found {
        Some(brokers) => {
            let members = [
                ("bootstrapBrokerString", brokers.plaintext),
                ("bootstrapBrokerStringTls", brokers.tls),
                ("bootstrapBrokerStringSaslScram", brokers.sasl_scram),
            ];
            let body: serde_json::Map<String, serde_json::Value> =
                members.into_iter().filter_map(|(name, value)| Some((name.to_string(), json!(value?)))).collect();
            Json(serde_json::Value::Object(body)).into_response()
        }
        None => msk_error(StatusCode::NOT_FOUND, "NotFoundException", format!("Cluster {arn} not found")),
    }
}

/// Hop-by-hop and length headers are not copied: each side sets its own.
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !matches!(name.as_str(), "host" | "content-length" | "transfer-encoding" | "connection") {
            to.append(name.clone(), value.clone());
        }
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(body) = to_bytes(body, 64 << 20).await else {
        return (StatusCode::BAD_REQUEST, "request body unreadable").into_response();
    };
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    let sent = shared
        .http
        .request(parts.method.clone(), format!("{}{path}", shared.moto))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("moto: {e}")).into_response(),
    };
    let status = upstream.status();
    let mut response_headers = HeaderMap::new();
    copy_headers(upstream.headers(), &mut response_headers);
    let bytes = upstream.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}
