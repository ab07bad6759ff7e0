//! What the deploy's observability costs a month: the custom metrics its EMF documents create,
//! the alarms and the dashboard `serverless.yml` declares, the log lines each request writes
//! (ingestion and storage) and its X-Ray traces. `chatbot cost-estimate` adds it to every
//! scenario.
//!
//! List prices, us-east-1, **free tiers not applied** (CloudWatch: 10 metrics, 10 alarm metrics,
//! 3 dashboards, 5 GB of logs; X-Ray: 100,000 traces a month), like every other line of the
//! estimate.

use rust_decimal::Decimal;

use chatbot_service::telemetry::catalog::{self, DIM_MODEL, DIM_VARIANT};

/// Where the prices below come from.
pub const PRICES_SOURCE: &str = "CloudWatch and X-Ray list prices, us-east-1 (CloudWatch pricing page as quoted by secondary sources; X-Ray pricing page; shared reference 2026-12)";

/// USD per custom metric-month (the first 10,000 metrics).
pub fn custom_metric_price() -> Decimal {
    Decimal::new(30, 2)
}

/// USD per standard-resolution alarm metric-month (a metric-math alarm bills each metric it
/// references).
pub fn alarm_metric_price() -> Decimal {
    Decimal::new(10, 2)
}

/// USD per dashboard-month.
pub fn dashboard_price() -> Decimal {
    Decimal::from(3)
}

/// USD per GB of log data ingested (Standard class; Lambda's vended logs start at the same).
pub fn log_ingestion_price() -> Decimal {
    Decimal::new(50, 2)
}

/// USD per GB-month of stored log data.
pub fn log_storage_price() -> Decimal {
    Decimal::new(3, 2)
}

/// USD per million traces recorded.
pub fn xray_price_per_million() -> Decimal {
    Decimal::from(5)
}

/// Bytes in a GB as AWS bills it (2^30).
pub const GB: u64 = 1 << 30;
/// Seconds in the 30-day month the estimate is for.
pub const MONTH_SECONDS: u64 = 30 * 86_400;
/// Lambda's default X-Ray sampling: the first request each second, then 5 % of the rest.
pub const XRAY_RESERVOIR_PER_SECOND: u64 = 1;
pub const XRAY_FIXED_RATE_PERCENT: u64 = 5;

/// Bytes of log data one typical chat request writes: its EMF document plus its summary line
/// (`"message":"request completed"`), each with its newline. Measured from the service's real
/// output: 1,895 and 1,921 bytes for two non-streamed chats answered by the offline model, with
/// a stage's service name, Lambda memory and the daily budget on (`tests/cost_report.rs`,
/// `log_bytes_default_matches_a_real_request`, keeps this within ±15 % of the measurement).
/// Lambda's own START / END / REPORT lines are not included.
pub const LOG_BYTES_PER_REQUEST: u64 = 1_900;

/// Custom metrics the deploy publishes when `pairs` model × variant pairs answer: each catalog
/// metric counts once per dimension set, a set with `Model` / `Variant` once per pair (each
/// set × value combination is a billed metric). One pair: 13 (14 with a guardrail, whose
/// `GuardrailInterventions` exists only then); each further pair: +5.
pub fn custom_metric_count(pairs: u64, guardrail: bool) -> u64 {
    catalog::METRICS
        .iter()
        .filter(|m| guardrail || m.name != catalog::GUARDRAIL_INTERVENTIONS)
        .flat_map(|m| m.dimensions.iter())
        .map(|set| {
            if set.iter().any(|d| *d == DIM_MODEL || *d == DIM_VARIANT) {
                pairs
            } else {
                1
            }
        })
        .sum()
}

/// One alarm `serverless.yml` creates and the metrics it is billed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    /// The name after `<service>-<stage>-`.
    pub name: &'static str,
    /// Alarm metrics billed: 1 for a plain alarm, the metrics referenced for a metric-math one.
    pub metrics: u64,
    pub watches: &'static str,
    /// Created only when the deploy has a guardrail.
    pub guardrail_only: bool,
}

