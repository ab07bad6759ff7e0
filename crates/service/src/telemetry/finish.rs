//! The end of a request: its one summary line, its one EMF document, its closed span.
//!
//! Called exactly once per request by the telemetry layer — when the response body ends, or when
//! it is dropped unfinished (client abort) — so failed, throttled, timed-out, aborted and
//! panicked requests leave the same evidence as successful ones.

use std::sync::Arc;

use metrics::{counter, histogram};
use opentelemetry::trace::Status;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::Fault;
use crate::pricing::CostBreakdown;
use crate::telemetry::catalog::{self as m, DIM_MODEL, DIM_SERVICE, DIM_VARIANT};
use crate::telemetry::context::{Record, RequestCtx};
use crate::telemetry::emf;

pub(crate) fn finish(ctx: &Arc<RequestCtx>, aborted: bool) {
    ctx.sync_scope(|| {
        if aborted {
            ctx.record().client_aborted = true;
        }
        let cost = ctx.settle_cost();
        let record = ctx.record().clone();
        let latency_ms = ms(ctx.elapsed());
        record_metrics(ctx, &record, &cost, latency_ms);
        log_summary(ctx, &record, &cost, latency_ms);
        write_emf(ctx, &record);
        close_span(ctx, &record, &cost);
    });
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn usd(d: Option<rust_decimal::Decimal>) -> Option<f64> {
    d.and_then(|d| d.to_f64())
}

fn is_server_failure(record: &Record) -> bool {
    record
        .error_code
        .is_some_and(|c| c.fault() == Fault::Service)
}

/// Through the `metrics` facade: the EMF recorder collects these into this request's document.
/// Only what a dashboard widget or an alarm needs (`catalog`); the rest is in the summary line.
fn record_metrics(ctx: &RequestCtx, r: &Record, cost: &CostBreakdown, latency_ms: f64) {
    histogram!(m::LATENCY).record(latency_ms);
    counter!(m::ERRORS).increment(is_server_failure(r) as u64);
    if let Some(total) = usd(cost.total_usd) {
        histogram!(m::COST_USD).record(total);
    }
    if let Some(u) = r.usage {
        counter!(m::INPUT_TOKENS).increment(u.input_tokens);
        counter!(m::OUTPUT_TOKENS).increment(u.output_tokens);
    }
    if let Some(d) = r.time_to_first_token {
        histogram!(m::TIME_TO_FIRST_TOKEN).record(ms(d));
    }
    if let Some(overhead) = overhead_ms(r, latency_ms) {
        histogram!(m::OVERHEAD_LATENCY).record(overhead);
    }
    counter!(m::THROTTLES).increment(r.throttles as u64);
    if r.budget_rejected.is_some() {
        counter!(m::BUDGET_REJECTIONS).increment(1);
    }
    if r.store_errors > 0 {
        counter!(m::STORE_ERRORS).increment(r.store_errors as u64);
    }
    if guardrail_assessed(ctx, r) {
        let blocked = r.guardrail.as_ref().is_some_and(|g| g.action.is_some());
        counter!(m::GUARDRAIL_INTERVENTIONS).increment(blocked as u64);
    }
}

/// A guardrail is configured and the request called the model: it was (or should have been)
/// assessed.
fn guardrail_assessed(ctx: &RequestCtx, r: &Record) -> bool {
    ctx.telemetry.guardrail_on && r.attempts > 0
}

/// `input_blocked`, `output_blocked`, or `none` (assessed, let through); absent when no
/// guardrail assessed the request.
fn guardrail_action(ctx: &RequestCtx, r: &Record) -> Option<&'static str> {
    if !guardrail_assessed(ctx, r) {
        return None;
    }
    let action = r.guardrail.as_ref().and_then(|g| g.action);
    Some(action.map_or("none", |a| a.as_str()))
}

fn guardrail_policies(r: &Record) -> Option<Vec<String>> {
    let g = r.guardrail.as_ref()?;
    (!g.policies.is_empty()).then(|| g.policies.iter().cloned().collect())
}

/// The service's own share of a model-calling request: its latency minus Bedrock's own
/// (`metrics.latencyMs`), when Bedrock reported it.
fn overhead_ms(r: &Record, latency_ms: f64) -> Option<f64> {
    r.bedrock_latency.map(|b| (latency_ms - ms(b)).max(0.0))
}

/// Output tokens per second of Bedrock's own time (or the call's, when Bedrock did not say).
fn tokens_per_second(r: &Record) -> Option<f64> {
    let usage = r.usage?;
    let secs = r.bedrock_latency.or(r.model_latency)?.as_secs_f64();
    (secs > 0.0 && usage.output_tokens > 0).then(|| usage.output_tokens as f64 / secs)
}

