//! The summary log lines (`"message": "request completed"`, one per request) through CloudWatch
//! Logs Insights: StartQuery, then GetQueryResults until the query ends or `--query-timeout`
//! passes (then StopQuery). Three questions are asked of them:
//!
//! - `--top N`: the most expensive requests;
//! - how many requests had an unknown cost (`costUnknown`: their model had no price), per
//!   model, variant and hour — no longer a metric;
//! - for `--reconcile`, the prompt-cache tokens read and written per model
//!   (`cacheReadInputTokens`, `cacheWriteInputTokens`: log properties only).
//!
//! Each query asks for `@message` too and is checked again here: a row is either an aggregate
//! (`stats`) or a raw line, whose JSON is filtered and counted client-side — so an engine that
//! ignores `filter`, `sort` and `stats` (moto's partial Insights does) still yields the right
//! answer for the rows it returns.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::{QueryStatus, ResultField};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::ReportError;
use super::aws::{LOGS_ACTIONS, classify};
use super::progress::Progress;
use super::window::{Window, rfc3339};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use chatbot_service::telemetry::catalog::{DIM_MODEL, DIM_VARIANT};

/// The summary line's `message`.
pub const SUMMARY_MESSAGE: &str = "request completed";
/// StartQuery accepts at most 50 log group names.
pub const MAX_LOG_GROUPS: usize = 50;

/// One expensive request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopRequest {
    pub time: String,
    pub request_id: String,
    pub xray_trace_id: Option<String>,
    pub model_id: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cost_usd: Decimal,
}

/// The Logs Insights query for the `n` most expensive requests.
pub fn query_string(n: u32) -> String {
    format!(
        "fields @timestamp, timestamp, message, requestId, xrayTraceId, modelId, inputTokens, outputTokens, costUsd, @message\n\
         | filter message = \"{SUMMARY_MESSAGE}\" and ispresent(costUsd)\n\
         | sort costUsd desc\n\
         | limit {n}"
    )
}

/// GetQueryResults returns at most 10,000 rows.
pub const MAX_ROWS: i32 = 10_000;

/// What the logs side needs for one report: where and how long to look.
#[derive(Clone, Copy)]
pub struct Insights<'a> {
    pub client: &'a Client,
    pub log_groups: &'a [String],
    pub window: &'a Window,
    pub timeout: Duration,
    pub progress: &'a Progress,
}

impl Insights<'_> {
    /// Runs `query` over the log groups for the window and returns its rows.
    pub async fn run(&self, query: &str, limit: i32) -> Result<Vec<Vec<ResultField>>, ReportError> {
        let (client, progress, timeout) = (self.client, self.progress, self.timeout);
        if self.log_groups.len() > MAX_LOG_GROUPS {
            return Err(ReportError::TooManyLogGroups(self.log_groups.len()));
        }
        progress.update("starting a Logs Insights query");
        let started = client
            .start_query()
            .set_log_group_names(Some(self.log_groups.to_vec()))
            .start_time(self.window.start)
            .end_time(self.window.end)
            .query_string(query)
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify("StartQuery", LOGS_ACTIONS, e))?;
        let query_id = started.query_id().unwrap_or_default().to_owned();
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(250);
        loop {
            let out = client
                .get_query_results()
                .query_id(&query_id)
                .send()
                .await
                .map_err(|e| classify("GetQueryResults", LOGS_ACTIONS, e))?;
            let status = out.status().cloned().unwrap_or(QueryStatus::Running);
            let scanned = out.statistics().map(|s| s.records_scanned).unwrap_or(0.0);
            progress.update(&format!(
                "Logs Insights query {}: {} records scanned",
                status.as_str(),
                scanned as u64
            ));
            match status {
                QueryStatus::Complete => return Ok(out.results().to_vec()),
                QueryStatus::Running | QueryStatus::Scheduled => {}
                other => {
                    return Err(ReportError::QueryFailed {
                        status: other.as_str().to_owned(),
                    });
                }
            }
            if Instant::now() >= deadline {
                // Best effort: a query left running keeps costing scan time.
                let _ = client.stop_query().query_id(&query_id).send().await;
                return Err(ReportError::QueryTimeout(timeout.as_secs()));
            }
            tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// At most `n` requests, dearest first.
    pub async fn top_requests(&self, n: u32) -> Result<Vec<TopRequest>, ReportError> {
        let rows = self.run(&query_string(n), n as i32).await?;
        Ok(top_from_results(&rows, n))
    }

    /// Requests with an unknown cost, per model and variant (and hour, with `hourly`).
    pub async fn cost_unknown(&self, hourly: bool) -> Result<Vec<UnknownCount>, ReportError> {
        let rows = self.run(&unknown_query(hourly), MAX_ROWS).await?;
        Ok(unknown_from_results(&rows))
    }

    /// Prompt-cache tokens per model.
    pub async fn cache_tokens(&self) -> Result<BTreeMap<String, CacheTokens>, ReportError> {
        let rows = self.run(CACHE_QUERY, MAX_ROWS).await?;
        Ok(cache_from_results(&rows))
    }
}