/// The alarms in `serverless.yml` (the binary cannot read the template: kept here by hand, and
/// `tests::alarms_match_the_template` checks it against the file).
pub const ALARMS: &[Alarm] = &[
    Alarm {
        name: "error-rate",
        metrics: 2,
        guardrail_only: false,
        watches: "Errors ÷ request count (metric math, [Service])",
    },
    Alarm {
        name: "latency-p99",
        metrics: 1,
        guardrail_only: false,
        watches: "Latency p99 [Service]",
    },
    Alarm {
        name: "time-to-first-token-p90",
        metrics: 1,
        guardrail_only: false,
        watches: "TimeToFirstToken p90 [Service]",
    },
    Alarm {
        name: "model-throttles",
        metrics: 1,
        guardrail_only: false,
        watches: "Throttles [Service]",
    },
    Alarm {
        name: "daily-budget",
        metrics: 1,
        guardrail_only: false,
        watches: "CostUSD over 24 h vs the daily budget (metric math)",
    },
    Alarm {
        name: "state-store-errors",
        metrics: 1,
        guardrail_only: false,
        watches: "StoreErrors [Service]",
    },
    Alarm {
        name: "lambda-errors",
        metrics: 2,
        guardrail_only: false,
        watches: "AWS/Lambda Errors of the api and stream functions (metric math)",
    },
    Alarm {
        name: "lambda-throttles",
        metrics: 2,
        guardrail_only: false,
        watches: "AWS/Lambda Throttles of both functions (metric math)",
    },
    Alarm {
        name: "stream-concurrency",
        metrics: 1,
        guardrail_only: false,
        watches: "AWS/Lambda ConcurrentExecutions of the stream function (metric math)",
    },
    Alarm {
        name: "http-api-5xx",
        metrics: 2,
        guardrail_only: false,
        watches: "AWS/ApiGateway 5xx ÷ Count (metric math)",
    },
];

/// Dashboards `serverless.yml` creates.
pub const DASHBOARDS: u64 = 1;

/// Alarm metrics billed for [`ALARMS`] (the guardrail's only with one).
pub fn alarm_metric_count(guardrail: bool) -> u64 {
    ALARMS
        .iter()
        .filter(|a| guardrail || !a.guardrail_only)
        .map(|a| a.metrics)
        .sum()
}

/// Traces recorded for `requests` a month under Lambda's default sampling, at an even rate: all
/// of them up to one a second, then 5 % of the rest.
pub fn xray_traces(requests: u64) -> Decimal {
    let reservoir = XRAY_RESERVOIR_PER_SECOND * MONTH_SECONDS;
    let sampled = requests.min(reservoir);
    let rest = requests.saturating_sub(reservoir);
    Decimal::from(sampled)
        + Decimal::from(rest) * Decimal::from(XRAY_FIXED_RATE_PERCENT) / Decimal::ONE_HUNDRED
}

/// The scenario the observability is priced for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub requests: u64,
    /// Model × variant pairs answering.
    pub pairs: u64,
    pub log_bytes_per_request: u64,
    pub log_retention_days: u64,
    /// The deploy has a guardrail (its metric and alarm exist only then).
    pub guardrail: bool,
}

/// Which line of the observability bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    CustomMetrics,
    Alarms,
    Dashboards,
    LogIngestion,
    LogStorage,
    XrayTraces,
}

impl Item {
    pub fn label(self) -> &'static str {
        match self {
            Item::CustomMetrics => "Custom metrics",
            Item::Alarms => "Alarms",
            Item::Dashboards => "Dashboard",
            Item::LogIngestion => "Log ingestion",
            Item::LogStorage => "Log storage",
            Item::XrayTraces => "X-Ray traces",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Item::CustomMetrics => "customMetrics",
            Item::Alarms => "alarms",
            Item::Dashboards => "dashboards",
            Item::LogIngestion => "logIngestion",
            Item::LogStorage => "logStorage",
            Item::XrayTraces => "xrayTraces",
        }
    }

    /// The unit the quantity and the price are in.
    pub fn unit(self) -> &'static str {
        match self {
            Item::CustomMetrics => "metric-month",
            Item::Alarms => "alarm metric-month",
            Item::Dashboards => "dashboard-month",
            Item::LogIngestion => "GB",
            Item::LogStorage => "GB-month",
            Item::XrayTraces => "million traces",
        }
    }
}

/// One line: quantity × unit price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub item: Item,
    pub quantity: Decimal,
    pub unit_price: Decimal,
}

impl Line {
    pub fn usd(&self) -> Decimal {
        self.quantity * self.unit_price
    }
}

/// GB of log data the scenario ingests in a month.
pub fn log_gb(s: &Scenario) -> Decimal {
    Decimal::from(s.requests) * Decimal::from(s.log_bytes_per_request) / Decimal::from(GB)
}