/// The status the request amounts to: an error that struck after a streamed 200 began counts
/// as that error's status for traces and per-request queries.
fn effective_status(r: &Record) -> u16 {
    match (r.status, r.error_code) {
        (Some(s), Some(code)) if s < 400 => code.status().as_u16(),
        (Some(s), _) => s,
        (None, _) => 500,
    }
}

macro_rules! summary {
    ($level:expr, $ctx:expr, $r:expr, $cost:expr, $latency:expr) => {
        tracing::event!(
            target: "chatbot::summary",
            $level,
            route = %$ctx.route,
            method = %$ctx.method,
            status = $r.status,
            effectiveStatus = effective_status($r),
            errorCode = $r.error_code.map(|c| c.as_str()),
            modelError = $r.model_error.as_deref(),
            latencyMs = $latency,
            modelLatencyMs = $r.model_latency.map(ms),
            timeToFirstTokenMs = $r.time_to_first_token.map(ms),
            modelId = $r.model_id.as_deref(),
            variant = $r.variant.as_deref(),
            stopReason = $r.stop_reason.as_deref(),
            inputTokens = $r.usage.map(|u| u.input_tokens),
            outputTokens = $r.usage.map(|u| u.output_tokens),
            cacheReadInputTokens = $r.usage.map(|u| u.cache_read_input_tokens).filter(|n| *n > 0),
            cacheWriteInputTokens = $r.usage.map(|u| u.cache_write_input_tokens).filter(|n| *n > 0),
            servedTier = $r.served.as_ref().map(|s| s.key()),
            bedrockLatencyMs = $r.bedrock_latency.map(ms),
            overheadMs = overhead_ms($r, $latency),
            outputTokensPerSecond = tokens_per_second($r),
            longestChunkGapMs = $r.longest_gap.map(ms),
            costUsd = usd($cost.total_usd),
            modelCostUsd = usd($cost.model_usd),
            computeCostUsd = usd($cost.compute_usd),
            apiCostUsd = usd($cost.api_usd),
            guardrailCostUsd = usd($cost.guardrail_usd),
            guardrailAction = guardrail_action($ctx, $r),
            guardrailPolicies = guardrail_policies($r).map(|p| p.join(",")),
            guardrailTextUnits = $r.guardrail.as_ref().map(|g| g.units.total()),
            costUnknown = $r.cost_unknown.then_some(true),
            costEstimated = $r.cost_estimated.then_some(true),
            attempts = ($r.attempts > 0).then_some($r.attempts),
            retries = ($r.attempts > 0).then_some($r.attempts.saturating_sub(1)),
            throttles = $r.throttles,
            fallback = $r.fallback.then_some(true),
            fallbackSkipped = $r.fallback_skipped.then_some(true),
            deadlineMs = ($r.attempts > 0).then(|| ms($ctx.deadline.at().saturating_duration_since(tokio::time::Instant::from_std($ctx.started)))),
            deadlineSource = ($r.attempts > 0).then_some(if $ctx.deadline.lambda_bound { "lambda" } else { "model_timeout" }),
            conversationId = $r.conversation_id.as_deref(),
            streaming = $r.streaming,
            clientAborted = $r.client_aborted,
            budgetReservedUsd = usd($r.budget_reserved_usd),
            budgetSettledUsd = usd($r.budget_settled_usd),
            budgetRejected = $r.budget_rejected.map(|s| s.as_str()),
            budgetFailedOpen = $r.budget_failed_open.then_some(true),
            storeErrors = ($r.store_errors > 0).then_some($r.store_errors),
            historyTurns = $r.history_turns,
            droppedTurns = $r.dropped_turns,
            historyTokens = $r.history_tokens,
            prompt = $r.prompt_text.as_deref(),
            reply = $r.reply_text.as_deref(),
            "request completed"
        )
    };
}

fn log_summary(ctx: &RequestCtx, r: &Record, cost: &CostBreakdown, latency_ms: f64) {
    if is_server_failure(r) {
        summary!(tracing::Level::ERROR, ctx, r, cost, latency_ms);
    } else {
        summary!(tracing::Level::INFO, ctx, r, cost, latency_ms);
    }
}