/// Requests with an unknown cost in one (hour,) model, variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCount {
    /// Start of the hour (epoch seconds), when counted per hour.
    pub time: Option<i64>,
    pub model: Option<String>,
    pub variant: Option<String>,
    pub requests: u64,
}

impl UnknownCount {
    /// The model (`Model`) or variant (`Variant`) it was counted under.
    pub fn value(&self, dimension: &str) -> Option<&str> {
        match dimension {
            DIM_MODEL => self.model.as_deref(),
            DIM_VARIANT => self.variant.as_deref(),
            _ => None,
        }
    }
}

/// Prompt-cache tokens the summary lines of one model report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTokens {
    pub read: u64,
    pub write: u64,
}

/// The query counting requests whose cost is unknown (`costUnknown` is on the summary line only
/// when true; the EMF documents in the same log group carry it too, hence the `message` test).
pub fn unknown_query(hourly: bool) -> String {
    let by = if hourly {
        "bin(1h) as hour, modelId, variant"
    } else {
        "modelId, variant"
    };
    format!(
        "fields @timestamp, @message\n\
         | filter message = \"{SUMMARY_MESSAGE}\" and ispresent(costUnknown)\n\
         | stats count(*) as requests by {by}"
    )
}

/// The query summing prompt-cache tokens per model.
pub const CACHE_QUERY: &str = "fields @timestamp, @message\n\
     | filter message = \"request completed\" and (ispresent(cacheReadInputTokens) or ispresent(cacheWriteInputTokens))\n\
     | stats sum(cacheReadInputTokens) as cacheRead, sum(cacheWriteInputTokens) as cacheWrite by modelId";

/// One result row as a lookup: what Insights extracted, else the same key in the JSON line in
/// `@message`. `None` when the row has neither.
struct RowFields<'a> {
    fields: &'a [ResultField],
    message: Option<Map<String, Value>>,
}

