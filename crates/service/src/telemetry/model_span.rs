//! The client span around one Bedrock call — an X-Ray subsegment with `namespace: aws`,
//! `aws.operation`, region, request id, HTTP status and retries, plus OpenTelemetry GenAI
//! attributes — and the call's measurements in the request's record.

use std::time::Duration;

use opentelemetry::trace::Status;
use opentelemetry::{Array, StringValue, Value};
use tokio::time::Instant;
use tracing::Instrument;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::model::{AttemptStats, ModelError, Report, Usage};
use crate::telemetry::context::RequestCtx;
use crate::telemetry::truncate;

#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Converse,
    ConverseStream,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Converse => "Converse",
            Operation::ConverseStream => "ConverseStream",
        }
    }
}

pub struct ModelCallSpan {
    span: tracing::Span,
    started: Instant,
}

impl ModelCallSpan {
    /// `input_chars`: the characters of the call's input text, from which its cost is
    /// estimated if Bedrock never reports usage.
    pub fn start(
        op: Operation,
        model_id: &str,
        region: &str,
        max_tokens: i32,
        temperature: f32,
        input_chars: usize,
    ) -> Self {
        RequestCtx::with_current(|ctx| {
            let mut r = ctx.record();
            r.model_id = Some(model_id.to_owned());
            r.streaming |= matches!(op, Operation::ConverseStream);
            r.input_chars = Some(input_chars);
        });
        let span = tracing::info_span!(
            target: "chatbot::model",
            "chat",
            otel.name = %format_args!("chat {model_id}"),
            otel.kind = "client",
            rpc.system = "aws-api",
            rpc.service = "BedrockRuntime",
            rpc.method = op.as_str(),
            aws.region = region,
            aws.request_id = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = "aws.bedrock",
            gen_ai.request.model = model_id,
            gen_ai.request.max_tokens = max_tokens as i64,
            // Through its decimal form: 0.7f32 as f64 would read 0.699999988.
            gen_ai.request.temperature = temperature.to_string().parse::<f64>().unwrap_or_default(),
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            gen_ai.usage.cache_read.input_tokens = tracing::field::Empty,
            gen_ai.usage.cache_creation.input_tokens = tracing::field::Empty,
            aws.bedrock.service_tier = tracing::field::Empty,
            aws.bedrock.latency_ms = tracing::field::Empty,
            aws.bedrock.guardrail.action = tracing::field::Empty,
            aws.bedrock.guardrail.text_units = tracing::field::Empty,
            metadata.retries = tracing::field::Empty,
        );
        ModelCallSpan {
            span,
            started: Instant::now(),
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn instrument<F>(&self, fut: F) -> Instrumented<F> {
        fut.instrument(self.span.clone())
    }

    /// The first reply text arrived: a span event, and the request's time to first token.
    pub fn first_token(&self) {
        let since_call = self.started.elapsed();
        self.span.add_event(
            "gen_ai.first_token",
            vec![opentelemetry::KeyValue::new(
                "gen_ai.client.operation.time_to_first_chunk",
                since_call.as_secs_f64(),
            )],
        );
        RequestCtx::with_current(|ctx| {
            ctx.record()
                .time_to_first_token
                .get_or_insert(ctx.elapsed());
        });
    }

    /// The stream is open (HTTP 200): request id and attempts are known.
    pub fn opened(&self, stats: &AttemptStats, request_id: Option<&str>) {
        if let Some(id) = request_id {
            self.span.record("aws.request_id", id);
        }
        if let Some(status) = stats.last_status() {
            self.span.record("http.response.status_code", status as i64);
        }
    }

    pub fn succeeded(
        self,
        stats: &AttemptStats,
        request_id: Option<&str>,
        stop_reason: &str,
        report: &Report,
    ) {
        let usage = report.usage;
        if let Some(id) = request_id {
            self.span.record("aws.request_id", id);
        }
        self.span.record("http.response.status_code", 200i64);
        self.span
            .record("gen_ai.usage.input_tokens", usage.input_tokens as i64);
        self.span
            .record("gen_ai.usage.output_tokens", usage.output_tokens as i64);
        self.span.record(
            "gen_ai.usage.cache_read.input_tokens",
            usage.cache_read_input_tokens as i64,
        );
        self.span.record(
            "gen_ai.usage.cache_creation.input_tokens",
            usage.cache_write_input_tokens as i64,
        );
        self.span
            .record("aws.bedrock.service_tier", report.served.key().as_str());
        if let Some(l) = report.latency {
            self.span
                .record("aws.bedrock.latency_ms", l.as_millis() as i64);
        }
        if let Some(g) = &report.guardrail {
            let action = g.action.map_or("none", |a| a.as_str());
            self.span.record("aws.bedrock.guardrail.action", action);
            self.span
                .record("aws.bedrock.guardrail.text_units", g.units.total() as i64);
        }
        self.span.set_attribute(
            "gen_ai.response.finish_reasons",
            Value::Array(Array::String(vec![StringValue::from(
                stop_reason.to_owned(),
            )])),
        );
        self.settle(stats, |r| {
            r.stop_reason = Some(stop_reason.to_owned());
            r.usage.get_or_insert_with(Usage::default).add(usage);
            if let Some(l) = report.latency {
                *r.bedrock_latency.get_or_insert(Duration::ZERO) += l;
            }
            r.served = Some(report.served.clone());
            if let Some(g) = &report.guardrail {
                match &mut r.guardrail {
                    Some(seen) => seen.merge(g.clone()),
                    None => r.guardrail = Some(g.clone()),
                }
            }
        });
    }

    /// A stream that ended without reporting usage: tokens were billed but not counted.
    pub fn ended_without_usage(self, stats: &AttemptStats, stop_reason: &str) {
        self.settle(stats, |r| {
            r.stop_reason = Some(stop_reason.to_owned());
            r.usage_unknown = true;
        });
    }

    pub fn failed(self, stats: &AttemptStats, e: &ModelError) {
        let status = stats
            .last_status()
            .filter(|s| *s >= 400)
            .or_else(|| equivalent_status(e));
        // A call that timed out or failed inside the model may have been generating (and
        // billing) when it ended; throttled, rejected and unavailable calls never ran.
        let may_have_billed = matches!(e, ModelError::Timeout | ModelError::Failed { .. });
        self.fail_with(stats, e, status, may_have_billed);
    }

    /// An exception inside an open stream: HTTP said 200, the error's own status tells X-Ray.
    pub fn failed_mid_stream(self, stats: &AttemptStats, e: &ModelError) {
        self.fail_with(stats, e, equivalent_status(e), true);
    }

    /// Dropped before the end (the client went away): generation is cancelled.
    pub fn cancelled(self, stats: &AttemptStats) {
        self.span.set_attribute("metadata.cancelled", true);
        self.settle(stats, |r| r.usage_unknown = true);
    }

    fn fail_with(self, stats: &AttemptStats, e: &ModelError, status: Option<u16>, billed: bool) {
        if let Some(s) = status {
            self.span.record("http.response.status_code", s as i64);
        }
        self.span.set_status(Status::error(e.kind().to_owned()));
        self.settle(stats, |r| {
            r.model_error = Some(e.kind().to_owned());
            r.usage_unknown |= billed;
            // An in-stream throttle never showed as an HTTP 429 to the attempt counter.
            if billed && matches!(e, ModelError::Throttled { .. }) {
                r.throttles += 1;
            }
        });
    }

    fn settle(self, stats: &AttemptStats, f: impl FnOnce(&mut crate::telemetry::context::Record)) {
        let elapsed: Duration = self.started.elapsed();
        let attempts = stats.attempts().max(1);
        self.span.record("metadata.retries", (attempts - 1) as i64);
        RequestCtx::with_current(|ctx| {
            let mut r = ctx.record();
            *r.model_latency.get_or_insert(Duration::ZERO) += elapsed;
            r.attempts += attempts;
            r.throttles += stats.throttles();
            f(&mut r);
        });
        drop(self.span);
    }
}

/// The HTTP status an error stands for, for X-Ray's error/throttle/fault flags.
fn equivalent_status(e: &ModelError) -> Option<u16> {
    match e {
        ModelError::Throttled { .. } => Some(429),
        ModelError::Rejected { .. } => Some(400),
        ModelError::Unavailable { .. } => Some(503),
        ModelError::Failed { .. } => Some(500),
        ModelError::Timeout | ModelError::Internal(_) => None,
    }
}

/// Opt-in content logging (`CHATBOT_LOG_CONTENT=true`): keep truncated prompt and reply on the
/// record for the summary line. Never called otherwise.
pub fn record_content(prompt: &str, reply: &str) {
    RequestCtx::with_current(|ctx| {
        if let Some(max) = ctx.log_content() {
            let mut r = ctx.record();
            r.prompt_text = Some(truncate(prompt, max));
            r.reply_text = Some(truncate(reply, max));
        }
    });
}
