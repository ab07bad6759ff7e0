//! Metric references in alarms and dashboard widgets — plain metrics and `SEARCH(…)`
//! expressions — and their check against the one source of truth, `chatbot_service::telemetry::catalog`,
//! or against the real names and dimensions of the AWS namespaces used.

use serde_json::Value;

use chatbot_service::telemetry::catalog;

use super::template::{Template, props};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRef {
    /// Where it was found, for messages.
    pub origin: String,
    pub namespace: String,
    pub name: String,
    /// Dimension names with the values asked for (empty: a SEARCH over every value).
    pub dims: Vec<(String, Vec<String>)>,
}

/// What the references must agree with: the stage's namespace and `Service` value, the
/// template's function names and HTTP API, and the configured models.
pub struct Rules<'a> {
    pub namespace: &'a str,
    pub service: &'a str,
    pub functions: &'a [String],
    pub http_api: &'a str,
    pub models: &'a [String],
}

const LAMBDA_METRICS: &[&str] = &[
    "Invocations",
    "Errors",
    "Throttles",
    "Duration",
    "ConcurrentExecutions",
    "ClaimedAccountConcurrency",
    "UnreservedConcurrentExecutions",
];
const HTTP_API_METRICS: &[&str] = &[
    "Count",
    "4xx",
    "5xx",
    "Latency",
    "IntegrationLatency",
    "DataProcessed",
];
const BEDROCK_METRICS: &[&str] = &[
    "Invocations",
    "InvocationLatency",
    "InvocationClientErrors",
    "InvocationServerErrors",
    "InvocationThrottles",
    "InputTokenCount",
    "OutputTokenCount",
];

