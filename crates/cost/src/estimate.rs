//! `chatbot cost-estimate`: a monthly bill for a traffic scenario, line by line (Bedrock input and
//! output tokens, optionally a guardrail's text units, Lambda compute and requests, API Gateway
//! requests), from the same price table
//! and arithmetic the function uses for per-request cost ([`chatbot_service::pricing`]), plus
//! the deploy's observability ([`crate::observability`]: custom metrics, alarms, dashboard, logs,
//! X-Ray traces).
//!
//! List prices only: AWS free tiers (Lambda's monthly free requests and GB-seconds, API
//! Gateway's first-year allowance, CloudWatch's and X-Ray's monthly allowances) are not
//! subtracted, and the output says so.

use std::path::PathBuf;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::observability::{self as obs, LOG_BYTES_PER_REQUEST};
use crate::report::format::{Align, OutputFormat, Table, exact, fixed, grouped};
use chatbot_service::config::DEFAULT_MODEL_ID;
use chatbot_service::model::Usage;
use chatbot_service::pricing::{Arch, PriceTable, PricingError, gb_seconds};

const AMOUNT_DP: u32 = 4;
const UNIT_DP: u32 = 8;

const EXAMPLES: &str = "\
Examples:
  chatbot cost-estimate
  chatbot cost-estimate --requests 10000 --input-tokens 800 --output-tokens 200 \\
      --model us.amazon.nova-micro-v1:0 --model us.amazon.nova-lite-v1:0 \\
      --model us.amazon.nova-pro-v1:0 --memory 128 --arch arm64 --avg-duration-ms 1000
  chatbot cost-estimate --requests 250000 --model us.amazon.nova-lite-v1:0 --format json
  chatbot cost-estimate --guardrail   # with the deploy's guardrail (content filters + PII)
  scripts/readme-cost-table   # the README's table (Markdown)";

/// Estimate a month's bill for a traffic scenario: Bedrock input and output tokens, Lambda
/// compute (GB-seconds from memory × duration) and requests, API Gateway requests — with the
/// price table the function itself uses — and the deploy's observability (custom metrics,
/// alarms, dashboard, log ingestion and storage, X-Ray traces). Free tier not applied.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct EstimateArgs {
    /// Requests per month.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,

    /// Input tokens per request (system prompt + conversation so far + the new message).
    #[arg(long, default_value_t = 800)]
    pub input_tokens: u64,

    /// Output tokens per request.
    #[arg(long, default_value_t = 200)]
    pub output_tokens: u64,

    /// Turns per conversation with conversation memory (1 = every request stands alone). Each
    /// earlier turn is sent again as history: turn k adds (k − 1) × (input + output tokens),
    /// so the average request carries (turns − 1) / 2 earlier turns.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub turns: u64,

    /// Model or inference-profile id to price; repeat to compare several.
    #[arg(long = "model", value_name = "ID", default_value = DEFAULT_MODEL_ID)]
    pub models: Vec<String>,

    /// Lambda memory size, MB.
    #[arg(long, value_name = "MB", default_value_t = 128, value_parser = clap::value_parser!(u32).range(128..=10_240))]
    pub memory: u32,

    /// Lambda architecture.
    #[arg(long, value_enum, default_value = "arm64")]
    pub arch: Arch,

    /// Average billed duration of one invocation, ms (the whole request, model wait included).
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    pub avg_duration_ms: u64,

    /// Requests arrive through a Lambda Function URL (no per-request charge), not an HTTP API.
    #[arg(long)]
    pub no_api_gateway: bool,

    /// With a Bedrock guardrail: the one the deploy creates (content filters with prompt
    /// attacks, and PII masking), assessing every request's input and its reply. Adds its text
    /// units (a unit is up to 1,000 characters, at CHARS_PER_TOKEN characters a token), its
    /// metric and its alarm.
    #[arg(long)]
    pub guardrail: bool,

    /// Model × variant pairs the deploy answers with (each adds 5 custom metrics). Each row of the
    /// estimate is a deploy of that one model: 1.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub variants: u64,

    /// Log bytes one request writes (its EMF document and summary line). The default is measured
    /// from the service's real output for a typical chat request.
    #[arg(long, value_name = "N", default_value_t = LOG_BYTES_PER_REQUEST)]
    pub log_bytes_per_request: u64,

    /// Days the log groups keep their logs (serverless.yml: logRetentionDays, 14 in dev).
    #[arg(long, value_name = "DAYS", default_value_t = 14, value_parser = clap::value_parser!(u64).range(1..=3653))]
    pub log_retention_days: u64,

    /// A pricing table (JSON, the shape of crates/service/src/prices.json) replacing the built-in one.
    #[arg(long, env = "CHATBOT_PRICING_FILE")]
    pub pricing_file: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// Characters of text a token stands for on average (English; the service's own estimator
