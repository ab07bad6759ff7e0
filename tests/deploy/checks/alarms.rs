//! Alarms: SNS for ALARM and OK, a runbook link that resolves, notBreaching, 60 s periods with
//! M of N (the daily budget alarm aside), sound metric math, percentiles for timings, metric
//! names from the catalog, and the alarms spend control needs (daily budget, state store).

use serde_json::Value;

use chatbot_service::telemetry::catalog::{self, Unit};

use super::Expect;
use super::stage::{StageRules, shared_env};
use crate::deploy::metrics::{self, MetricRef};
use crate::deploy::template::{Template, list, props};

fn runbook_anchor(description: &str) -> Option<&str> {
    let at = description.find("docs/runbooks.md#")?;
    let url_start = description[..at].rfind("https://")?;
    if description[url_start..at].contains(char::is_whitespace) {
        return None;
    }
    let anchor = &description[at + "docs/runbooks.md#".len()..];
    let end = anchor
        .find(|c: char| c.is_whitespace() || c == ')' || c == '"')
        .unwrap_or(anchor.len());
    Some(anchor[..end].trim_end_matches('.'))
}

fn refs_topic(t: &Template, actions: &Value) -> bool {
    list(actions).iter().any(|a| {
        a.get("Ref")
            .and_then(Value::as_str)
            .is_some_and(|id| t.type_of(id) == Some("AWS::SNS::Topic"))
    })
}

pub fn check(t: &Template, x: &Expect) -> Vec<String> {
    let mut p = Vec::new();
    let stage = StageRules::of(t);
    let rules = stage.rules();
    let all_alarms = t.of_type("AWS::CloudWatch::Alarm");
    if all_alarms.is_empty() {
        p.push("the template has no alarms".into());
    }
    for (id, a) in all_alarms {
        let ap = props(a);
        if !refs_topic(t, &ap["AlarmActions"]) {
            p.push(format!("{id}: AlarmActions lack the SNS topic"));
        }
        if !refs_topic(t, &ap["OKActions"]) {
            p.push(format!("{id}: OKActions lack the SNS topic"));
        }
        let description = t.text(&ap["AlarmDescription"]).unwrap_or_default();
        match runbook_anchor(&description) {
            Some(anchor) if x.runbook_anchors.contains(anchor) => {}
            Some(anchor) => p.push(format!(
                "{id}: runbook link #{anchor} is no heading of docs/runbooks.md"
            )),
            None => p.push(format!(
                "{id}: description has no https://…docs/runbooks.md#… link"
            )),
        }
        if ap["TreatMissingData"] != "notBreaching" {
            p.push(format!("{id}: TreatMissingData must be notBreaching"));
        }
        if !ap["Threshold"].is_number() {
            p.push(format!(
                "{id}: Threshold {} is not a number",
                ap["Threshold"]
            ));
        }
        let (refs, problems) = metrics::from_alarm(t, id, a);
        p.extend(problems);
        for r in &refs {
            p.extend(metrics::check(r, &rules));
        }
        p.extend(alarm_periods(id, ap, &refs, rules.namespace));
        p.extend(alarm_math(id, ap));
        // Latency-like metrics: percentiles, never the average; a sample count (the number of
        // requests, for a rate) is a count, not a timing.
        let averaged_timing = refs.iter().any(|r| {
            r.namespace == rules.namespace
                && catalog::find(&r.name).is_some_and(|d| d.unit == Unit::Milliseconds)
                && !(r.stat.starts_with('p') || r.stat == "SampleCount" || r.stat == "COUNT")
        });
        if averaged_timing {
            p.push(format!(
                "{id}: a timing alarm must use a percentile (ExtendedStatistic pNN), or \
                 SampleCount to count requests"
            ));
        }
    }
    p.extend(spend_alarms(t, rules.namespace));
    p
}

