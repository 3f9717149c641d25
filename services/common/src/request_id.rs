//! Request ids: every request gets an `X-Request-Id` (kept when a caller sent a sane
//! one, generated otherwise), recorded on its tracing span, returned to the client and
//! forwarded by the gateway to upstreams, so one id follows a request across services.

use axum::{Router, http::Request};
use http::{HeaderName, HeaderValue};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Generates a UUIDv4 for requests that arrive without a usable id.
#[derive(Clone, Copy, Default)]
pub struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok().map(RequestId::new)
    }
}

/// A caller-provided id is kept only if it is short printable ASCII; anything else is
/// dropped so that logs cannot be polluted through it.
pub fn is_acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The request id of a request (after [`layer`] ran), for handlers that call upstreams.
pub fn of<B>(request: &Request<B>) -> Option<&HeaderValue> {
    request.headers().get(REQUEST_ID_HEADER)
}

/// Wraps a router: sanitize or set the id, open a span carrying it, log one line per
/// response, and echo the id on the response.
pub fn layer<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(
        ServiceBuilder::new()
            .map_request(|mut request: Request<axum::body::Body>| {
                if request.headers().get(REQUEST_ID_HEADER).is_some_and(|v| !is_acceptable(v)) {
                    request.headers_mut().remove(REQUEST_ID_HEADER);
                }
                request
            })
            .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<axum::body::Body>| {
                        let request_id = of(request).and_then(|v| v.to_str().ok()).unwrap_or("-");
                        let span = tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = %request.uri().path(),
                            request_id = %request_id,
                            trace_id = tracing::field::Empty,
                        );
                        // The caller's trace (the gateway's, or a client's) goes on here.
                        crate::trace_context::adopt(&span, crate::trace_context::from_headers(request.headers()));
                        span
                    })
                    .on_request(())
                    .on_response(log_response)
                    // Server errors are logged by `log_response`, which can tell a
                    // readiness probe's 503 from a failure.
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER)),
    )
}

/// The access log, inside the request's span: server errors at ERROR, client errors at
/// INFO, successes at DEBUG (a line per request was a fifth of the create path's cost
/// under load: bench/RESULTS.md). A `/ready` 503 is the probe's answer, not a failure:
/// DEBUG (the readiness checks log what is down).
fn log_response<B>(response: &axum::http::Response<B>, latency: std::time::Duration, _span: &tracing::Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() && response.extensions().get::<crate::health::NotReady>().is_none() {
        tracing::error!(status, latency_ms, "response failed");
    } else if (400..500).contains(&status) {
        tracing::info!(status, latency_ms, "finished processing request");
    } else {
        tracing::debug!(status, latency_ms, "finished processing request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert!(is_acceptable(&HeaderValue::from_static("abc-123")));
        assert!(!is_acceptable(&HeaderValue::from_static("has space")));
        assert!(!is_acceptable(&HeaderValue::from_str(&"x".repeat(129)).expect("ascii")));
    }
}