/// uses the same rule).
pub const CHARS_PER_TOKEN: u64 = 4;

/// The policies of the guardrail the deploy creates that bill text units: content filters
/// (prompt attack included) and sensitive-information (PII) filters.
pub const DEPLOY_GUARDRAIL_POLICIES: &[&str] = &["contentPolicy", "sensitiveInformationPolicy"];

/// The month's guardrail bill: units per request × requests × each policy's price per 1,000.
fn guardrail_cost(table: &PriceTable, args: &EstimateArgs) -> Result<Decimal, EstimateError> {
    let prices = table
        .guardrails
        .as_ref()
        .ok_or(EstimateError::NoGuardrailPrices)?;
    let mut per_unit = Decimal::ZERO;
    for policy in DEPLOY_GUARDRAIL_POLICIES {
        per_unit += prices
            .per1k_units
            .get(*policy)
            .ok_or(EstimateError::NoGuardrailPrices)?;
    }
    let units = Decimal::from(args.guardrail_units_per_request()) * Decimal::from(args.requests);
    Ok(units * per_unit / Decimal::from(1000))
}

#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    #[error(
        "--guardrail needs `guardrails` prices for {DEPLOY_GUARDRAIL_POLICIES:?} in the pricing table"
    )]
    NoGuardrailPrices,
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error("no price for model {model:?} in the pricing table; priced models: {known}")]
    UnknownModel { model: String, known: String },
}

/// One model's monthly bill, USD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub model: String,
    pub bedrock_input: Decimal,
    pub bedrock_output: Decimal,
    pub lambda_compute: Decimal,
    pub lambda_requests: Decimal,
    pub api_gateway: Decimal,
    /// The guardrail's text units (0 without `--guardrail`).
    pub guardrail: Decimal,
    /// The deploy's observability (the same for every model of a scenario).
    pub observability: Decimal,
}

impl Estimate {
    /// What the requests themselves cost: Bedrock, Lambda and API Gateway.
    pub fn request_costs(&self) -> Decimal {
        self.bedrock_input
            + self.bedrock_output
            + self.guardrail
            + self.lambda_compute
            + self.lambda_requests
            + self.api_gateway
    }

    /// The month's bill: the requests and the observability.
    pub fn total(&self) -> Decimal {
        self.request_costs() + self.observability
    }

    pub fn per_request(&self, requests: u64) -> Decimal {
        self.total() / Decimal::from(requests.max(1))
    }
}

impl EstimateArgs {
    /// Input tokens of the average request: its own, plus the history of the earlier turns of
    /// its conversation (turn k re-sends k − 1 exchanges; over T turns, (T − 1) / 2 on average).
    pub fn average_input_tokens(&self) -> Decimal {
        let exchange = Decimal::from(self.input_tokens + self.output_tokens);
        Decimal::from(self.input_tokens)
            + exchange * Decimal::from(self.turns - 1) / Decimal::from(2)
    }