/// The month's observability bill, line by line.
pub fn bill(s: &Scenario) -> Vec<Line> {
    let ingested = log_gb(s);
    // In a steady month the group holds the last `retention` days of logs.
    let stored = ingested * Decimal::from(s.log_retention_days) / Decimal::from(30);
    vec![
        Line {
            item: Item::CustomMetrics,
            quantity: Decimal::from(custom_metric_count(s.pairs, s.guardrail)),
            unit_price: custom_metric_price(),
        },
        Line {
            item: Item::Alarms,
            quantity: Decimal::from(alarm_metric_count(s.guardrail)),
            unit_price: alarm_metric_price(),
        },
        Line {
            item: Item::Dashboards,
            quantity: Decimal::from(DASHBOARDS),
            unit_price: dashboard_price(),
        },
        Line {
            item: Item::LogIngestion,
            quantity: ingested,
            unit_price: log_ingestion_price(),
        },
        Line {
            item: Item::LogStorage,
            quantity: stored,
            unit_price: log_storage_price(),
        },
        Line {
            item: Item::XrayTraces,
            quantity: xray_traces(s.requests) / Decimal::from(1_000_000),
            unit_price: xray_price_per_million(),
        },
    ]
}

/// The bill's total, USD.
pub fn total(lines: &[Line]) -> Decimal {
    lines.iter().map(Line::usd).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn metric_count_follows_the_catalog() {
        // Latency, Errors, CostUSD: [Service] + per pair; InputTokens, OutputTokens: per pair;
        // TimeToFirstToken, OverheadLatency, Throttles, BudgetRejections, StoreErrors: [Service].
        assert_eq!(custom_metric_count(1, false), 13);
        assert_eq!(custom_metric_count(2, false), 18);
        assert_eq!(custom_metric_count(3, false), 23);
        // GuardrailInterventions [Service].
        assert_eq!(custom_metric_count(1, true), 14);
        assert_eq!(
            custom_metric_count(0, false),
            8,
            "no model answered: [Service] sets only"
        );
    }

    #[test]
    fn xray_sampling() {
        assert_eq!(xray_traces(10_000), d("10000"));
        // 1 a second for 30 days, then 5 % of the rest.
        assert_eq!(xray_traces(2_592_000 + 1_000_000), d("2642000"));
    }

    #[test]
    fn the_readme_scenario() {
        let s = Scenario {
            requests: 10_000,
            pairs: 1,
            log_bytes_per_request: 2_000,
            log_retention_days: 14,
            guardrail: false,
        };
        let lines = bill(&s);
        let usd: Vec<Decimal> = lines.iter().map(Line::usd).collect();
        // 13 × 0.30; 14 × 0.10; 1 × 3
        assert_eq!(usd[0], d("3.90"));
        assert_eq!(usd[1], d("1.40"));
        assert_eq!(usd[2], d("3"));
        // 10,000 × 2,000 B = 20,000,000 B / 2^30 GB × 0.50
        assert_eq!(lines[3].quantity, d("20000000") / d("1073741824"));
        assert_eq!(usd[3].round_dp(6), d("0.009313"));
        // × 14 / 30 days kept × 0.03
        assert_eq!(usd[4].round_dp(8), d("0.00026077"));
        // 10,000 traces × 5 / 1M
        assert_eq!(usd[5], d("0.05"));
        assert_eq!(total(&lines).round_dp(4), d("8.3596"));
    }

    /// The part of `serverless.yml` after each `Type: AWS::CloudWatch::Alarm`, up to the next
    /// resource.
    fn template_alarms() -> Vec<(String, u64)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../serverless.yml");
        let yml = std::fs::read_to_string(path).expect("serverless.yml");
        yml.split("\n      Type: ")
            .filter(|chunk| chunk.starts_with("AWS::CloudWatch::Alarm"))
            .map(|chunk| {
                let name = chunk
                    .lines()
                    .find_map(|l| {
                        l.trim()
                            .strip_prefix("AlarmName: ${self:custom.alarmPrefix}-")
                    })
                    .expect("AlarmName")
                    .to_owned();
                let math = chunk.matches("MetricStat:").count() as u64;
                (name, math.max(1))
            })
            .collect()
    }

    #[test]
    fn alarms_match_the_template() {
        let ours: Vec<(String, u64)> = ALARMS
            .iter()
            .map(|a| (a.name.to_owned(), a.metrics))
            .collect();
        assert_eq!(
            ours,
            template_alarms(),
            "ALARMS must list serverless.yml's alarms and the metrics each is billed for"
        );
        assert_eq!(alarm_metric_count(false), 14);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../serverless.yml");
        let yml = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            yml.matches("Type: AWS::CloudWatch::Dashboard").count() as u64,
            DASHBOARDS
        );
    }
}
