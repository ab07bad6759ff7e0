//! The report as a table, JSON, CSV or Markdown.
//!
//! Human formats (table, Markdown) round USD for reading: amounts to 6 decimals, per-request and
//! per-1K-token figures to 8. Machine formats (JSON, CSV) carry the exact decimals; JSON writes
//! USD as strings so no reader turns them into binary floats (as AWS Cost Explorer does).

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::args::GroupBy;
use super::format::{Align, OutputFormat, Table, exact, fixed, grouped};
use super::logs::TopRequest;
use super::rows::{Row, Rows};
use super::window::{Window, human_span, rfc3339};

const AMOUNT_DP: u32 = 6;
const UNIT_DP: u32 = 8;

pub struct Report {
    pub service: String,
    pub namespace: String,
    pub window: Window,
    pub by: GroupBy,
    pub rows: Rows,
    /// `Some` when `--top` was asked for.
    pub top: Option<Vec<TopRequest>>,
}

pub fn render(r: &Report, format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => human(r, false),
        OutputFormat::Markdown => human(r, true),
        OutputFormat::Csv => csv(r),
        OutputFormat::Json => serde_json::to_string_pretty(&to_json(r)).unwrap_or_default() + "\n",
    }
}

fn key_header(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Model => "MODEL",
        GroupBy::Variant => "VARIANT",
        GroupBy::Day => "DAY (UTC)",
        GroupBy::Hour => "HOUR (UTC)",
    }
}

fn human(r: &Report, markdown: bool) -> String {
    let mut t = Table::new(&[
        (key_header(r.by), Align::Left),
        ("REQUESTS", Align::Right),
        ("ERRORS", Align::Right),
        ("INPUT TOKENS", Align::Right),
        ("OUTPUT TOKENS", Align::Right),
        ("COST USD", Align::Right),
        ("USD/REQUEST", Align::Right),
        ("USD/1K TOKENS", Align::Right),
        ("30-DAY USD", Align::Right),
    ]);
    let opt = |d: Option<Decimal>, dp| d.map(|d| fixed(d, dp)).unwrap_or_else(|| "-".into());
    for row in r.rows.rows.iter().chain([&r.rows.total]) {
        let f = &row.figures;
        t.push(vec![
            row.key.clone(),
            grouped(f.requests),
            grouped(f.errors),
            grouped(f.input_tokens),
            grouped(f.output_tokens),
            fixed(f.cost_usd, AMOUNT_DP),
            opt(row.cost_per_request(), UNIT_DP),
            opt(row.cost_per_1k_tokens(), UNIT_DP),
            opt(row.projection_30d(), AMOUNT_DP),
        ]);
    }
    let w = &r.window;
    let mut out = format!(
        "Cost report: service {}, namespace {}, {} to {} ({}), by {}\n\n",
        r.service,
        r.namespace,
        rfc3339(w.start),
        rfc3339(w.end),
        human_span(w.seconds()),
        r.by.as_str()
    );
    out.push_str(&if markdown {
        t.markdown()
    } else {
        t.aligned(true)
    });
    out.push_str(
        "\nCOST USD is the function's own CostUSD metric (Bedrock tokens + Lambda + API Gateway). \
         30-DAY USD = cost × 30 days / the row's time in the window.\n",
    );
    match r.rows.total.figures.cost_unknown {
        Some(0) => {}
        Some(unknown) => out.push_str(&format!(
            "Warning: {unknown} request(s) used a model missing from the pricing table (costUnknown in the summary lines); their cost is not in COST USD.\n"
        )),
        None => out.push_str(
            "Requests with an unknown cost (a model missing from the pricing table): count not available; pass --log-group to count them from the summary lines.\n",
        ),
    }
    if let Some(top) = &r.top {
        out.push_str(&format!(
            "\nMost expensive requests (Logs Insights, {} found):\n\n",
            top.len()
        ));
        let t = top_table(top, true);
        out.push_str(&if markdown {
            t.markdown()
        } else {
            t.aligned(false)
        });
    }
    out
}