    fn input_cost(&self, input_per1k: Decimal) -> Decimal {
        self.average_input_tokens() * Decimal::from(self.requests) * input_per1k
            / Decimal::from(1000)
    }

    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.requests * self.input_tokens,
            output_tokens: self.requests * self.output_tokens,
            ..Usage::default()
        }
    }

    fn gb_seconds(&self) -> Decimal {
        gb_seconds(self.memory, self.avg_duration_ms) * Decimal::from(self.requests)
    }

    /// The scenario the observability lines are priced for.
    pub fn observability(&self) -> obs::Scenario {
        obs::Scenario {
            requests: self.requests,
            pairs: self.variants,
            log_bytes_per_request: self.log_bytes_per_request,
            log_retention_days: self.log_retention_days,
            guardrail: self.guardrail,
        }
    }

    /// Guardrail text units one average request is billed for, per policy that assesses it:
    /// its input and its reply, each in units of up to 1,000 characters.
    pub fn guardrail_units_per_request(&self) -> u64 {
        let chars = |tokens: Decimal| {
            (tokens * Decimal::from(CHARS_PER_TOKEN))
                .ceil()
                .to_string()
                .parse::<u64>()
                .unwrap_or(u64::MAX)
        };
        chars(self.average_input_tokens()).div_ceil(1000)
            + chars(Decimal::from(self.output_tokens)).div_ceil(1000)
    }

    fn api_requests(&self) -> u64 {
        if self.no_api_gateway {
            0
        } else {
            self.requests
        }
    }

    /// The command line that reproduces this output (for the generated-table note).
    fn command_line(&self) -> String {
        let mut cmd = format!(
            "chatbot cost-estimate --requests {} --input-tokens {} --output-tokens {}",
            self.requests, self.input_tokens, self.output_tokens
        );
        for m in &self.models {
            cmd.push_str(&format!(" --model {m}"));
        }
        if self.turns > 1 {
            cmd.push_str(&format!(" --turns {}", self.turns));
        }
        cmd.push_str(&format!(
            " --memory {} --arch {} --avg-duration-ms {}",
            self.memory,
            arch_name(self.arch),
            self.avg_duration_ms
        ));
        if self.no_api_gateway {
            cmd.push_str(" --no-api-gateway");
        }
        if self.guardrail {
            cmd.push_str(" --guardrail");
        }
        if self.variants != 1 {
            cmd.push_str(&format!(" --variants {}", self.variants));
        }
        if self.log_bytes_per_request != LOG_BYTES_PER_REQUEST {
            cmd.push_str(&format!(
                " --log-bytes-per-request {}",
                self.log_bytes_per_request
            ));
        }
        if self.log_retention_days != 14 {
            cmd.push_str(&format!(
                " --log-retention-days {}",
                self.log_retention_days
            ));
        }
        cmd
    }
}

fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "arm64",
        Arch::X86_64 => "x86_64",
    }
}

/// The bill for `model` under the scenario in `args`.
pub fn estimate(
    table: &PriceTable,
    args: &EstimateArgs,
    model: &str,
) -> Result<Estimate, EstimateError> {
    let price = table.model(model).ok_or_else(|| {
        let mut known: Vec<&str> = table.models.keys().map(String::as_str).collect();
        known.sort_unstable();
        EstimateError::UnknownModel {
            model: model.to_owned(),
            known: known.join(", "),
        }
    })?;
    let usage = args.usage();
    let n = Decimal::from(args.requests);
    let guardrail = match args.guardrail {
        true => guardrail_cost(table, args)?,
        false => Decimal::ZERO,
    };
    Ok(Estimate {
        guardrail,
        model: model.to_owned(),
        bedrock_input: args.input_cost(price.input_per1k),
        bedrock_output: Decimal::from(usage.output_tokens) * price.output_per1k
            / Decimal::from(1000),
        lambda_compute: table.lambda_compute(args.arch, args.memory, args.avg_duration_ms) * n,
        lambda_requests: table.lambda.per_request * n,
        api_gateway: table.http_api_per_request * Decimal::from(args.api_requests()),
        observability: obs::total(&obs::bill(&args.observability())).round_dp(10),
    })
}