/// The alarms spend control needs: the daily budget — CostUSD as a percentage of the budget the
/// functions enforce (`CHATBOT_DAILY_BUDGET_USD`), below 100 % so it warns before the service
/// starts refusing — and the state store the budgets live in.
fn spend_alarms(t: &Template, namespace: &str) -> Vec<String> {
    let mut p = Vec::new();
    let budget = shared_env(t, "CHATBOT_DAILY_BUDGET_USD");
    let (mut budget_alarm, mut store_alarm) = (false, false);
    for (id, a) in t.of_type("AWS::CloudWatch::Alarm") {
        let ap = props(a);
        let (refs, _) = metrics::from_alarm(t, id, a);
        let reads = |name: &str| {
            refs.iter()
                .any(|r| r.namespace == namespace && r.name == name)
        };
        if reads(catalog::COST_USD) {
            budget_alarm = true;
            let expression = ap["Metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|q| q["ReturnData"] == true)
                .and_then(|q| q["Expression"].as_str())
                .unwrap_or_default()
                .replace(' ', "");
            let of_budget = budget
                .as_ref()
                .is_some_and(|b| expression.ends_with(&format!("*100/{b}")));
            if !of_budget {
                p.push(format!(
                    "{id}: must alarm on CostUSD as a percentage of CHATBOT_DAILY_BUDGET_USD \
                     ({budget:?}): `cost * 100 / <budget>`, got {expression:?}"
                ));
            }
            if !ap["Threshold"]
                .as_f64()
                .is_some_and(|x| x > 0.0 && x < 100.0)
            {
                p.push(format!(
                    "{id}: threshold {} % must be below 100: at the budget the service refuses \
                     requests, the alarm warns before",
                    ap["Threshold"]
                ));
            }
        }
        if reads(catalog::STORE_ERRORS) {
            store_alarm = true;
        }
    }
    if !budget_alarm {
        p.push("no alarm on CostUSD against the daily budget".into());
    }
    if !store_alarm {
        p.push("no alarm on StoreErrors (the state store the budgets live in)".into());
    }
    p
}

/// 60 s periods with M of N datapoints, except the daily budget alarm (one 86,400 s period).
fn alarm_periods(id: &str, ap: &Value, refs: &[MetricRef], namespace: &str) -> Vec<String> {
    let mut p = Vec::new();
    let mut periods: Vec<u64> = ap["Period"].as_u64().into_iter().collect();
    for q in ap["Metrics"].as_array().into_iter().flatten() {
        periods.extend(q["MetricStat"]["Period"].as_u64());
        // A Metrics Insights query's period is on the query itself.
        periods.extend(q["Period"].as_u64());
    }
    let daily_cost = refs
        .iter()
        .any(|r| r.namespace == namespace && r.name == catalog::COST_USD);
    let n = ap["EvaluationPeriods"].as_u64().unwrap_or(0);
    let m = ap["DatapointsToAlarm"].as_u64().unwrap_or(n);
    if daily_cost {
        if periods != [86_400] || n != 1 {
            p.push(format!(
                "{id}: the daily cost alarm sums one 86400 s period, got {periods:?} × {n}"
            ));
        }
    } else {
        if periods.is_empty() || periods.iter().any(|s| *s != 60) {
            p.push(format!("{id}: periods {periods:?} must all be 60 s"));
        }
        if n < 2 || m < 1 || m > n {
            p.push(format!(
                "{id}: needs M of N datapoints (N ≥ 2, 1 ≤ M ≤ N), got {m} of {n}"
            ));
        }
    }
    p
}

/// Metric math: one result, and every id an expression names is defined.
fn alarm_math(id: &str, ap: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(queries) = ap["Metrics"].as_array() else {
        return p;
    };
    let ids: Vec<&str> = queries.iter().filter_map(|q| q["Id"].as_str()).collect();
    let returned = queries.iter().filter(|q| q["ReturnData"] == true).count();
    if returned != 1 {
        p.push(format!(
            "{id}: {returned} queries return data, an alarm needs exactly 1"
        ));
    }
    for q in queries {
        let Some(expr) = q["Expression"].as_str() else {
            continue;
        };
        for word in metrics::undefined_ids(expr, &ids) {
            p.push(format!(
                "{id}: expression {expr:?} names undefined id {word}"
            ));
        }
    }
    p
}