impl<'a> RowFields<'a> {
    fn new(fields: &'a [ResultField]) -> Self {
        let message = fields
            .iter()
            .find(|f| f.field() == Some("@message"))
            .and_then(|f| f.value())
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|v| match v {
                Value::Object(map) => Some(map),
                _ => None,
            });
        RowFields { fields, message }
    }

    fn field(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|f| f.field() == Some(name))
            .and_then(|f| f.value())
    }

    fn get(&self, name: &str) -> Option<String> {
        self.field(name)
            .map(str::to_owned)
            .or_else(|| match self.message.as_ref()?.get(name)? {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
    }

    /// A raw summary line (not an aggregate row).
    fn is_summary_line(&self) -> bool {
        self.message.is_some() && self.get("message").as_deref() == Some(SUMMARY_MESSAGE)
    }

    /// The line's time: its `timestamp`, else Insights' `@timestamp`, in epoch seconds.
    fn time(&self) -> Option<i64> {
        self.get("timestamp")
            .or_else(|| self.field("@timestamp").map(insights_time))
            .and_then(|t| epoch(&t))
    }
}

/// A count or token sum as Insights prints it (`3`, `3.0`, `1e3`).
fn whole(text: &str) -> Option<u64> {
    text.parse::<u64>()
        .ok()
        .or_else(|| text.parse::<f64>().ok().map(|f| f.round().max(0.0) as u64))
}

/// RFC 3339 → epoch seconds.
fn epoch(text: &str) -> Option<i64> {
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .map(|t| t.secs())
}

/// Cost-unknown counts from aggregate rows, or from raw summary lines counted here.
pub fn unknown_from_results(results: &[Vec<ResultField>]) -> Vec<UnknownCount> {
    // (hour, model, variant) → requests.
    type Key = (Option<i64>, Option<String>, Option<String>);
    let mut counts: BTreeMap<Key, u64> = BTreeMap::new();
    for r in results {
        let row = RowFields::new(r);
        let (time, requests) = if let Some(n) = row.field("requests") {
            let time = row.field("hour").map(insights_time).and_then(|t| epoch(&t));
            (time, whole(n).unwrap_or(0))
        } else if row.is_summary_line() && row.get("costUnknown").as_deref() == Some("true") {
            // A raw line: bucketed by its hour (unused when rows are not per hour).
            (row.time().map(|t| t.div_euclid(3_600) * 3_600), 1)
        } else {
            continue;
        };
        let key = (time, row.get("modelId"), row.get("variant"));
        *counts.entry(key).or_default() += requests;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((time, model, variant), requests)| UnknownCount {
            time,
            model,
            variant,
            requests,
        })
        .collect()
}

/// Cache tokens per model from aggregate rows, or from raw summary lines summed here.
pub fn cache_from_results(results: &[Vec<ResultField>]) -> BTreeMap<String, CacheTokens> {
    let mut out: BTreeMap<String, CacheTokens> = BTreeMap::new();
    for r in results {
        let row = RowFields::new(r);
        let aggregate = row.field("cacheRead").is_some() || row.field("cacheWrite").is_some();
        let (read, write) = if aggregate {
            ("cacheRead", "cacheWrite")
        } else if row.is_summary_line() {
            ("cacheReadInputTokens", "cacheWriteInputTokens")
        } else {
            continue;
        };
        let Some(model) = row.get("modelId") else {
            continue;
        };
        let n = |name: &str| row.get(name).and_then(|v| whole(&v)).unwrap_or(0);
        let t = out.entry(model).or_default();
        t.read += n(read);
        t.write += n(write);
    }
    out
}

/// Summary rows out of GetQueryResults' rows: filtered to priced summary lines, dearest first
/// (ties: newest first), at most `n`.
pub fn top_from_results(results: &[Vec<ResultField>], n: u32) -> Vec<TopRequest> {
    let mut top: Vec<TopRequest> = results.iter().filter_map(|r| parse_row(r)).collect();
    top.sort_by(|a, b| b.cost_usd.cmp(&a.cost_usd).then(b.time.cmp(&a.time)));
    top.truncate(n as usize);
    top
}

/// One result row → a request, if it is a summary line with a cost.
fn parse_row(fields: &[ResultField]) -> Option<TopRequest> {
    let row = RowFields::new(fields);
    let get = |name: &str| row.get(name);
    // Insights' own `message` field, when it extracted one, must agree too.
    let is_summary = get("message").as_deref() == Some(SUMMARY_MESSAGE);
    if !is_summary {
        return None;
    }
    let cost_usd = get("costUsd").and_then(|c| decimal(&c))?;
    Some(TopRequest {
        time: get("timestamp")
            .or_else(|| row.field("@timestamp").map(insights_time))
            .unwrap_or_default(),
        request_id: get("requestId").unwrap_or_default(),
        xray_trace_id: get("xrayTraceId"),
        model_id: get("modelId"),
        input_tokens: get("inputTokens").and_then(|t| t.parse().ok()),
        output_tokens: get("outputTokens").and_then(|t| t.parse().ok()),
        cost_usd,
    })
}

/// `0.000056` or `5.6e-5` (how serde_json writes small doubles) → a decimal.
fn decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
        .map(|d| d.round_dp(super::rows::USD_DP).normalize())
}