/// The command's entry point (from `chatbot cost-estimate`).
pub fn run(args: EstimateArgs) -> Result<(), String> {
    let table = match &args.pricing_file {
        Some(path) => PriceTable::from_file(path).map_err(|e| e.to_string())?,
        None => PriceTable::builtin(),
    };
    let estimates = args
        .models
        .iter()
        .map(|m| estimate(&table, &args, m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    print!("{}", render(&table, &args, &estimates));
    Ok(())
}

pub fn render(table: &PriceTable, args: &EstimateArgs, estimates: &[Estimate]) -> String {
    match args.format {
        OutputFormat::Table => human(table, args, estimates, false),
        OutputFormat::Markdown => human(table, args, estimates, true),
        OutputFormat::Csv => csv(args, estimates),
        OutputFormat::Json => {
            serde_json::to_string_pretty(&to_json(table, args, estimates)).unwrap_or_default()
                + "\n"
        }
    }
}

fn scenario_text(args: &EstimateArgs) -> String {
    let history = if args.turns > 1 {
        format!(
            " in conversations of {} turns (history included: {} input tokens on average)",
            args.turns,
            quantity(args.average_input_tokens())
        )
    } else {
        String::new()
    };
    let guardrail = if args.guardrail {
        let prices = DEPLOY_GUARDRAIL_POLICIES.join(" + ");
        format!(
            "; a guardrail ({prices}) assessing {} text units a request ({CHARS_PER_TOKEN} characters a token, units of up to 1,000 characters, input and reply)",
            args.guardrail_units_per_request()
        )
    } else {
        String::new()
    };
    format!(
        "{} requests/month, {} input + {} output tokens each{history}{guardrail}; Lambda {} MB {}, {} ms average ({} GB-s); {}",
        grouped(args.requests),
        grouped(args.input_tokens),
        grouped(args.output_tokens),
        args.memory,
        arch_name(args.arch),
        grouped(args.avg_duration_ms),
        quantity(args.gb_seconds()),
        if args.no_api_gateway {
            "Lambda Function URL (no request charge)"
        } else {
            "API Gateway HTTP API"
        }
    )
}

/// `1250` → `1,250`; fractions as exact decimals.
fn quantity(d: Decimal) -> String {
    match u64::try_from(d.normalize()) {
        Ok(n) if d.fract().is_zero() => grouped(n),
        _ => exact(d),
    }
}

fn human(
    table: &PriceTable,
    args: &EstimateArgs,
    estimates: &[Estimate],
    markdown: bool,
) -> String {
    let guardrail_column: &[&str] = if args.guardrail { &["Guardrail"] } else { &[] };
    let headers = [
        &["Model", "Bedrock input", "Bedrock output"][..],
        guardrail_column,
        &[
            "Lambda compute",
            "Lambda requests",
            "API Gateway",
            "Observability",
            "Total / month",
            "Per request",
        ],
    ]
    .concat();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| {
            if markdown {
                (*h).to_owned()
            } else {
                h.to_uppercase()
            }
        })
        .collect();
    let columns: Vec<(&str, Align)> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), if i == 0 { Align::Left } else { Align::Right }))
        .collect();
    let mut t = Table::new(&columns);
    for e in estimates {
        let model = if markdown {
            format!("`{}`", e.model)
        } else {
            e.model.clone()
        };
        let mut row = vec![
            model,
            fixed(e.bedrock_input, AMOUNT_DP),
            fixed(e.bedrock_output, AMOUNT_DP),
        ];
        if args.guardrail {
            row.push(fixed(e.guardrail, AMOUNT_DP));
        }
        row.extend([
            fixed(e.lambda_compute, AMOUNT_DP),
            fixed(e.lambda_requests, AMOUNT_DP),
            fixed(e.api_gateway, AMOUNT_DP),
            fixed(e.observability, AMOUNT_DP),
            fixed(e.total(), AMOUNT_DP),
            fixed(e.per_request(args.requests), UNIT_DP),
        ]);
        t.push(row);
    }
    let prices = format!(
        "USD per month. Prices: {} (table dated {}). Free tier not applied.",
        table.source.trim_end_matches('.'),
        table.date
    );
    let (obs_table, obs_note) = observability_table(args, markdown);
    if markdown {
        format!(
            "{}\n{}. {prices} Generated by `{}`.\n\n\
             Observability / month (per deploy, the Observability column above):\n\n{}\n{obs_note}\n",
            t.markdown(),
            scenario_text(args),
            args.command_line() + " --format markdown",
            obs_table.markdown(),
        )
    } else {
        format!(
            "Monthly cost estimate: {}\n{prices}\n\n{}\n\
             Observability / month (per deploy, the OBSERVABILITY column above):\n\n{}\n{obs_note}\n",
            scenario_text(args),
            t.aligned(false),
            obs_table.aligned(true),
        )
    }
}

