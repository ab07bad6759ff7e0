//! Every CloudWatch metric the service emits: name, unit and the dimension sets it is published
//! under. The EMF recorder, `docs/observability.md`, the dashboard and the alarms all follow this
//! list; a test cross-checks `dashboards/` and `serverless.yml` against it.

/// Dimension names. Values: `Service` = service name, `Model` = model id the request was routed
/// to, `ErrorCode` = the API error code (`rate_limited`, `model_timeout`, …), `Variant` = A/B
/// variant name.
pub const DIM_SERVICE: &str = "Service";
pub const DIM_MODEL: &str = "Model";
pub const DIM_ERROR_CODE: &str = "ErrorCode";
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
    /// Sets made from the metric's own labels (e.g. [Service, ErrorCode] for `Errors`).
    pub extra_dimensions: &'static [&'static [&'static str]],
    pub meaning: &'static str,
}

/// The dimension sets most metrics are published under.
pub const DEFAULT_DIMENSIONS: &[&[&str]] = &[
    &[DIM_SERVICE],
    &[DIM_SERVICE, DIM_MODEL],
    &[DIM_SERVICE, DIM_VARIANT],
];

/// Rare counters the dashboards and alarms need only per service.
pub const SERVICE_ONLY: &[&[&str]] = &[&[DIM_SERVICE]];

macro_rules! metric {
    ($name:literal, $unit:ident, $meaning:literal) => {
        MetricDef {
            name: $name,
            unit: Unit::$unit,
            dimensions: DEFAULT_DIMENSIONS,
            extra_dimensions: &[],
            meaning: $meaning,
        }
    };
    ($name:literal, $unit:ident, $extra:expr, $meaning:literal) => {
        MetricDef {
            name: $name,
            unit: Unit::$unit,
            dimensions: DEFAULT_DIMENSIONS,
            extra_dimensions: $extra,
            meaning: $meaning,
        }
    };
    (service_only $name:literal, $unit:ident, $meaning:literal) => {
        MetricDef {
            name: $name,
            unit: Unit::$unit,
            dimensions: SERVICE_ONLY,
            extra_dimensions: &[],
            meaning: $meaning,
        }
    };
}

pub const REQUESTS: &str = "Requests";
pub const ERRORS: &str = "Errors";
pub const CLIENT_ERRORS: &str = "ClientErrors";
pub const THROTTLES: &str = "Throttles";
pub const CLIENT_ABORTS: &str = "ClientAborts";
pub const COLD_START: &str = "ColdStart";
pub const LATENCY: &str = "Latency";
pub const MODEL_LATENCY: &str = "ModelLatency";
pub const TIME_TO_FIRST_TOKEN: &str = "TimeToFirstToken";
pub const INPUT_TOKENS: &str = "InputTokens";
pub const OUTPUT_TOKENS: &str = "OutputTokens";
pub const COST_USD: &str = "CostUSD";
pub const COST_UNKNOWN: &str = "CostUnknown";
pub const RETRIES: &str = "Retries";
pub const FALLBACKS: &str = "Fallbacks";
pub const BUDGET_REJECTIONS: &str = "BudgetRejections";
pub const STORE_ERRORS: &str = "StoreErrors";

pub const METRICS: &[MetricDef] = &[
    metric!("Requests", Count, "1 per request on any route"),
    metric!(
        "Errors",
        Count,
        &[&[DIM_SERVICE, DIM_ERROR_CODE]],
        "1 when the request failed for a reason other than the client's input: status >= 500 or rate_limited (429)"
    ),
    metric!(
        "ClientErrors",
        Count,
        "1 when the request was rejected as the client's fault (4xx other than 429)"
    ),
    metric!(
        "Throttles",
        Count,
        "model calls (attempts) Bedrock throttled, including ones a retry recovered"
    ),
    metric!(
        "ClientAborts",
        Count,
        "1 when the client went away before the reply was complete"
    ),
    metric!(
        "ColdStart",
        Count,
        "1 on the first request a process serves; absent otherwise"
    ),
    metric!(
        "Latency",
        Milliseconds,
        "request time from the first byte in to the last byte out"
    ),
    metric!(
        "ModelLatency",
        Milliseconds,
        "time spent in the Bedrock call(s), retries included"
    ),
    metric!(
        "TimeToFirstToken",
        Milliseconds,
        "streaming only: request start to the first reply text"
    ),
    metric!("InputTokens", Count, "input tokens Bedrock billed"),
    metric!("OutputTokens", Count, "output tokens Bedrock billed"),
    metric!(
        "CostUSD",
        None,
        "total USD of the request: model + Lambda compute + API Gateway"
    ),
    metric!(
        "CostUnknown",
        Count,
        "1 when the model id has no price in the table (CostUSD absent)"
    ),
    metric!("Retries", Count, "model call attempts beyond the first"),
    metric!(
        "Fallbacks",
        Count,
        "1 when the reply came from the fallback model"
    ),
    metric!(
        service_only "BudgetRejections",
        Count,
        "1 when a daily budget refused the request (which one: the `budgetRejected` property)"
    ),
    metric!(
        service_only "StoreErrors",
        Count,
        "state-store calls that failed after their retries (budgets, conversation memory)"
    ),
];

pub fn find(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}