fn top_table(top: &[TopRequest], human: bool) -> Table {
    let mut t = Table::new(&[
        ("TIME", Align::Left),
        ("REQUEST ID", Align::Left),
        ("X-RAY TRACE ID", Align::Left),
        ("MODEL", Align::Left),
        ("INPUT TOKENS", Align::Right),
        ("OUTPUT TOKENS", Align::Right),
        ("COST USD", Align::Right),
    ]);
    let count = |n: Option<u64>| match (n, human) {
        (Some(n), true) => grouped(n),
        (Some(n), false) => n.to_string(),
        (None, _) => String::new(),
    };
    for req in top {
        t.push(vec![
            req.time.clone(),
            req.request_id.clone(),
            req.xray_trace_id.clone().unwrap_or_default(),
            req.model_id.clone().unwrap_or_default(),
            count(req.input_tokens),
            count(req.output_tokens),
            if human {
                fixed(req.cost_usd, UNIT_DP)
            } else {
                exact(req.cost_usd)
            },
        ]);
    }
    t
}

/// Rows then the TOTAL row; with `--top`, a blank line and a second CSV block (its own header).
fn csv(r: &Report) -> String {
    let mut t = Table::new(&[
        (r.by.as_str(), Align::Left),
        ("requests", Align::Right),
        ("errors", Align::Right),
        ("input_tokens", Align::Right),
        ("output_tokens", Align::Right),
        ("cost_usd", Align::Right),
        ("usd_per_request", Align::Right),
        ("usd_per_1k_tokens", Align::Right),
        ("projected_30d_usd", Align::Right),
        ("cost_unknown_requests", Align::Right),
    ]);
    let opt = |d: Option<Decimal>| d.map(exact).unwrap_or_default();
    for row in r.rows.rows.iter().chain([&r.rows.total]) {
        let f = &row.figures;
        t.push(vec![
            row.key.clone(),
            f.requests.to_string(),
            f.errors.to_string(),
            f.input_tokens.to_string(),
            f.output_tokens.to_string(),
            exact(f.cost_usd),
            opt(row.cost_per_request()),
            opt(row.cost_per_1k_tokens()),
            opt(row.projection_30d()),
            f.cost_unknown.map(|n| n.to_string()).unwrap_or_default(),
        ]);
    }
    let mut out = t.csv();
    if let Some(top) = &r.top {
        out.push_str("\r\n");
        let mut t = top_table(top, false);
        t.snake_case_headers();
        out.push_str(&t.csv());
    }
    out
}

fn row_json(row: &Row) -> Value {
    let f = &row.figures;
    let opt = |d: Option<Decimal>| d.map(|d| Value::String(exact(d))).unwrap_or(Value::Null);
    json!({
        "key": row.key,
        "requests": f.requests,
        "errors": f.errors,
        "inputTokens": f.input_tokens,
        "outputTokens": f.output_tokens,
        "costUsd": exact(f.cost_usd),
        "usdPerRequest": opt(row.cost_per_request()),
        "usdPer1kTokens": opt(row.cost_per_1k_tokens()),
        "projected30dUsd": opt(row.projection_30d()),
        "costUnknownRequests": f.cost_unknown,
    })
}

fn to_json(r: &Report) -> Value {
    let mut doc = json!({
        "service": r.service,
        "namespace": r.namespace,
        "start": rfc3339(r.window.start),
        "end": rfc3339(r.window.end),
        "windowSeconds": r.window.seconds(),
        "periodSeconds": r.window.period,
        "groupBy": r.by.as_str(),
        "rows": r.rows.rows.iter().map(row_json).collect::<Vec<_>>(),
        "total": row_json(&r.rows.total),
    });
    if let Some(top) = &r.top {
        doc["top"] = top
            .iter()
            .map(|t| {
                json!({
                    "time": t.time,
                    "requestId": t.request_id,
                    "xrayTraceId": t.xray_trace_id,
                    "modelId": t.model_id,
                    "inputTokens": t.input_tokens,
                    "outputTokens": t.output_tokens,
                    "costUsd": exact(t.cost_usd),
                })
            })
            .collect();
    }
    doc
}