/// The `SEARCH('{Namespace,Dim,…} MetricName="X" Dim="v" …', …)` calls in a math expression.
pub fn parse_search(expr: &str, origin: &str) -> Result<Vec<MetricRef>, String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("SEARCH(") {
        rest = rest[start + 7..].trim_start();
        let body = rest
            .strip_prefix('\'')
            .and_then(|r| r.find('\'').map(|end| &r[..end]))
            .ok_or_else(|| format!("{origin}: SEARCH without a quoted search string: {expr}"))?;
        let (open, close) = match (body.find('{'), body.find('}')) {
            (Some(o), Some(c)) if o < c => (o, c),
            _ => return Err(format!("{origin}: SEARCH without a {{schema}}: {body}")),
        };
        let mut schema = body[open + 1..close]
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_owned());
        let namespace = schema.next().unwrap_or_default();
        let dim_names: Vec<String> = schema.collect();
        let filter = &body[close + 1..];
        let names = quoted_values(filter, "MetricName");
        if names.is_empty() {
            return Err(format!("{origin}: SEARCH without MetricName=\"…\": {body}"));
        }
        for name in names {
            out.push(MetricRef {
                origin: origin.to_owned(),
                namespace: namespace.clone(),
                name,
                dims: dim_names
                    .iter()
                    .map(|d| (d.clone(), quoted_values(filter, d)))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// Every `key="value"` in a search filter.
fn quoted_values(filter: &str, key: &str) -> Vec<String> {
    let pattern = format!("{key}=\"");
    let mut out = Vec::new();
    let mut rest = filter;
    while let Some(i) = rest.find(&pattern) {
        let boundary = i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric());
        rest = &rest[i + pattern.len()..];
        if let Some(end) = rest.find('"') {
            if boundary {
                out.push(rest[..end].to_owned());
            }
            rest = &rest[end..];
        }
    }
    out
}

fn metric_object(t: &Template, m: &Value, origin: &str) -> MetricRef {
    MetricRef {
        origin: origin.to_owned(),
        namespace: t.text(&m["Namespace"]).unwrap_or_default(),
        name: t.text(&m["MetricName"]).unwrap_or_default(),
        dims: m["Dimensions"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .map(|d| {
                        let name = t.text(&d["Name"]).unwrap_or_default();
                        (name, t.text(&d["Value"]).into_iter().collect())
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The metrics an alarm reads: its own metric, or those of its `Metrics` queries.
pub fn from_alarm(t: &Template, id: &str, alarm: &Value) -> (Vec<MetricRef>, Vec<String>) {
    let p = props(alarm);
    let origin = format!("alarm {id}");
    let mut refs = Vec::new();
    let mut problems = Vec::new();
    if p.get("MetricName").is_some() {
        refs.push(metric_object(t, p, &origin));
    }
    for q in p["Metrics"].as_array().into_iter().flatten() {
        if q.get("MetricStat").is_some() {
            refs.push(metric_object(t, &q["MetricStat"]["Metric"], &origin));
        } else if let Some(expr) = q["Expression"].as_str() {
            match parse_search(expr, &origin) {
                Ok(found) => refs.extend(found),
                Err(e) => problems.push(e),
            }
        }
    }
    (refs, problems)
}

/// The metrics every metric widget of a dashboard body shows.
pub fn from_dashboard(body: &Value) -> (Vec<MetricRef>, Vec<String>) {
    let mut refs = Vec::new();
    let mut problems = Vec::new();
    for w in body["widgets"].as_array().into_iter().flatten() {
        if w["type"] != "metric" {
            continue;
        }
        let origin = format!("dashboard widget {:?}", w["properties"]["title"]);
        for line in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let items = line.as_array().map(Vec::as_slice).unwrap_or_default();
            if let Some(expr) = items.first().and_then(|i| i["expression"].as_str()) {
                match parse_search(expr, &origin) {
                    Ok(found) => refs.extend(found),
                    Err(e) => problems.push(e),
                }
                continue;
            }
            let strings: Vec<&str> = items.iter().map_while(Value::as_str).collect();
            if strings.iter().any(|s| *s == "." || *s == "...") || strings.len() < 2 {
                problems.push(format!(
                    "{origin}: write metrics out in full (namespace, name, dimension pairs), \
                     not {line}"
                ));
                continue;
            }
            refs.push(MetricRef {
                origin: origin.clone(),
                namespace: strings[0].to_owned(),
                name: strings[1].to_owned(),
                dims: strings[2..]
                    .chunks(2)
                    .map(|pair| {
                        (
                            pair[0].to_owned(),
                            pair.get(1).map(|v| v.to_string()).into_iter().collect(),
                        )
                    })
                    .collect(),
            });
        }
    }
    (refs, problems)
}

fn sorted_names(dims: &[(String, Vec<String>)]) -> Vec<&str> {
    let mut names: Vec<&str> = dims.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names
}

fn values<'a>(r: &'a MetricRef, dim: &str) -> &'a [String] {
    r.dims
        .iter()
        .find(|(n, _)| n == dim)
        .map(|(_, v)| v.as_slice())
        .unwrap_or_default()
}

/// Problems with one reference.
pub fn check(r: &MetricRef, rules: &Rules) -> Vec<String> {
    let mut problems = Vec::new();
    let dims = sorted_names(&r.dims);
    let what = format!("{}: {}/{}", r.origin, r.namespace, r.name);
    match r.namespace.as_str() {
        ns if ns == rules.namespace => {
            let Some(def) = catalog::find(&r.name) else {
                problems.push(format!(
                    "{what} is not a metric the service emits (chatbot_service::telemetry::catalog)"
                ));
                return problems;
            };
            let allowed = def.dimensions.iter();
            if !allowed.clone().any(|set| {
                let mut set = set.to_vec();
                set.sort_unstable();
                set == dims
            }) {
                problems.push(format!(
                    "{what} is never published with dimensions {dims:?} (catalog: {:?})",
                    allowed.collect::<Vec<_>>()
                ));
            }
            let service = values(r, catalog::DIM_SERVICE);
            if service != [rules.service.to_owned()] {
                problems.push(format!(
                    "{what}: Service must be exactly {:?}, got {service:?}",
                    rules.service
                ));
            }
        }
        "AWS/Lambda" => {
            if !LAMBDA_METRICS.contains(&r.name.as_str()) {
                problems.push(format!("{what} is not an AWS/Lambda metric"));
            }
            if dims != ["FunctionName"] {
                problems.push(format!(
                    "{what}: AWS/Lambda dimension is FunctionName, got {dims:?}"
                ));
            }
            let names = values(r, "FunctionName");
            if names.is_empty() || names.iter().any(|n| !rules.functions.contains(n)) {
                problems.push(format!(
                    "{what}: FunctionName {names:?} is not a function of this stack {:?}",
                    rules.functions
                ));
            }
        }
        "AWS/ApiGateway" => {
            if !HTTP_API_METRICS.contains(&r.name.as_str()) {
                problems.push(format!("{what} is not an HTTP API metric"));
            }
            if dims != ["ApiId"] && dims != ["ApiId", "Stage"] {
                problems.push(format!(
                    "{what}: HTTP API metrics are by ApiId, got {dims:?}"
                ));
            }
            if values(r, "ApiId") != [rules.http_api.to_owned()] {
                problems.push(format!(
                    "{what}: ApiId must be this stack's API {}",
                    rules.http_api
                ));
            }
        }
        "AWS/Bedrock" => {
            if !BEDROCK_METRICS.contains(&r.name.as_str()) {
                problems.push(format!("{what} is not an AWS/Bedrock metric"));
            }
            if dims != ["ModelId"] {
                problems.push(format!(
                    "{what}: AWS/Bedrock dimension is ModelId, got {dims:?}"
                ));
            }
            let models = values(r, "ModelId");
            if models.is_empty() || models.iter().any(|m| !rules.models.contains(m)) {
                problems.push(format!(
                    "{what}: ModelId {models:?} must name only the configured models {:?}",
                    rules.models
                ));
            }
        }
        other => problems.push(format!("{what}: unexpected namespace {other:?}")),
    }
    problems
}
