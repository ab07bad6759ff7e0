//! `chatbot cost-report` flags.

use std::time::Duration;

use std::str::FromStr;

use aws_smithy_types::DateTime;
use rust_decimal::Decimal;

use super::format::OutputFormat;
use super::window::{parse_since, parse_time};
use chatbot_service::telemetry::catalog::{DIM_MODEL, DIM_VARIANT};

/// Short examples for `-h`.
const EXAMPLES: &str = "\
Examples:
  chatbot cost-report --service chatbot-dev --since 7d
  chatbot cost-report --service chatbot-dev --since 24h --by hour --format csv
  chatbot cost-report --service chatbot-dev --start 2025-07-01T00:00:00Z --end 2025-07-08T00:00:00Z --format json
  chatbot cost-report --service chatbot-dev --since 24h --top 5 --log-group /aws/lambda/chatbot-dev-api
  chatbot cost-report --service chatbot-dev --since 7d --reconcile --max-drift 2 --log-group /aws/lambda/chatbot-dev-api

Run with --help for sample output.";

/// Examples with real output (captured against moto in the test's data set) for `--help`.
const LONG_EXAMPLES: &str = include_str!("help.txt");

/// Read what the deployed function measured (its CloudWatch metrics and summary log lines) and
/// report cost per model, variant, day or hour: requests, errors, tokens, USD, USD per request and per
/// 1K tokens, and a 30-day projection.
///
/// Figures are sums of the function's own metrics over the window (requests = `Latency`'s sample
/// count; `Errors`, `InputTokens`, `OutputTokens`, `CostUSD`); nothing is re-priced. With
/// `--reconcile`, the token counts per model against `AWS/Bedrock`'s instead. Exit status: 0
/// report printed, 1 error (credentials, access, network), 2 bad flags, 3 no data in the
/// window, 4 token drift above `--max-drift` (`--reconcile`).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXAMPLES, after_long_help = LONG_EXAMPLES)]
pub struct ReportArgs {
    /// Window ending at --end (default now): a number and m, h, d or w.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_since, conflicts_with = "start")]
    pub since: Duration,

    /// Window start, RFC 3339 (e.g. 2025-07-20T00:00:00Z); replaces --since.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start: Option<DateTime>,

    /// Window end, RFC 3339. Default: now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub end: Option<DateTime>,

    /// One row per model, per variant, per UTC day or per UTC hour.
    #[arg(long, value_enum, default_value = "model")]
    pub by: GroupBy,

    /// Also list the N most expensive single requests (CloudWatch Logs Insights over --log-group).
    #[arg(long, value_name = "N", requires = "log_groups", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub top: Option<u32>,

    /// The function's log group (repeat for several, up to 50): its summary lines give the
    /// count of requests with an unknown cost, --top, and --reconcile's cache tokens.
    #[arg(long = "log-group", value_name = "NAME")]
    pub log_groups: Vec<String>,

    /// Instead of the cost table: compare the function's input, output (and, with
    /// --log-group, cache) tokens per model with AWS/Bedrock's over the window; print the
    /// drift per model in %, exit 4 when one is above --max-drift.
    #[arg(long, conflicts_with_all = ["top", "by"])]
    pub reconcile: bool,

    /// --reconcile: the largest drift accepted, in % (either direction).
    #[arg(long, value_name = "PCT", default_value = "2", value_parser = parse_percent, requires = "reconcile")]
    pub max_drift: Decimal,

    /// Give up on the Logs Insights query after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub query_timeout: u64,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,

    /// The `Service` dimension: the deployed stage's service name (e.g. chatbot-dev).
    #[arg(long, env = "CHATBOT_SERVICE_NAME", default_value = "chatbot")]
    pub service: String,

    /// CloudWatch namespace of the function's metrics.
    #[arg(
        long,
        env = "CHATBOT_METRICS_NAMESPACE",
        default_value = "ServerlessChatbot"
    )]
    pub namespace: String,

    /// No progress messages on stderr.
    #[arg(long, short)]
    pub quiet: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// A non-negative percentage: `2`, `0.5`.
fn parse_percent(text: &str) -> Result<Decimal, String> {
    match Decimal::from_str(text.trim()) {
        Ok(d) if !d.is_sign_negative() => Ok(d),
        _ => Err(format!(
            "{text:?} is not a percentage (a number >= 0, e.g. 2 or 0.5)"
        )),
    }
}

/// Where and as whom to call AWS. Unset flags fall back to the SDK's standard chain
/// (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ~/.aws/config, SSO, instance roles).
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// AWS region (default: the SDK's chain, e.g. AWS_REGION or the profile's region).
    #[arg(long)]
    pub region: Option<String>,

    /// Named profile from ~/.aws/config.
    #[arg(long)]
    pub profile: Option<String>,

    /// Send AWS calls to this endpoint instead (e.g. a local moto server in tests).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// What one row of the report stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// One row per model id (the `Model` dimension).
    Model,
    /// One row per A/B variant (the `Variant` dimension).
    Variant,
    /// One row per UTC day.
    Day,
    /// One row per UTC hour.
    Hour,
}

/// How rows are keyed: by the values of a metric dimension, or by UTC time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Rows per value of this dimension (summed over the `[Service, Model, Variant]` series).
    Dimension(&'static str),
    /// Rows per time bucket of this many seconds.
    Time(i64),
}

impl GroupBy {
    pub fn grouping(self) -> Grouping {
        match self {
            GroupBy::Model => Grouping::Dimension(DIM_MODEL),
            GroupBy::Variant => Grouping::Dimension(DIM_VARIANT),
            GroupBy::Day => Grouping::Time(super::window::DAY),
            GroupBy::Hour => Grouping::Time(super::window::HOUR),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Variant => "variant",
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
        }
    }
}