/// `0.0186264515` GB → `0.0186`; whole counts grouped.
fn quantity_text(item: obs::Item, q: Decimal) -> String {
    match item {
        obs::Item::LogIngestion | obs::Item::LogStorage => fixed(q, 4),
        obs::Item::XrayTraces => {
            // Shown as traces, priced per million.
            quantity((q * Decimal::from(1_000_000)).round_dp(0))
        }
        _ => quantity(q),
    }
}

fn quantity_unit(item: obs::Item, args: &EstimateArgs) -> String {
    let s = args.observability();
    match item {
        obs::Item::CustomMetrics => format!(
            "metrics ({} model × variant pair{})",
            s.pairs,
            if s.pairs == 1 { "" } else { "s" }
        ),
        obs::Item::Alarms => format!(
            "alarm metrics ({} alarms)",
            obs::ALARMS
                .iter()
                .filter(|a| s.guardrail || !a.guardrail_only)
                .count()
        ),
        obs::Item::Dashboards => "dashboard".into(),
        obs::Item::LogIngestion => format!(
            "GB ({} requests × {} B)",
            grouped(s.requests),
            grouped(s.log_bytes_per_request)
        ),
        obs::Item::LogStorage => format!("GB-month ({}-day retention)", s.log_retention_days),
        obs::Item::XrayTraces => "traces (default sampling)".into(),
    }
}

/// The observability lines as a table (with a TOTAL row) and the note under it.
fn observability_table(args: &EstimateArgs, markdown: bool) -> (Table, String) {
    let lines = obs::bill(&args.observability());
    let h = |s: &'static str| {
        if markdown {
            s.to_owned()
        } else {
            s.to_uppercase()
        }
    };
    let (line, qty, unit, price, usd) = (
        h("Line"),
        h("Quantity"),
        h("Unit"),
        h("Unit price"),
        h("USD / month"),
    );
    let mut t = Table::new(&[
        (line.as_str(), Align::Left),
        (qty.as_str(), Align::Right),
        (unit.as_str(), Align::Left),
        (price.as_str(), Align::Right),
        (usd.as_str(), Align::Right),
    ]);
    for l in &lines {
        t.push(vec![
            l.item.label().into(),
            quantity_text(l.item, l.quantity),
            quantity_unit(l.item, args),
            format!("{} / {}", fixed(l.unit_price, 2), l.item.unit()),
            fixed(l.usd(), AMOUNT_DP),
        ]);
    }
    t.push(vec![
        if markdown { "**Total**" } else { "TOTAL" }.into(),
        String::new(),
        String::new(),
        String::new(),
        fixed(obs::total(&lines), AMOUNT_DP),
    ]);
    let note = format!(
        "Prices: {}. Free tier not applied (CloudWatch: 10 metrics, 10 alarm metrics, 3 dashboards, \
         5 GB of logs; X-Ray: 100,000 traces). Custom metrics are a ceiling: CloudWatch meters a \
         metric only in the hours it receives data. Logs: one EMF document and one summary line \
         per request ({} B measured for a typical chat request; `--log-bytes-per-request`), \
         stored uncompressed (an upper bound).",
        obs::PRICES_SOURCE,
        grouped(LOG_BYTES_PER_REQUEST)
    );
    (t, note)
}