fn write_emf(ctx: &RequestCtx, r: &Record) {
    let mut props = Map::new();
    props.insert("requestId".into(), json!(ctx.request_id));
    if let Some(t) = &ctx.xray_trace_id {
        props.insert("xrayTraceId".into(), json!(t));
    }
    if let Some(c) = &r.conversation_id {
        props.insert("conversationId".into(), json!(c));
    }
    props.insert("statusCode".into(), json!(effective_status(r)));
    if let Some(s) = &r.stop_reason {
        props.insert("stopReason".into(), json!(s));
    }
    if let Some(code) = r.error_code {
        props.insert("errorCode".into(), json!(code));
    }
    props.insert("route".into(), json!(ctx.route));
    if let Some(scope) = r.budget_rejected {
        props.insert("budgetRejected".into(), json!(scope.as_str()));
    }
    for (key, value) in [
        ("budgetReservedUsd", r.budget_reserved_usd),
        ("budgetSettledUsd", r.budget_settled_usd),
    ] {
        if let Some(v) = usd(value) {
            props.insert(key.into(), json!(v));
        }
    }
    // What was a metric before the metric budget: a property here (Logs Insights counts them).
    for (key, on) in [
        ("coldStart", ctx.cold_start),
        ("clientAborted", r.client_aborted),
        ("fallback", r.fallback),
        ("costUnknown", r.cost_unknown),
        ("costEstimated", r.cost_estimated),
    ] {
        if on {
            props.insert(key.into(), json!(true));
        }
    }
    if r.attempts > 0 {
        props.insert("retries".into(), json!(r.attempts.saturating_sub(1)));
    }
    if let Some(d) = r.model_latency {
        props.insert("modelLatencyMs".into(), json!(ms(d)));
    }
    if let Some(s) = &r.served {
        props.insert("servedTier".into(), json!(s.key()));
    }
    if let Some(action) = guardrail_action(ctx, r) {
        props.insert("guardrailAction".into(), json!(action));
    }
    if let Some(p) = guardrail_policies(r) {
        props.insert("guardrailPolicies".into(), json!(p));
    }
    if let Some(g) = &r.guardrail {
        props.insert("guardrailTextUnits".into(), json!(g.units.total()));
    }
    // Cache tokens are billed at their own rates: per request, so properties (the metric
    // `InputTokens` stays comparable with AWS/Bedrock's InputTokenCount).
    if let Some(u) = r.usage {
        for (key, n) in [
            ("cacheReadInputTokens", u.cache_read_input_tokens),
            ("cacheWriteInputTokens", u.cache_write_input_tokens),
        ] {
            if n > 0 {
                props.insert(key.into(), json!(n));
            }
        }
    }
    let dims = [
        (DIM_SERVICE, Some(ctx.telemetry.service.as_str())),
        (DIM_MODEL, r.model_id.as_deref()),
        (DIM_VARIANT, r.variant.as_deref()),
    ];
    let doc = emf::document(ctx, &dims, props);
    ctx.telemetry.emf_sink.write(&Value::to_string(&doc));
}

fn close_span(ctx: &RequestCtx, r: &Record, cost: &CostBreakdown) {
    let Some(span) = ctx.take_span() else { return };
    let status = effective_status(r);
    span.record("http.response.status_code", status as i64);
    if let Some(model) = &r.model_id {
        span.record("annotation.model", model.as_str());
    }
    if let Some(v) = &r.variant {
        span.record("annotation.variant", v.as_str());
    }
    if let Some(s) = &r.stop_reason {
        span.record("annotation.stop_reason", s.as_str());
    }
    if let Some(code) = r.error_code {
        span.record("annotation.error_code", code.as_str());
    }
    if let Some(action) = guardrail_action(ctx, r) {
        span.record("annotation.guardrail_action", action);
    }
    // X-Ray sets error (4xx), throttle (429) and fault (5xx) only on spans in error.
    if status >= 400 {
        let code = r.error_code.map_or("internal", |c| c.as_str());
        span.set_status(Status::error(code));
    }
    for (key, value) in [
        ("metadata.cost.modelUsd", cost.model_usd),
        ("metadata.cost.computeUsd", cost.compute_usd),
        ("metadata.cost.apiUsd", cost.api_usd),
        ("metadata.cost.guardrailUsd", cost.guardrail_usd),
        ("metadata.cost.totalUsd", cost.total_usd),
        ("metadata.budget.reservedUsd", r.budget_reserved_usd),
        ("metadata.budget.settledUsd", r.budget_settled_usd),
    ] {
        if let Some(v) = usd(value) {
            span.set_attribute(key, v);
        }
    }
    if r.client_aborted {
        span.set_attribute("metadata.client_aborted", true);
    }
    if r.cost_estimated {
        span.set_attribute("metadata.cost.estimated", true);
    }
    if let Some(s) = &r.served {
        span.set_attribute("metadata.served_tier", s.key());
    }
    if let Some(o) = overhead_ms(r, ms(ctx.elapsed())) {
        span.set_attribute("metadata.latency.overheadMs", o);
    }
    if let Some(g) = r.longest_gap {
        span.set_attribute("metadata.latency.longestChunkGapMs", ms(g));
    }
    if let Some(scope) = r.budget_rejected {
        span.set_attribute("metadata.budget.rejected", scope.as_str());
    }
    drop(span);
}
