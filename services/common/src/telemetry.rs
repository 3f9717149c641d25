//! Tracing setup: `RUST_LOG` filters the log lines (default `info`), `LOG_FORMAT=json`
//! gives one JSON object per line (what a log shipper wants), anything else
//! human-readable lines. Spans are also OpenTelemetry spans (W3C trace context, see
//! [`crate::trace_context`]): every request's log lines carry its `trace_id`, and with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set the spans are exported there over OTLP/gRPC.
//! Spans are recorded at INFO whatever `RUST_LOG` says, so that a quieter log does not
//! break the traces.

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider, SpanExporter},
};
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter, fmt, prelude::*, registry::LookupSpan};

use crate::{
    config::{self, Raw},
    settings::Logging,
};

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(service: &'static str) {
    let logging: Logging<Raw> = config::from_env();
    let endpoint = logging.otlp_endpoint.optional();
    let provider = match &endpoint {
        Some(endpoint) => {
            match opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build() {
                Ok(exporter) => provider(service, Some(exporter)),
                Err(e) => {
                    eprintln!("{service}: OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: cannot export spans: {e}");
                    provider::<opentelemetry_otlp::SpanExporter>(service, None)
                }
            }
        }
        None => provider::<opentelemetry_otlp::SpanExporter>(service, None),
    };
    if install(service, &logging, provider, true) {
        tracing::info!(service, otlp_endpoint = ?endpoint, "tracing initialised");
    }
}

/// A tracer provider for `service`, exporting in batches to `exporter` when given. Ids
/// are made and propagated either way; without an exporter the spans are not sampled,
/// so that nothing builds what nobody reads.
pub fn provider<E: SpanExporter + 'static>(service: &'static str, exporter: Option<E>) -> SdkTracerProvider {
    let resource = Resource::builder().with_attributes([KeyValue::new("service.name", service)]).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    match exporter {
        Some(exporter) => builder.with_batch_exporter(exporter).build(),
        None => builder.with_sampler(Sampler::AlwaysOff).build(),
    }
}

/// Installs the subscriber: log lines (when `logs`) and OpenTelemetry spans from
/// `provider`. Returns false when a subscriber was installed already.
pub fn install(service: &'static str, logging: &Logging<Raw>, provider: SdkTracerProvider, logs: bool) -> bool {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider);
    let spans = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(spans).with(crate::pool_wait::layer());
    let lines = logs.then(|| log_lines(logging));
    registry.with(lines).try_init().is_ok()
}

fn log_lines<S>(logging: &Logging<Raw>) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let filter =
        logging.filter.value.clone().and_then(|f| EnvFilter::try_new(f).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    let json = logging.format.optional().is_some_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        fmt::layer().json().flatten_event(true).with_current_span(true).with_filter(filter).boxed()
    } else {
        fmt::layer().with_target(false).with_filter(filter).boxed()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::prelude::*;

    use super::*;

    /// Without an exporter nothing is sampled, yet every span still has a trace id, which
    /// it logs and passes on.
    #[test]
    fn unexported_spans_still_carry_and_pass_on_a_trace_id() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = provider::<opentelemetry_otlp::SpanExporter>("test", None);
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
            crate::trace_context::adopt(&span, opentelemetry::Context::new());
            let _entered = span.enter();
            let traceparent = crate::trace_context::current_traceparent().expect("a traceparent");
            let trace_id = traceparent.split('-').nth(1).expect("its trace id");
            assert_ne!(trace_id, "00000000000000000000000000000000");
            // A child continues the trace.
            let child = tracing::info_span!("child", trace_id = tracing::field::Empty);
            crate::trace_context::adopt(&child, crate::trace_context::from_traceparent(Some(&traceparent)));
            let _in_child = child.enter();
            let passed_on = crate::trace_context::current_traceparent().expect("the child's traceparent");
            assert_eq!(passed_on.split('-').nth(1), Some(trace_id));
        });
    }
}
