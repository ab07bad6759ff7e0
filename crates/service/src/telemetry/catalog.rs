//! Every CloudWatch metric the service emits: name, unit and the dimension sets it is published
//! under. The EMF recorder, `docs/observability.md`, the dashboard and the alarms all follow this
//! list; a test cross-checks `dashboards/` and `serverless.yml` against it.
//!
//! **Metrics cost money.** Each metric × dimension set × dimension values is a billed custom
//! metric (~$0.30 a month), so only what a dashboard widget or an alarm needs is a metric, with
//! as few sets as those need (`tests/metric_budget.rs` counts them from real EMF output: 13 for
//! a one-model stage, 14 with a guardrail, 5 more per further model or variant). Everything else about a request is
//! a property of its EMF document and summary line, for Logs Insights: `errorCode`,
//! `clientAborted`, `coldStart`, `retries`, `fallback`, `costUnknown`, `modelLatencyMs`, …
//! The request count is `Latency`'s sample count.

/// Dimension names. Values: `Service` = service name, `Model` = model id that answered,
/// `Variant` = A/B variant name.
pub const DIM_SERVICE: &str = "Service";
pub const DIM_MODEL: &str = "Model";
pub const DIM_VARIANT: &str = "Variant";

/// CloudWatch units used here (a subset of the EMF specification's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: Unit,
    /// The dimension sets the metric is published under (a set is used when the request has a
    /// value for every dimension in it). Each set × value combination is a billed custom metric.
    pub dimensions: &'static [&'static [&'static str]],
    pub meaning: &'static str,
}

/// The service as a whole: what the alarms watch.
pub const SERVICE: &[&[&str]] = &[&[DIM_SERVICE]];
/// The service, and each model × variant that answered: what the dashboard breaks down and
/// `cost-report` sums (by model, by variant).
pub const SERVICE_AND_MODEL_VARIANT: &[&[&str]] =
    &[&[DIM_SERVICE], &[DIM_SERVICE, DIM_MODEL, DIM_VARIANT]];
/// Each model × variant only (the service total is their sum).
pub const MODEL_VARIANT: &[&[&str]] = &[&[DIM_SERVICE, DIM_MODEL, DIM_VARIANT]];

macro_rules! metric {
    ($name:literal, $unit:ident, $dims:expr, $meaning:literal) => {
        MetricDef {
            name: $name,
            unit: Unit::$unit,
            dimensions: $dims,
            meaning: $meaning,
        }
    };
}

pub const LATENCY: &str = "Latency";
pub const ERRORS: &str = "Errors";
pub const COST_USD: &str = "CostUSD";
pub const INPUT_TOKENS: &str = "InputTokens";
pub const OUTPUT_TOKENS: &str = "OutputTokens";
pub const TIME_TO_FIRST_TOKEN: &str = "TimeToFirstToken";
pub const OVERHEAD_LATENCY: &str = "OverheadLatency";
pub const THROTTLES: &str = "Throttles";
pub const BUDGET_REJECTIONS: &str = "BudgetRejections";
pub const STORE_ERRORS: &str = "StoreErrors";
pub const GUARDRAIL_INTERVENTIONS: &str = "GuardrailInterventions";

pub const METRICS: &[MetricDef] = &[
    metric!(
        "Latency",
        Milliseconds,
        SERVICE_AND_MODEL_VARIANT,
        "request time from the first byte in to the last byte out; one value per request, so its sample count is the number of requests"
    ),
    metric!(
        "Errors",
        Count,
        SERVICE_AND_MODEL_VARIANT,
        "1 when the request failed for a reason other than the client's input or a budget (status >= 500, rate_limited), else 0; the code is the errorCode property"
    ),
    metric!(
        "CostUSD",
        None,
        SERVICE_AND_MODEL_VARIANT,
        "total USD of the request: model (exact, or estimated when usage never came) + Lambda compute + API Gateway"
    ),
    metric!(
        "InputTokens",
        Count,
        MODEL_VARIANT,
        "input tokens of the model call(s), cache reads and writes not included"
    ),
    metric!(
        "OutputTokens",
        Count,
        MODEL_VARIANT,
        "output tokens of the model call(s)"
    ),
    metric!(
        "TimeToFirstToken",
        Milliseconds,
        SERVICE,
        "streaming only: request start to the first reply text"
    ),
    metric!(
        "OverheadLatency",
        Milliseconds,
        SERVICE,
        "model-calling requests: the service's own share of the latency (total minus Bedrock's latencyMs)"
    ),
    metric!(
        "Throttles",
        Count,
        SERVICE,
        "model calls (attempts) Bedrock throttled, including ones a retry recovered"
    ),
    metric!(
        "BudgetRejections",
        Count,
        SERVICE,
        "1 when a daily budget refused the request (which one: the budgetRejected property)"
    ),
    metric!(
        "StoreErrors",
        Count,
        SERVICE,
        "state-store calls that failed after their retries (budgets, conversation memory)"
    ),
    metric!(
        "GuardrailInterventions",
        Count,
        SERVICE,
        "with a guardrail configured, model-calling requests: 1 when it blocked the input or the output, else 0 (which side and policy: the guardrailAction and guardrailPolicies properties)"
    ),
];

pub fn find(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}
