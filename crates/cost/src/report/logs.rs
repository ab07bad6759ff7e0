//! `--top N`: the most expensive single requests, from the function's summary log lines
//! (`"message": "request completed"`, one per request) through CloudWatch Logs Insights:
//! StartQuery, then GetQueryResults until the query ends or `--query-timeout` passes (then
//! StopQuery).
//!
//! The query asks for the summary fields and `@message` too; a row's fields come from what
//! Insights extracted, else from the JSON in `@message`. Rows are filtered and sorted again here,
//! so an engine that ignores `filter`/`sort` (moto's partial Insights does) still yields the
//! right answer for the rows it returns.

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

/// Runs the query over `log_groups` for the window and returns at most `n` requests, dearest
/// first.
pub async fn top_requests(
    client: &Client,
    log_groups: &[String],
    window: &Window,
    n: u32,
    timeout: Duration,
    progress: &Progress,
) -> Result<Vec<TopRequest>, ReportError> {
    if log_groups.len() > MAX_LOG_GROUPS {
        return Err(ReportError::TooManyLogGroups(log_groups.len()));
    }
    progress.update("starting a Logs Insights query");
    let started = client
        .start_query()
        .set_log_group_names(Some(log_groups.to_vec()))
        .start_time(window.start)
        .end_time(window.end)
        .query_string(query_string(n))
        .limit(n as i32)
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
            QueryStatus::Complete => return Ok(top_from_results(out.results(), n)),
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
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f.field() == Some(name))
            .and_then(|f| f.value())
    };
    let message: Map<String, Value> = field("@message")
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    // What Insights extracted, else the same key in the JSON line.
    let get = |name: &str| -> Option<String> {
        field(name)
            .map(str::to_owned)
            .or_else(|| match message.get(name)? {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
    };
    // Insights' own `message` field, when it extracted one, must agree too.
    let is_summary = get("message").as_deref() == Some(SUMMARY_MESSAGE);
    if !is_summary {
        return None;
    }
    let cost_usd = get("costUsd").and_then(|c| decimal(&c))?;
    Some(TopRequest {
        time: get("timestamp")
            .or_else(|| field("@timestamp").map(insights_time))
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
}
