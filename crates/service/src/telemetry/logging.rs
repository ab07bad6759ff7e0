//! Process set-up: the tracing subscriber (JSON log lines with Powertools-style keys, or readable
//! text on a terminal), the optional X-Ray pipeline, and the panic hook.
//!
//! The JSON formatter is ours (about 80 lines) because tracing-subscriber's JSON layout nests
//! fields and spans, while operators expect flat Powertools keys (`timestamp`, `level`,
//! `message`, `service`, `requestId`, `xrayTraceId`, `coldStart`, `functionName`, …), and the
//! request keys must come from the current request wherever the line is logged.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::ServiceConfig;
use crate::telemetry::context::RequestCtx;
use crate::telemetry::xray;

/// Noisy dependencies kept quiet unless asked for by name.
const QUIET: &str = "aws_smithy_runtime=warn,aws_config=warn,hyper=warn,hyper_util=warn,h2=warn,\
rustls=warn,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_aws=off,lambda_runtime=warn";

/// Keeps the tracer provider alive; shuts it down (flushing) when dropped.
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// How this process logs, from the environment: Lambda's advanced logging controls
/// (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`) in Lambda, `RUST_LOG` locally.
pub fn init(config: &ServiceConfig, in_lambda: bool) -> Result<TelemetryGuard, String> {
    init_with_writer(config, in_lambda, std::io::stdout)
}

/// As [`init`], logging to `writer` instead of stdout (benchmarks log to a sink).
pub fn init_with_writer<W>(
    config: &ServiceConfig,
    in_lambda: bool,
    writer: W,
) -> Result<TelemetryGuard, String>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let json = match std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref() {
        Some(f) if f.eq_ignore_ascii_case("text") => false,
        Some(_) => true,
        None => in_lambda || !std::io::stdout().is_terminal(),
    };
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .filter(|_| in_lambda)
        .map(|l| match l.to_ascii_lowercase().as_str() {
            "fatal" => "error".to_owned(),
            other => other.to_owned(),
        });
    let directives = level
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    // `Targets` (target=level lists), not `EnvFilter`: it needs no regex engine, which saves
    // the Lambda artifact ~0.5 MB; span-field filters are the only RUST_LOG syntax lost.
    let filter: Targets = format!("{QUIET},{directives}")
        .parse()
        .map_err(|e| format!("bad log filter {directives:?}: {e}"))?;

    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .event_format(PowertoolsJson::new(&config.service_name))
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_target(false)
            .compact()
            .boxed()
    };

    // Traces are evidence, not the service: an exporter that cannot start costs the traces
    // (one warning, below), never the start-up — in Lambda an init error fails every request.
    let exporter = config.xray_daemon_address.as_deref().map(|addr| {
        xray::daemon_address(addr)
            .and_then(|daemon| xray::tracer_provider(daemon, &config.service_name))
    });
    let (exporter, exporter_failed) = match exporter {
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let (otel_layer, provider) = match exporter {
        Some(provider) => {
            use opentelemetry::trace::TracerProvider as _;
            let tracer = provider.tracer("chatbot");
            // Only our spans become segments: the runtime's own spans would start unrelated
            // traces, and the exporter's must never feed back into the pipeline.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(Targets::new().with_target("chatbot", tracing::Level::INFO));
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };

    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init()
        .map_err(|e| format!("logging already initialised: {e}"))?;
    install_panic_hook();
    if let Some(e) = exporter_failed {
        tracing::warn!(error = %e, "X-Ray export is off: the exporter could not start; running without traces");
    }
    Ok(TelemetryGuard { provider })
}

/// A panic becomes one JSON error line carrying the request id (the handler's 500 reply is made
/// by the router's catch-panic layer).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        tracing::error!(
            target: "chatbot::panic",
            panicMessage = %message,
            location = location.as_deref(),
            "panic"
        );
    }));
}

pub struct PowertoolsJson {
    service: String,
    function_name: Option<String>,
    function_version: Option<String>,
}

impl PowertoolsJson {
    pub fn new(service: &str) -> Self {
        PowertoolsJson {
            service: service.to_owned(),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
            function_version: std::env::var("AWS_LAMBDA_FUNCTION_VERSION").ok(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for PowertoolsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = time::OffsetDateTime::now_utc();
        let timestamp = now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| fmt::Error)?;
        let mut map = Map::new();
        map.insert("timestamp".into(), Value::String(timestamp));
        map.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        map.insert("message".into(), Value::Null);
        event.record(&mut JsonFields(&mut map));
        map.insert("service".into(), Value::String(self.service.clone()));
        RequestCtx::with_current(|ctx| {
            map.insert("requestId".into(), Value::String(ctx.request_id.clone()));
            if let Some(t) = &ctx.xray_trace_id {
                map.insert("xrayTraceId".into(), Value::String(t.clone()));
            }
            map.insert("coldStart".into(), Value::Bool(ctx.cold_start));
        });
        if let Some(f) = &self.function_name {
            map.insert("functionName".into(), Value::String(f.clone()));
        }
        if let Some(v) = &self.function_version {
            map.insert("functionVersion".into(), Value::String(v.clone()));
        }
        map.insert(
            "logger".into(),
            Value::String(event.metadata().target().to_owned()),
        );
        let line = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
        writeln!(w, "{line}")
    }
}

struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), Value::String(v.to_owned()));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name().into(), Value::Bool(v));
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0
            .insert(f.name().into(), Value::String(format!("{v:?}")));
    }
}
