//! Per-request context: who the request is (ids, cold start, timing) and what happened to it
//! (the [`Record`] handlers fill in). The telemetry layer creates one per request, makes it
//! reachable through a task-local while the request's code runs (logs pick up `requestId` from
//! it, the EMF recorder collects into it), and turns it into the summary line, the EMF document
//! and the trace when the response body ends or is dropped.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rust_decimal::Decimal;

use crate::budget::BudgetScope;
use crate::deadline::Deadline;
use crate::error::ErrorCode;
use crate::model::{GuardrailUnits, Served, Usage, estimate_tokens};
use crate::pricing::{Arch, CostBreakdown};
use crate::telemetry::Telemetry;
use crate::telemetry::emf::RequestMetrics;

tokio::task_local! {
    static CURRENT: Arc<RequestCtx>;
}

/// Everything known about one request. Shared (`Arc`) by the layer, the handler (as an axum
/// extension) and the response body.
pub struct RequestCtx {
    pub request_id: String,
    /// The X-Ray trace id (`1-xxxxxxxx-…`), when the request is traced.
    pub xray_trace_id: Option<String>,
    pub cold_start: bool,
    pub started: Instant,
    pub started_at: SystemTime,
    pub method: String,
    pub route: String,
    /// Came through API Gateway (billed per request), not a Function URL or the local server.
    pub via_api_gateway: bool,
    /// When the Lambda invocation must have answered (`Lambda-Runtime-Deadline-Ms`).
    pub lambda_deadline: Option<SystemTime>,
    /// The request's one deadline for model work (see [`crate::deadline`]).
    pub deadline: Deadline,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) metrics: RequestMetrics,
    /// Taken (and so closed) by `finish`, so the segment is exported before the reply completes.
    span: Mutex<Option<tracing::Span>>,
    record: Mutex<Record>,
}

/// What happened, filled in as the request proceeds.
#[derive(Debug, Default, Clone)]
pub struct Record {
    pub status: Option<u16>,
    pub error_code: Option<ErrorCode>,
    /// Bedrock's error name (`ThrottlingException`, `TimeoutError`, …) when a model call failed.
    pub model_error: Option<String>,
    pub model_id: Option<String>,
    pub variant: Option<String>,
    pub conversation_id: Option<String>,
    pub stop_reason: Option<String>,
    pub usage: Option<Usage>,
    pub model_latency: Option<Duration>,
    pub time_to_first_token: Option<Duration>,
    pub attempts: u32,
    pub throttles: u32,
    /// A model call may have billed tokens we never learned of (stream cut short).
    pub usage_unknown: bool,
    pub streaming: bool,
    pub client_aborted: bool,
    pub fallback: bool,
    /// The fallback was due but skipped: too little of the deadline remained.
    pub fallback_skipped: bool,
    pub cost: Option<CostBreakdown>,
    pub cost_unknown: bool,
    pub prompt_text: Option<String>,
    pub reply_text: Option<String>,
    /// The worst case reserved on the daily budgets, and what it settled to.
    pub budget_reserved_usd: Option<Decimal>,
    pub budget_settled_usd: Option<Decimal>,
    /// The budget that refused the request.
    pub budget_rejected: Option<BudgetScope>,
    /// The store could not be asked and the request was served unbudgeted.
    pub budget_failed_open: bool,
    /// State-store calls that failed after their retries.
    pub store_errors: u32,
    /// Conversation memory: stored turns sent to the model, turns left out to fit the limits,
    /// and the history's size in tokens (estimated, four characters a token).
    pub history_turns: Option<usize>,
    pub dropped_turns: Option<usize>,
    pub history_tokens: Option<usize>,
    /// Bedrock's own time for the call(s) (`metrics.latencyMs`).
    pub bedrock_latency: Option<Duration>,
    /// The tier and latency mode that served the (last) call.
    pub served: Option<Served>,
    /// The last call's input tokens as estimated from its text (for a cost Bedrock never
    /// reported), and the reply text already streamed (characters).
    pub input_chars: Option<usize>,
    pub streamed_chars: usize,
    /// Streams: the longest silence between two pieces of reply text.
    pub longest_gap: Option<Duration>,
    /// The model cost is an estimate: usage never came.
    pub cost_estimated: bool,
    /// What the guardrail did over the request's model calls (configured guardrails only).
    pub guardrail: Option<crate::model::GuardrailReport>,
}

