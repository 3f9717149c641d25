//! W3C trace context (`traceparent`, `tracestate`) across every hop of a request: HTTP
//! headers (gateway → services), gRPC metadata (outbox → billing), Kafka message
//! headers (outbox → analytics) and the outbox row in between, so that one create is
//! one trace from the gateway to analytics' insert. The propagator is installed by
//! [`crate::telemetry`].

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
    trace::TraceContextExt as _,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C headers; a client may send them (its trace is continued).
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// The context a caller sent in `headers` (none: a new trace starts).
pub fn from_headers(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's context into `headers` (replacing what was there).
pub fn inject_current(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
}

/// The current span's context as text fields (`traceparent`, and `tracestate` when
/// there is one): what the outbox stores with a row and what travels in gRPC metadata
/// and Kafka headers.
pub fn current_fields() -> HashMap<String, String> {
    let context = tracing::Span::current().context();
    let mut fields = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut fields));
    fields
}

/// The current span's `traceparent`, if it has a valid context.
pub fn current_traceparent() -> Option<String> {
    current_fields().remove("traceparent")
}

/// A context from text fields (a stored or received `traceparent`).
pub fn from_fields(fields: &HashMap<String, String>) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(fields))
}

/// A context from one stored `traceparent`.
pub fn from_traceparent(traceparent: Option<&str>) -> Context {
    let fields = traceparent.map(|t| HashMap::from([("traceparent".to_string(), t.to_string())])).unwrap_or_default();
    from_fields(&fields)
}

/// Makes `parent` the parent of `span` and records the trace id in the span's
/// `trace_id` field (declared empty by the span), so that every log line inside it
/// carries the trace id.
pub fn adopt(span: &tracing::Span, parent: Context) {
    // A span that is disabled (filtered out) has no context to set.
    let _ = span.set_parent(parent);
    record_trace_id(span);
}

/// Records `span`'s trace id in its `trace_id` field.
pub fn record_trace_id(span: &tracing::Span) {
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}
