//! X-Ray through OpenTelemetry: opentelemetry-aws's id generator, propagator and exporter (with
//! its UDP daemon client), fed by `tracing-opentelemetry`.
//!
//! Spans are exported by a *simple* processor: each span is sent as one UDP datagram the moment
//! it ends (a non-blocking `send`, microseconds). Lambda freezes the process after the response,
//! so a batching processor would hold segments hostage; this way the request segment leaves
//! before the reply completes, with no flush call on the hot path.

use std::net::{SocketAddr, ToSocketAddrs};

use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::trace::xray_propagator::span_context_from_str;
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_aws::xray_exporter::{SegmentTranslator, XrayExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `AWS_XRAY_DAEMON_ADDRESS` is `host:port`, or `tcp:host:port udp:host:port` in some
/// environments; segments go to the UDP one.
pub fn daemon_address(value: &str) -> Result<SocketAddr, String> {
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value.trim());
    udp.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("AWS_XRAY_DAEMON_ADDRESS {value:?} is not a host:port"))
}

pub fn tracer_provider(daemon: SocketAddr, service: &str) -> Result<SdkTracerProvider, String> {
    let client = XrayDaemonClient::new(daemon).map_err(|e| format!("X-Ray daemon socket: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        // Honour the caller's decision (Lambda's `Sampled=0|1`); sample what starts here.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_simple_exporter(XrayExporter::new(client).with_translator(translator()))
        .with_resource(resource)
        .build())
}

/// Span attributes X-Ray has no field for, kept as segment metadata. The exporter drops the
/// rest (tracing's `code.*`, `thread.*`, …) rather than bloat every datagram; these are the
/// OpenTelemetry GenAI ones a cost question needs, and never any text.
pub const METADATA_ATTRIBUTES: &[&str] = &[
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.response.finish_reasons",
    "aws.bedrock.service_tier",
    "aws.bedrock.latency_ms",
    "aws.bedrock.guardrail.action",
    "aws.bedrock.guardrail.text_units",
];

fn translator() -> SegmentTranslator {
    SegmentTranslator::new().with_metadata_attrs(METADATA_ATTRIBUTES.iter().map(|a| a.to_string()))
}

/// Parent `span` on the caller's trace header when there is one; return the X-Ray trace id the
/// request belongs to (for logs and EMF), if it is traced at all.
pub fn continue_trace(span: &tracing::Span, header: Option<&str>) -> Option<String> {
    if let Some(parent) = header.and_then(span_context_from_str) {
        let trace_id = parent.trace_id();
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
        return Some(xray_trace_id(trace_id));
    }
    let own = span.context().span().span_context().clone();
    own.is_valid().then(|| xray_trace_id(own.trace_id()))
}

/// `1-5759e988-bd862e3fe1be46a994272793`: epoch seconds, then 96 random bits.
pub fn xray_trace_id(id: TraceId) -> String {
    let hex = format!("{id:032x}");
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_format() {
        let id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap();
        assert_eq!(xray_trace_id(id), "1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn daemon_address_forms() {
        assert_eq!(daemon_address("127.0.0.1:2000").unwrap().port(), 2000);
        let a = daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.1:2001").unwrap();
        assert_eq!(a.port(), 2001);
        assert!(daemon_address("nonsense").is_err());
    }
}