/// Insights' `@timestamp` (`2025-07-20 12:00:00.000`, or epoch milliseconds from some
/// emulators) as RFC 3339.
fn insights_time(value: &str) -> String {
    if let Ok(ms) = value.parse::<i64>() {
        return rfc3339(ms.div_euclid(1000));
    }
    match value.split_once(' ') {
        Some((date, time)) => format!("{date}T{time}Z"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Vec<ResultField> {
        pairs
            .iter()
            .map(|(f, v)| ResultField::builder().field(*f).value(*v).build())
            .collect()
    }

    fn summary(id: &str, cost: &str, ts: &str) -> String {
        format!(
            r#"{{"timestamp":"{ts}","level":"INFO","message":"request completed","requestId":"{id}","xrayTraceId":"1-6880a1b2-0123456789abcdef01234567","modelId":"us.amazon.nova-micro-v1:0","inputTokens":800,"outputTokens":200,"costUsd":{cost}}}"#
        )
    }

    #[test]
    fn the_query_filters_sorts_and_limits() {
        assert_eq!(
            query_string(5),
            "fields @timestamp, timestamp, message, requestId, xrayTraceId, modelId, inputTokens, outputTokens, costUsd, @message\n\
             | filter message = \"request completed\" and ispresent(costUsd)\n\
             | sort costUsd desc\n\
             | limit 5"
        );
    }

    #[test]
    fn rows_from_extracted_fields() {
        // What real Insights returns: extracted fields (numbers as text) plus @ptr.
        let r = row(&[
            ("@timestamp", "2025-07-20 12:00:01.000"),
            ("requestId", "r-1"),
            ("xrayTraceId", "1-6880a1b2-0123456789abcdef01234567"),
            ("modelId", "us.amazon.nova-lite-v1:0"),
            ("inputTokens", "1200"),
            ("outputTokens", "300"),
            ("costUsd", "0.000144"),
            ("message", "request completed"),
            ("@ptr", "xyz"),
        ]);
        let top = top_from_results(&[r], 10);
        assert_eq!(
            top,
            vec![TopRequest {
                time: "2025-07-20T12:00:01.000Z".into(),
                request_id: "r-1".into(),
                xray_trace_id: Some("1-6880a1b2-0123456789abcdef01234567".into()),
                model_id: Some("us.amazon.nova-lite-v1:0".into()),
                input_tokens: Some(1200),
                output_tokens: Some(300),
                cost_usd: Decimal::from_str("0.000144").unwrap(),
            }]
        );
    }

    #[test]
    fn rows_from_message_json_are_filtered_sorted_and_cut() {
        let a = summary("a", "5.6e-5", "2025-07-20T12:00:00Z");
        let b = summary("b", "0.00144", "2025-07-20T12:00:01Z");
        let c = summary("c", "0.000144", "2025-07-20T12:00:02Z");
        let unpriced = a.replace("\"costUsd\":5.6e-5", "\"costUsd\":null");
        let other = r#"{"message":"server started","costUsd":9}"#.to_owned();
        let rows: Vec<Vec<ResultField>> = [a, b, c, unpriced, other, "plain text".into()]
            .iter()
            .map(|m| row(&[("@timestamp", "1753012800000"), ("@message", m)]))
            .collect();
        let top = top_from_results(&rows, 2);
        let ids: Vec<&str> = top.iter().map(|t| t.request_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(top[0].cost_usd, Decimal::from_str("0.00144").unwrap());
        assert_eq!(top[0].time, "2025-07-20T12:00:01Z");
        assert_eq!(top[0].input_tokens, Some(800));
        assert_eq!(top_from_results(&rows, 10).len(), 3);
    }

    #[test]
    fn insights_timestamps() {
        assert_eq!(insights_time("1753012800000"), "2025-07-20T12:00:00Z");
        assert_eq!(
            insights_time("2025-07-20 12:00:00.123"),
            "2025-07-20T12:00:00.123Z"
        );
    }

    #[test]
    fn cost_unknown_from_aggregates_or_raw_lines() {
        assert_eq!(
            unknown_query(true),
            "fields @timestamp, @message\n\
             | filter message = \"request completed\" and ispresent(costUnknown)\n\
             | stats count(*) as requests by bin(1h) as hour, modelId, variant"
        );
        // Real Insights: one aggregate row per hour, model, variant.
        let agg = row(&[
            ("hour", "2025-07-20 13:00:00.000"),
            ("modelId", "meta.llama-new"),
            ("variant", "a"),
            ("requests", "3"),
        ]);
        let got = unknown_from_results(&[agg]);
        assert_eq!(
            got,
            [UnknownCount {
                time: Some(1_753_016_400),
                model: Some("meta.llama-new".into()),
                variant: Some("a".into()),
                requests: 3,
            }]
        );
        // moto: raw lines, EMF documents (costUnknown too, but no message) and noise.
        let line = r#"{"timestamp":"2025-07-20T13:05:00Z","message":"request completed","modelId":"m","variant":"a","costUnknown":true}"#;
        let priced = r#"{"timestamp":"2025-07-20T13:06:00Z","message":"request completed","modelId":"m","variant":"a","costUsd":0.1}"#;
        let emf = r#"{"_aws":{},"Model":"m","Variant":"a","costUnknown":true}"#;
        let rows: Vec<Vec<ResultField>> = [line, line, priced, emf, "START RequestId"]
            .iter()
            .map(|m| row(&[("@timestamp", "1753016700000"), ("@message", m)]))
            .collect();
        let got = unknown_from_results(&rows);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].requests, 2);
        assert_eq!(got[0].time, Some(1_753_016_400));
        assert_eq!(got[0].value("Model"), Some("m"));
        assert_eq!(got[0].value("Variant"), Some("a"));
    }

    #[test]
    fn cache_tokens_from_aggregates_or_raw_lines() {
        let agg = row(&[
            ("modelId", "m"),
            ("cacheRead", "1200"),
            ("cacheWrite", "300"),
        ]);
        let a = r#"{"message":"request completed","modelId":"m","cacheReadInputTokens":100}"#;
        let b = r#"{"message":"request completed","modelId":"m","cacheWriteInputTokens":40}"#;
        let other = r#"{"message":"server started","modelId":"m","cacheReadInputTokens":9}"#;
        let mut rows = vec![agg];
        rows.extend([a, b, other].iter().map(|m| row(&[("@message", m)])));
        let got = cache_from_results(&rows);
        assert_eq!(
            got.get("m"),
            Some(&CacheTokens {
                read: 1_300,
                write: 340
            })
        );
    }
}
