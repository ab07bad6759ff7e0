//! The dashboard: every metric from the catalog with a set it is published under (plain lines,
//! SEARCH expressions, Metrics Insights queries), every catalog metric shown and every dimension
//! set read, AWS metrics with their real dimensions, the alarm widget, the spend-vs-budget
//! widget, the views the metric budget promised (requests as Latency's sample count, overhead
//! p99, tokens next to Bedrock's), and Logs Insights widgets and runbook queries on field names
//! the service logs, on the record that carries them, for every question a removed metric
//! answered.

use std::collections::BTreeSet;

use serde_json::Value;

use chatbot_service::telemetry::catalog::{self, METRICS};

use super::Expect;
use super::stage::{StageRules, shared_env};
use crate::deploy::logs_query;
use crate::deploy::metrics::{self, MetricRef};
use crate::deploy::template::{Template, props};

pub fn dashboard_body(t: &Template) -> Result<Value, String> {
    let boards = t.of_type("AWS::CloudWatch::Dashboard");
    let [(_, board)] = boards.as_slice() else {
        return Err(format!("expected one dashboard, found {}", boards.len()));
    };
    let text = t
        .text(&props(board)["DashboardBody"])
        .ok_or("DashboardBody is neither text nor Fn::Sub")?;
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${") {
        let end = rest[i..].find('}').ok_or("unclosed ${ in the dashboard")?;
        let name = &rest[i + 2..i + end];
        // `${!Name}`: Fn::Sub's literal `${Name}` (a CloudWatch dynamic label).
        let known = name.starts_with('!')
            || name.starts_with("AWS::")
            || t.resource(name.split('.').next().unwrap()).is_some();
        if !known {
            return Err(format!(
                "dashboard placeholder ${{{name}}} is neither AWS:: nor a resource"
            ));
        }
        rest = &rest[i + end..];
    }
    serde_json::from_str(&text.replace("${!", "${"))
        .map_err(|e| format!("dashboard body is not JSON: {e}"))
}

/// Questions whose metric the metric budget removed, now answered by Logs Insights widgets:
/// (the field a dashboard log widget must read, what it replaces).
const MOVED_TO_LOGS: &[(&str, &str)] = &[
    ("errorCode", "the Errors by ErrorCode set"),
    ("effectiveStatus", "the ClientErrors metric"),
    ("clientAborted", "the ClientAborts metric"),
    ("coldStart", "the ColdStart metric"),
    ("modelLatencyMs", "the ModelLatency metric"),
    ("retries", "the Retries metric"),
    ("fallback", "the Fallbacks metric"),
    ("costUnknown", "the CostUnknown metric"),
];