impl RequestCtx {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        telemetry: Arc<Telemetry>,
        request_id: String,
        xray_trace_id: Option<String>,
        cold_start: bool,
        method: String,
        route: String,
        via_api_gateway: bool,
        lambda_deadline: Option<SystemTime>,
        span: tracing::Span,
    ) -> Self {
        let deadline = Deadline::new(
            tokio::time::Instant::now(),
            telemetry.model_timeout,
            telemetry.answer_margin,
            lambda_deadline,
        );
        RequestCtx {
            deadline,
            request_id,
            xray_trace_id,
            cold_start,
            started: Instant::now(),
            started_at: SystemTime::now(),
            method,
            route,
            via_api_gateway,
            lambda_deadline,
            telemetry,
            metrics: RequestMetrics::default(),
            span: Mutex::new(Some(span)),
            record: Mutex::new(Record::default()),
        }
    }

    pub fn current_request_id() -> Option<String> {
        CURRENT.try_with(|c| c.request_id.clone()).ok()
    }

    pub(crate) fn with_current<R>(f: impl FnOnce(&RequestCtx) -> R) -> Option<R> {
        CURRENT.try_with(|c| f(c)).ok()
    }

    /// Run `fut` with this context current.
    pub(crate) async fn scope<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// Run `f` with this context current (for work done outside the request's task, like
    /// polling the response body).
    pub(crate) fn sync_scope<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(Arc::clone(self), f)
    }

    /// The request span (a disabled span once the request has finished).
    pub fn span(&self) -> tracing::Span {
        let guard = self.span.lock().unwrap_or_else(|p| p.into_inner());
        guard.clone().unwrap_or_else(tracing::Span::none)
    }

    pub(crate) fn take_span(&self) -> Option<tracing::Span> {
        self.span.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn record(&self) -> MutexGuard<'_, Record> {
        // A panic while holding the lock must not cost us the request's telemetry.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The guardrail text units of the request: as Bedrock reported them, or — when a guardrail
    /// is configured and a model call's trace never came — estimated as an upper bound: every
    /// 1,000 characters sent and streamed assessed by the content, topic and
    /// sensitive-information policies alike (the guardrail's own mix is not known here).
    fn guardrail_units(&self, record: &Record) -> Option<GuardrailUnits> {
        let reported = record.guardrail.as_ref().map(|g| g.units);
        if !(self.telemetry.guardrail_on && record.usage_unknown) {
            return reported;
        }
        let per_policy = record.input_chars.unwrap_or_default().div_ceil(1000) as u64
            + record.streamed_chars.div_ceil(1000) as u64;
        let mut units = reported.unwrap_or_default();
        units.add(GuardrailUnits {
            content: per_policy,
            topic: per_policy,
            sensitive_information: per_policy,
            ..GuardrailUnits::default()
        });
        Some(units)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn log_content(&self) -> Option<usize> {
        self.telemetry
            .log_content
            .then_some(self.telemetry.log_content_max_chars)
    }

    /// Fix the request's cost from what is known now, once: the chat response, the `done` event,
    /// the summary line, the EMF document and the trace all carry this same figure.
    pub fn settle_cost(&self) -> CostBreakdown {
        let mut record = self.record();
        if let Some(cost) = record.cost {
            return cost;
        }
        let t = &self.telemetry;
        // What Bedrock reported; plus, for a call whose usage never came, an estimate from what
        // is known: its input text, and the reply already streamed.
        let usage = match (record.usage, record.usage_unknown) {
            (known, false) => known,
            (known, true) => {
                record.cost_estimated = true;
                let mut usage = known.unwrap_or_default();
                usage.add(Usage {
                    input_tokens: estimate_tokens(record.input_chars.unwrap_or_default()),
                    output_tokens: estimate_tokens(record.streamed_chars),
                    ..Usage::default()
                });
                Some(usage)
            }
        };
        let served = record
            .served
            .as_ref()
            .map_or_else(|| "standard".to_owned(), Served::key);
        let model = match (record.model_id.clone(), usage) {
            (Some(id), Some(usage)) => {
                match t.pricing.served(&id, &served).and_then(|p| p.cost(usage)) {
                    Some(cost) => Some(cost),
                    None => {
                        record.cost_unknown = true;
                        t.warn_unknown_price(&id, &served);
                        None
                    }
                }
            }
            // No model call billed anything (rejected input, a refused or failed call).
            _ => Some(Decimal::ZERO),
        };
        let compute = t.lambda_memory_mb.map(|mb| {
            let billed_ms = self.elapsed().as_micros().div_ceil(1000) as u64;
            t.pricing.lambda_invocation(Arch::current(), mb, billed_ms)
        });
        let api = self
            .via_api_gateway
            .then_some(t.pricing.http_api_per_request);
        let mut cost = CostBreakdown::new(model, compute, api);
        if let Some(units) = self.guardrail_units(&record) {
            match t.pricing.guardrails.as_ref().and_then(|g| g.cost(&units)) {
                Some(usd) => cost = cost.with_guardrail(usd),
                None => {
                    // Text units Bedrock billed at a price we do not have: no total.
                    record.cost_unknown = true;
                    cost.total_usd = None;
                    t.warn_unknown_guardrail_price();
                }
            }
        }
        cost.estimated = record.cost_estimated;
        record.cost = Some(cost);
        cost
    }
}