fn csv(args: &EstimateArgs, estimates: &[Estimate]) -> String {
    let guardrail_column: &[(&str, Align)] = if args.guardrail {
        &[("guardrail_usd", Align::Right)]
    } else {
        &[]
    };
    let columns = [
        &[
            ("model", Align::Left),
            ("bedrock_input_usd", Align::Right),
            ("bedrock_output_usd", Align::Right),
        ][..],
        guardrail_column,
        &[
            ("lambda_compute_usd", Align::Right),
            ("lambda_requests_usd", Align::Right),
            ("api_gateway_usd", Align::Right),
            ("observability_usd", Align::Right),
            ("total_usd", Align::Right),
            ("per_request_usd", Align::Right),
        ],
    ]
    .concat();
    let mut t = Table::new(&columns);
    for e in estimates {
        let mut row = vec![
            e.model.clone(),
            exact(e.bedrock_input),
            exact(e.bedrock_output),
        ];
        if args.guardrail {
            row.push(exact(e.guardrail));
        }
        row.extend([
            exact(e.lambda_compute),
            exact(e.lambda_requests),
            exact(e.api_gateway),
            exact(e.observability),
            exact(e.total()),
            exact(e.per_request(args.requests)),
        ]);
        t.push(row);
    }
    // A second block (after a blank line, with its own header): the observability lines.
    let mut o = Table::new(&[
        ("observability_line", Align::Left),
        ("quantity", Align::Right),
        ("unit", Align::Left),
        ("unit_price_usd", Align::Right),
        ("usd", Align::Right),
    ]);
    for l in obs::bill(&args.observability()) {
        o.push(vec![
            l.item.key().into(),
            exact(l.quantity.round_dp(10)),
            l.item.unit().into(),
            exact(l.unit_price),
            exact(l.usd().round_dp(10)),
        ]);
    }
    format!("{}\r\n{}", t.csv(), o.csv())
}