pub fn check(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    let body = match dashboard_body(t) {
        Ok(b) => b,
        Err(e) => return vec![e],
    };
    let stage = StageRules::of(t);
    let rules = stage.rules();
    let (refs, problems) = metrics::from_dashboard(&body);
    p.extend(problems);
    for r in &refs {
        p.extend(metrics::check(r, &rules));
    }
    let alarm_refs: Vec<MetricRef> = t
        .of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .flat_map(|(id, a)| metrics::from_alarm(t, id, a).0)
        .collect();
    p.extend(catalog_coverage(&refs, &alarm_refs, rules.namespace));
    p.extend(required_metric_views(&refs, rules.namespace));
    for (ns, name) in [
        ("AWS/Bedrock", "InvocationLatency"),
        ("AWS/Bedrock", "InvocationThrottles"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "ConcurrentExecutions"),
    ] {
        if !refs.iter().any(|r| r.namespace == ns && r.name == name) {
            p.push(format!("the dashboard lacks {ns} {name}"));
        }
    }
    let widgets = body["widgets"].as_array().cloned().unwrap_or_default();
    // The alarm widget shows exactly the stack's alarms.
    let alarm_names: BTreeSet<String> = t
        .of_type("AWS::CloudWatch::Alarm")
        .iter()
        .filter_map(|(_, a)| t.text(&props(a)["AlarmName"]))
        .collect();
    let shown: BTreeSet<String> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| {
            w["properties"]["alarms"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|arn| {
            arn.as_str()
                .and_then(|a| a.rsplit_once(":alarm:"))
                .map(|(_, n)| n.to_owned())
        })
        .collect();
    if shown != alarm_names {
        p.push(format!(
            "the alarm widget shows {shown:?}, the stack has {alarm_names:?}"
        ));
    }
    p.extend(spend_widget(t, &widgets, rules.namespace));
    // Logs Insights widgets: this stage's function log groups, known field names, one record
    // per request, and every question a removed metric answered.
    let known = logs_query::known_fields(&access_log_fields(t));
    let logs: Vec<&Value> = widgets.iter().filter(|w| w["type"] == "log").collect();
    if logs.len() < 2 {
        p.push(
            "the dashboard needs Logs Insights widgets (most expensive requests, recent errors)"
                .into(),
        );
    }
    let mut read = BTreeSet::new();
    for w in logs {
        let query = w["properties"]["query"].as_str().unwrap_or_default();
        let title = &w["properties"]["title"];
        for source in query.split("SOURCE '").skip(1) {
            let group = source.split('\'').next().unwrap_or_default();
            let ok = group
                .strip_prefix("/aws/lambda/")
                .is_some_and(|f| rules.functions.iter().any(|n| n == f));
            if !ok {
                p.push(format!(
                    "log widget reads {group}, not a function log group of this stack"
                ));
            }
        }
        for f in logs_query::unknown_fields(query, &known) {
            p.push(format!("log widget {title:?} uses unknown field {f}"));
        }
        for problem in logs_query::record_problems(query) {
            p.push(format!("log widget {title:?} {problem}"));
        }
        read.extend(logs_query::field_names(query));
    }
    for (field, was) in MOVED_TO_LOGS {
        if !read.contains(*field) {
            p.push(format!(
                "no Logs Insights widget reads {field} (the question {was} answered)"
            ));
        }
    }
    p
}

/// Every catalog metric is on the dashboard, and every dimension set it is published under is
/// read by a widget or an alarm: each set × value is a billed custom metric.
fn catalog_coverage(dash: &[MetricRef], alarms: &[MetricRef], namespace: &str) -> Vec<String> {
    let mut p = Vec::new();
    for m in METRICS {
        let ours = |r: &MetricRef| r.namespace == namespace && r.name == m.name;
        if !dash.iter().any(ours) {
            let alarmed = alarms.iter().any(ours);
            p.push(format!(
                "catalog metric {} is not on the dashboard{}",
                m.name,
                if alarmed {
                    ""
                } else {
                    " nor read by any alarm (a billed metric nobody reads)"
                }
            ));
        }
        for set in m.dimensions {
            let mut want = set.to_vec();
            want.sort_unstable();
            if !dash
                .iter()
                .chain(alarms)
                .any(|r| ours(r) && r.dimension_set() == want)
            {
                p.push(format!(
                    "catalog metric {} under {set:?} is read by no dashboard widget or alarm \
                     (each dimension set is billed per value)",
                    m.name
                ));
            }
        }
    }
    p
}

/// What the metric budget promised the dashboard would still show: the request count as
/// `Latency`'s sample count, the service's own latency p99, and our token counts next to
/// Bedrock's in one widget.
fn required_metric_views(refs: &[MetricRef], namespace: &str) -> Vec<String> {
    let mut p = Vec::new();
    let ours = |r: &MetricRef, name: &str| r.namespace == namespace && r.name == name;
    if !refs.iter().any(|r| {
        ours(r, catalog::LATENCY)
            && r.dimension_set() == [catalog::DIM_SERVICE]
            && r.stat == "SampleCount"
    }) {
        p.push("the dashboard must count requests: Latency SampleCount under [Service]".into());
    }
    if !refs
        .iter()
        .any(|r| ours(r, catalog::OVERHEAD_LATENCY) && r.stat == "p99")
    {
        p.push("the dashboard must plot OverheadLatency p99 (the service's own latency)".into());
    }
    for (name, bedrock) in [
        (catalog::INPUT_TOKENS, "InputTokenCount"),
        (catalog::OUTPUT_TOKENS, "OutputTokenCount"),
    ] {
        let together = refs.iter().filter(|r| ours(r, name)).any(|r| {
            refs.iter()
                .any(|b| b.origin == r.origin && b.namespace == "AWS/Bedrock" && b.name == bedrock)
        });
        if !together {
            p.push(format!(
                "no dashboard widget shows {name} next to AWS/Bedrock {bedrock} (token \
                 reconciliation)"
            ));
        }
    }
    p
}

/// Spend against the budget: CostUSD summed per 86,400 s with horizontal lines at the daily
/// budget the functions enforce and at the daily budget alarm's percentage of it.
fn spend_widget(t: &Template, widgets: &[Value], namespace: &str) -> Vec<String> {
    let budget = shared_env(t, "CHATBOT_DAILY_BUDGET_USD").and_then(|b| b.parse::<f64>().ok());
    let percent = t
        .of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .find(|(id, a)| {
            metrics::from_alarm(t, id, a)
                .0
                .iter()
                .any(|r| r.namespace == namespace && r.name == catalog::COST_USD)
        })
        .and_then(|(_, a)| props(a)["Threshold"].as_f64());
    let (Some(budget), Some(percent)) = (budget, percent) else {
        return vec!["no daily budget (CHATBOT_DAILY_BUDGET_USD) or budget alarm to draw".into()];
    };
    let lines = [budget, budget * percent / 100.0];
    let shows_spend = |w: &Value| {
        let props = &w["properties"];
        let per_day = props["period"] == 86_400;
        let cost_sum = props["metrics"].as_array().into_iter().flatten().any(|m| {
            let items = m.as_array().map(Vec::as_slice).unwrap_or_default();
            items.first().and_then(Value::as_str) == Some(namespace)
                && items.get(1).and_then(Value::as_str) == Some(catalog::COST_USD)
                && items.last().is_some_and(|o| o["stat"] == "Sum")
        });
        let drawn: Vec<f64> = props["annotations"]["horizontal"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["value"].as_f64())
            .collect();
        let at = |x: f64| drawn.iter().any(|d| (d - x).abs() < 1e-9);
        w["type"] == "metric" && per_day && cost_sum && lines.iter().all(|x| at(*x))
    };
    if widgets.iter().any(shows_spend) {
        Vec::new()
    } else {
        vec![format!(
            "the dashboard needs a spend widget: CostUSD Sum per 86400 s with horizontal \
             annotations at the daily budget ({}) and at the alarm's {percent} % ({})",
            lines[0], lines[1]
        )]
    }
}

/// Keys of the HTTP API access log format (runbook queries may read that log group too).
fn access_log_fields(t: &Template) -> Vec<String> {
    t.of_type("AWS::ApiGatewayV2::Stage")
        .iter()
        .filter_map(|(_, s)| props(s)["AccessLogSettings"]["Format"].as_str())
        .filter_map(|f| serde_json::from_str::<serde_json::Map<String, Value>>(f).ok())
        .flat_map(|m| m.keys().cloned().collect::<Vec<_>>())
        .collect()
}

pub fn runbook_queries(t: &Template, x: &Expect) -> Vec<String> {
    let known = logs_query::known_fields(&access_log_fields(t));
    let mut p = Vec::new();
    if x.runbook_queries.is_empty() {
        p.push("docs/runbooks.md has no ```logsinsights query blocks".into());
    }
    for q in &x.runbook_queries {
        for f in logs_query::unknown_fields(q, &known) {
            p.push(format!(
                "runbook query uses unknown field {f}: {}",
                q.trim()
            ));
        }
        for problem in logs_query::record_problems(q) {
            p.push(format!("runbook query {problem}: {}", q.trim()));
        }
    }
    p
}
