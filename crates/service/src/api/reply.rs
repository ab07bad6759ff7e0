//! Response bodies shared by the buffered reply and the stream's `meta`/`done` events.

use serde::Serialize;

use crate::model::{GuardrailReport, Usage};
use crate::pricing::CostBreakdown;
use crate::telemetry::context::RequestCtx;

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageBody {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Prompt-cache reads and writes, when there were any (not in `inputTokens`).
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_write_input_tokens: u64,
    pub total_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<Usage> for UsageBody {
    fn from(u: Usage) -> Self {
        UsageBody {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            cache_write_input_tokens: u.cache_write_input_tokens,
            total_tokens: u.total(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyBody {
    pub total: u64,
    pub model: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token: Option<u64>,
}

impl LatencyBody {
    /// Latencies so far, in whole milliseconds.
    pub fn now(ctx: &RequestCtx) -> Self {
        let r = ctx.record();
        LatencyBody {
            total: ctx.elapsed().as_millis() as u64,
            model: r.model_latency.unwrap_or_default().as_millis() as u64,
            first_token: r.time_to_first_token.map(|d| d.as_millis() as u64),
        }
    }
}

/// The guardrail intervened: which side it blocked and the policies that did (by type). The
/// reply is then the guardrail's message, for the page to show as a notice.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailBody {
    pub action: &'static str,
    pub policies: Vec<String>,
}

impl GuardrailBody {
    /// `Some` only when the guardrail blocked something.
    pub fn of(report: Option<&GuardrailReport>) -> Option<Self> {
        let r = report?;
        Some(GuardrailBody {
            action: r.action?.as_str(),
            policies: r.policies.iter().cloned().collect(),
        })
    }
}

/// `null` when the cost cannot be known (model missing from the price table).
pub fn cost_body(cost: CostBreakdown) -> Option<CostBreakdown> {
    cost.total_usd.is_some().then_some(cost)
}