fn to_json(table: &PriceTable, args: &EstimateArgs, estimates: &[Estimate]) -> Value {
    let usage = args.usage();
    let scenario = args.observability();
    let lines = obs::bill(&scenario);
    json!({
        "scenario": {
            "requestsPerMonth": args.requests,
            "inputTokensPerRequest": args.input_tokens,
            "outputTokensPerRequest": args.output_tokens,
            "turnsPerConversation": args.turns,
            "memoryMb": args.memory,
            "arch": arch_name(args.arch),
            "avgDurationMs": args.avg_duration_ms,
            "apiGateway": !args.no_api_gateway,
            "guardrail": args.guardrail,
            "modelVariantPairs": args.variants,
            "logBytesPerRequest": args.log_bytes_per_request,
            "logRetentionDays": args.log_retention_days,
        },
        "usage": {
            // Whole tokens (history makes the average fractional for odd exchanges).
            "inputTokens": (args.average_input_tokens() * Decimal::from(args.requests))
                .round()
                .to_string()
                .parse::<u64>()
                .unwrap_or(usage.input_tokens),
            "outputTokens": usage.output_tokens,
            "gbSeconds": exact(args.gb_seconds()),
            "lambdaRequests": args.requests,
            "apiGatewayRequests": args.api_requests(),
            "guardrailTextUnits": if args.guardrail {
                args.guardrail_units_per_request() * args.requests
            } else {
                0
            },
            "customMetrics": obs::custom_metric_count(scenario.pairs, scenario.guardrail),
            "alarmMetrics": obs::alarm_metric_count(args.guardrail),
            "dashboards": obs::DASHBOARDS,
            "logGb": exact(obs::log_gb(&scenario).round_dp(10)),
            "xrayTraces": exact(obs::xray_traces(scenario.requests)),
        },
        "pricing": { "source": table.source, "date": table.date, "currency": table.currency },
        "freeTierApplied": false,
        "observability": {
            "pricesSource": obs::PRICES_SOURCE,
            "lines": lines.iter().map(|l| json!({
                "line": l.item.key(),
                "quantity": exact(l.quantity.round_dp(10)),
                "unit": l.item.unit(),
                "unitPriceUsd": exact(l.unit_price),
                "usd": exact(l.usd().round_dp(10)),
            })).collect::<Vec<_>>(),
            "totalUsd": exact(obs::total(&lines).round_dp(10)),
        },
        "models": estimates.iter().map(|e| json!({
            "model": e.model,
            "bedrockInputUsd": exact(e.bedrock_input),
            "bedrockOutputUsd": exact(e.bedrock_output),
            "guardrailUsd": exact(e.guardrail),
            "lambdaComputeUsd": exact(e.lambda_compute),
            "lambdaRequestsUsd": exact(e.lambda_requests),
            "apiGatewayUsd": exact(e.api_gateway),
            "requestCostsUsd": exact(e.request_costs()),
            "observabilityUsd": exact(e.observability.round_dp(10)),
            "totalUsd": exact(e.total().round_dp(10)),
            "perRequestUsd": exact(e.per_request(args.requests).round_dp(10)),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::str::FromStr;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EstimateArgs,
    }

    fn args(extra: &[&str]) -> EstimateArgs {
        let argv = std::iter::once("cost-estimate").chain(extra.iter().copied());
        Cli::try_parse_from(argv).unwrap().args
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn seed_scenario_nova_micro() {
        let a = args(&["--avg-duration-ms", "1000"]);
        let e = estimate(&PriceTable::builtin(), &a, "us.amazon.nova-micro-v1:0").unwrap();
        // 10,000 × 800 = 8,000,000 input tokens × 0.000035 / 1K = 0.28
        assert_eq!(e.bedrock_input, d("0.28"));
        // 10,000 × 200 = 2,000,000 output tokens × 0.00014 / 1K = 0.28
        assert_eq!(e.bedrock_output, d("0.28"));
        // 128 MB = 0.125 GB × 1 s × 10,000 = 1,250 GB-s × 0.0000133334 = 0.01666675
        assert_eq!(e.lambda_compute, d("0.01666675"));
        // 10,000 × 0.0000002 = 0.002
        assert_eq!(e.lambda_requests, d("0.002"));
        // 10,000 × 0.000001 = 0.01
        assert_eq!(e.api_gateway, d("0.01"));
        // 0.28 + 0.28 + 0.01666675 + 0.002 + 0.01
        assert_eq!(e.request_costs(), d("0.58866675"));
        // Plus the deploy's observability (crate::observability's own test has the lines).
        let obs = obs::total(&obs::bill(&a.observability())).round_dp(10);
        assert_eq!(e.observability, obs);
        assert_eq!(e.total(), d("0.58866675") + obs);
        assert_eq!(e.per_request(10_000), e.total() / d("10000"));
    }

    #[test]
    fn seed_scenario_claude_haiku_x86_no_api_gateway() {
        let a = args(&[
            "--arch",
            "x86_64",
            "--memory",
            "512",
            "--avg-duration-ms",
            "2500",
            "--no-api-gateway",
        ]);
        let e = estimate(
            &PriceTable::builtin(),
            &a,
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        )
        .unwrap();
        // 8,000,000 × 0.0008 / 1K = 6.4
        assert_eq!(e.bedrock_input, d("6.4"));
        // 2,000,000 × 0.004 / 1K = 8
        assert_eq!(e.bedrock_output, d("8"));
        // 512 MB = 0.5 GB × 2.5 s × 10,000 = 12,500 GB-s × 0.0000166667 = 0.20833375
        assert_eq!(e.lambda_compute, d("0.20833375"));
        assert_eq!(e.lambda_requests, d("0.002"));
        assert_eq!(e.api_gateway, Decimal::ZERO);
        // 6.4 + 8 + 0.20833375 + 0.002
        assert_eq!(e.request_costs(), d("14.61033375"));
    }

    #[test]
    fn history_grows_the_input_with_the_conversation() {
        // 4 turns: the average request re-sends (4 − 1) / 2 = 1.5 earlier exchanges of
        // 800 + 200 tokens: 800 + 1,500 = 2,300 input tokens.
        let a = args(&["--turns", "4", "--format", "markdown"]);
        assert_eq!(a.average_input_tokens(), d("2300"));
        let e = estimate(&PriceTable::builtin(), &a, "us.amazon.nova-micro-v1:0").unwrap();
        // 10,000 × 2,300 = 23,000,000 × 0.000035 / 1K = 0.805; output unchanged.
        assert_eq!(e.bedrock_input, d("0.805"));
        assert_eq!(e.bedrock_output, d("0.28"));
        let md = render(&PriceTable::builtin(), &a, &[e]);
        assert!(md.contains("conversations of 4 turns"), "{md}");
        assert!(md.contains("--turns 4"), "{md}");
    }

    #[test]
    fn a_guardrail_bills_its_text_units_per_policy() {
        let a = args(&["--guardrail", "--format", "markdown"]);
        // 800 tokens × 4 = 3,200 characters in: 4 units; 200 × 4 = 800 out: 1 unit.
        assert_eq!(a.guardrail_units_per_request(), 5);
        let t = PriceTable::builtin();
        let e = estimate(&t, &a, "us.amazon.nova-micro-v1:0").unwrap();
        // 50,000 units × (0.15 content + 0.10 sensitive information) / 1,000
        assert_eq!(e.guardrail, d("12.5"));
        assert_eq!(e.request_costs(), d("0.58866675") + d("12.5"));
        let plain = estimate(&t, &args(&[]), "us.amazon.nova-micro-v1:0").unwrap();
        assert_eq!(plain.guardrail, Decimal::ZERO);
        // Its metric (GuardrailInterventions) is on the observability bill.
        assert_eq!(
            e.observability - plain.observability,
            obs::custom_metric_price()
                + obs::alarm_metric_price()
                    * Decimal::from(obs::alarm_metric_count(true) - obs::alarm_metric_count(false))
        );
        let md = render(&t, &a, &[e]);
        assert!(md.contains("| Guardrail |"), "{md}");
        assert!(md.contains("| 12.5000 |"), "{md}");
        assert!(md.contains("--guardrail"), "{md}");
        let no_prices = PriceTable {
            guardrails: None,
            ..t
        };
        assert!(estimate(&no_prices, &a, "us.amazon.nova-micro-v1:0").is_err());
    }

    #[test]
    fn unknown_models_are_named() {
        let a = args(&[]);
        let err = estimate(&PriceTable::builtin(), &a, "meta.llama-unknown").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("meta.llama-unknown"), "{text}");
        assert!(text.contains("amazon.nova-micro-v1:0"), "{text}");
    }

    #[test]
    fn markdown_says_how_it_was_made() {
        let a = args(&[
            "--model",
            "us.amazon.nova-micro-v1:0",
            "--model",
            "us.amazon.nova-lite-v1:0",
            "--format",
            "markdown",
        ]);
        let t = PriceTable::builtin();
        let es: Vec<Estimate> = a
            .models
            .iter()
            .map(|m| estimate(&t, &a, m).unwrap())
            .collect();
        let md = render(&t, &a, &es);
        let obs = fixed(es[0].observability, AMOUNT_DP);
        let total = fixed(es[0].total(), AMOUNT_DP);
        assert!(
            md.contains(&format!("| `us.amazon.nova-micro-v1:0` | 0.2800 | 0.2800 | 0.0167 | 0.0020 | 0.0100 | {obs} | {total} |")),
            "{md}"
        );
        assert!(md.contains("Observability / month"), "{md}");
        assert!(md.contains("| Custom metrics | 13 | metrics (1 model × variant pair) | 0.30 / metric-month | 3.9000 |"), "{md}");
        assert!(
            md.contains(
                "| Alarms | 14 | alarm metrics (10 alarms) | 0.10 / alarm metric-month | 1.4000 |"
            ),
            "{md}"
        );
        assert!(md.contains("Free tier not applied"), "{md}");
        assert!(
            md.contains("Generated by `chatbot cost-estimate --requests 10000"),
            "{md}"
        );
        assert!(md.contains(&t.date), "{md}");
    }
}
