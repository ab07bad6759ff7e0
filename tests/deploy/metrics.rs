//! Metric references in alarms and dashboard widgets — plain metrics, `SEARCH(…)` expressions
//! and Metrics Insights queries (`SELECT SUM(X) FROM SCHEMA(…) WHERE … GROUP BY …`) — and their
//! check against the one source of truth, `chatbot_service::telemetry::catalog`, or against the
//! real names and dimensions of the AWS namespaces used.

use serde_json::Value;

use chatbot_service::telemetry::catalog;

use super::template::{Template, props};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRef {
    /// Where it was found, for messages.
    pub origin: String,
    pub namespace: String,
    pub name: String,
    /// Dimension names with the values asked for (empty: a SEARCH or query over every value).
    pub dims: Vec<(String, Vec<String>)>,
    /// How it is aggregated: the statistic (`Sum`, `p99`, `SampleCount`; a plain dashboard
    /// line without one is `Average`), or the Metrics Insights function (`SUM`, `COUNT`, …).
    pub stat: String,
}

impl MetricRef {
    /// The dimension names, sorted: the set the reference reads.
    pub fn dimension_set(&self) -> Vec<&str> {
        sorted_names(&self.dims)
    }
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

/// The `SEARCH('{Namespace,Dim,…} MetricName="X" Dim="v" …', 'Stat', period)` calls in a math
/// expression.
pub fn parse_search(expr: &str, origin: &str) -> Result<Vec<MetricRef>, String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("SEARCH(") {
        rest = rest[start + 7..].trim_start();
        let body = rest
            .strip_prefix('\'')
            .and_then(|r| r.find('\'').map(|end| &r[..end]))
            .ok_or_else(|| format!("{origin}: SEARCH without a quoted search string: {expr}"))?;
        rest = &rest[body.len() + 2..];
        let stat = rest
            .trim_start()
            .strip_prefix(',')
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('\''))
            .and_then(|r| r.find('\'').map(|end| r[..end].to_owned()))
            .ok_or_else(|| format!("{origin}: SEARCH without a quoted statistic: {expr}"))?;
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
                stat: stat.clone(),
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

/// A token of a Metrics Insights query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A keyword, function, or unquoted name.
    Word(String),
    /// `'…'`: a value.
    Value(String),
    /// `"…"`: a quoted name (a namespace with `/`, a metric or dimension name).
    Name(String),
    Punct(String),
}

fn insights_tokens(query: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '\'' | '"' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some(d) if d == c => break,
                        Some(d) => text.push(d),
                        None => return Err(format!("unclosed {c} in {query}")),
                    }
                }
                out.push(if c == '\'' {
                    Tok::Value(text)
                } else {
                    Tok::Name(text)
                });
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut word = c.to_string();
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' || d == '.' || d == '-' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(word));
            }
            '!' | '<' | '>' if chars.peek() == Some(&'=') => {
                chars.next();
                out.push(Tok::Punct(format!("{c}=")));
            }
            c => out.push(Tok::Punct(c.to_string())),
        }
    }
    Ok(out)
}

fn is_word(t: Option<&Tok>, word: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
}

fn is_punct(t: Option<&Tok>, p: &str) -> bool {
    matches!(t, Some(Tok::Punct(x)) if x == p)
}

/// A name: unquoted or `"quoted"`.
fn name_of(t: Option<&Tok>) -> Option<String> {
    match t {
        Some(Tok::Word(w) | Tok::Name(w)) => Some(w.clone()),
        _ => None,
    }
}

const INSIGHTS_FUNCTIONS: &[&str] = &["AVG", "COUNT", "MAX", "MIN", "SUM"];
const INSIGHTS_CLAUSES: &[&str] = &["WHERE", "GROUP", "ORDER", "LIMIT"];

/// Whether a math expression is a Metrics Insights query rather than metric math.
pub fn is_insights(expr: &str) -> bool {
    expr.trim_start()
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("SELECT "))
}

/// A Metrics Insights query, `SELECT FUNC(Metric) FROM SCHEMA("Namespace", Dim, …)
/// [WHERE Dim = 'v' AND …] [GROUP BY Dim, …] [ORDER BY …] [LIMIT n]`: the metric it reads, and
/// what is wrong with it. `FROM` a bare namespace is refused: it matches every dimension set the
/// metric is published under, so a `SUM` adds the `[Service]` total and each
/// `[Service, Model, Variant]` series together. `WHERE` and `GROUP BY` keys must be dimensions
/// of the schema (a key outside it matches nothing, or groups into "Other").
pub fn parse_insights(query: &str, origin: &str) -> (Option<MetricRef>, Vec<String>) {
    let fail = |why: &str| {
        (
            None,
            vec![format!("{origin}: Metrics Insights {why}: {query}")],
        )
    };
    let toks = match insights_tokens(query) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let mut i = 0;
    if !is_word(toks.first(), "SELECT") {
        return fail("query must start with SELECT");
    }
    i += 1;
    let stat = match toks.get(i) {
        Some(Tok::Word(f)) if INSIGHTS_FUNCTIONS.iter().any(|x| x.eq_ignore_ascii_case(f)) => {
            f.to_ascii_uppercase()
        }
        _ => return fail("function must be one of AVG, COUNT, MAX, MIN, SUM"),
    };
    i += 1;
    let (Some(name), true, true) = (
        name_of(toks.get(i + 1)),
        is_punct(toks.get(i), "("),
        is_punct(toks.get(i + 2), ")"),
    ) else {
        return fail("needs FUNC(MetricName)");
    };
    i += 3;
    if !is_word(toks.get(i), "FROM") {
        return fail("needs FROM");
    }
    i += 1;
    if !(is_word(toks.get(i), "SCHEMA") && is_punct(toks.get(i + 1), "(")) {
        return fail(
            "FROM a bare namespace matches every dimension set of the metric (the [Service] \
             total and the per-dimension series add up together); use SCHEMA(namespace, \
             dimensions…)",
        );
    }
    i += 2;
    let mut schema = Vec::new();
    loop {
        match name_of(toks.get(i)) {
            Some(n) => schema.push(n),
            None => return fail("SCHEMA(…) lists names separated by commas"),
        }
        i += 1;
        if is_punct(toks.get(i), ",") {
            i += 1;
        } else if is_punct(toks.get(i), ")") {
            i += 1;
            break;
        } else {
            return fail("SCHEMA(…) lists names separated by commas");
        }
    }
    let namespace = schema.remove(0);
    let mut problems = Vec::new();
    let mut values: Vec<(String, Vec<String>)> =
        schema.iter().map(|d| (d.clone(), Vec::new())).collect();
    let clause_start = |t: Option<&Tok>| INSIGHTS_CLAUSES.iter().any(|c| is_word(t, c));
    while i < toks.len() {
        if is_word(toks.get(i), "WHERE") {
            i += 1;
            // Conditions `key op value` joined by AND / OR; `=` and IN name exact values.
            while i < toks.len() && !clause_start(toks.get(i)) {
                if is_word(toks.get(i), "AND") || is_word(toks.get(i), "OR") {
                    i += 1;
                    continue;
                }
                let Some(key) = name_of(toks.get(i)) else {
                    return fail("WHERE needs `Dimension = 'value'` conditions");
                };
                i += 1;
                let exact = is_punct(toks.get(i), "=") || is_word(toks.get(i), "IN");
                let mut found = Vec::new();
                while i < toks.len()
                    && !clause_start(toks.get(i))
                    && !is_word(toks.get(i), "AND")
                    && !is_word(toks.get(i), "OR")
                {
                    if let Some(Tok::Value(v)) = toks.get(i) {
                        found.push(v.clone());
                    }
                    i += 1;
                }
                match values.iter_mut().find(|(d, _)| *d == key) {
                    Some((_, v)) if exact => v.extend(found),
                    Some(_) => {}
                    None => problems.push(format!(
                        "{origin}: Metrics Insights WHERE on {key}, which is not a dimension of \
                         its SCHEMA {schema:?}: {query}"
                    )),
                }
            }
        } else if is_word(toks.get(i), "GROUP") && is_word(toks.get(i + 1), "BY") {
            i += 2;
            while i < toks.len() && !clause_start(toks.get(i)) {
                if let Some(key) = name_of(toks.get(i))
                    && !schema.contains(&key)
                {
                    problems.push(format!(
                        "{origin}: Metrics Insights GROUP BY {key}, which is not a dimension of \
                         its SCHEMA {schema:?}: {query}"
                    ));
                }
                i += 1;
            }
        } else {
            // ORDER BY FUNC() [ASC|DESC], LIMIT n: nothing to check.
            i += 1;
        }
    }
    let r = MetricRef {
        origin: origin.to_owned(),
        namespace,
        name,
        dims: values,
        stat,
    };
    (Some(r), problems)
}

/// The metrics a math expression reads: its `SEARCH(…)` calls, or the Metrics Insights query
/// it is. Plain metric math (`errors * 100 / requests`) reads none itself.
pub fn parse_expression(expr: &str, origin: &str) -> (Vec<MetricRef>, Vec<String>) {
    if is_insights(expr) {
        let (r, problems) = parse_insights(expr, origin);
        return (r.into_iter().collect(), problems);
    }
    match parse_search(expr, origin) {
        Ok(refs) => (refs, Vec::new()),
        Err(e) => (Vec::new(), vec![e]),
    }
}

/// Ids a metric-math expression names that no query of the same widget or alarm defines
/// (SEARCH and Metrics Insights expressions name none).
pub fn undefined_ids<'a>(expr: &'a str, ids: &[&str]) -> Vec<&'a str> {
    if expr.contains("SEARCH(") || is_insights(expr) {
        return Vec::new();
    }
    let mut out: Vec<&str> = expr
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.starts_with(|c: char| c.is_ascii_lowercase()) && !ids.contains(w))
        .collect();
    out.dedup();
    out
}

fn metric_object(t: &Template, m: &Value, stat: String, origin: &str) -> MetricRef {
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
        stat,
    }
}

/// At most one Metrics Insights query per GetMetricData call: per alarm, per dashboard widget.
fn one_insights_query<'a>(exprs: impl Iterator<Item = &'a str>, origin: &str) -> Option<String> {
    let n = exprs.filter(|e| is_insights(e)).count();
    (n > 1).then(|| {
        format!(
            "{origin}: {n} Metrics Insights queries; one GetMetricData call (an alarm, a \
             widget) runs at most one"
        )
    })
}

/// The metrics an alarm reads: its own metric, or those of its `Metrics` queries.
pub fn from_alarm(t: &Template, id: &str, alarm: &Value) -> (Vec<MetricRef>, Vec<String>) {
    let p = props(alarm);
    let origin = format!("alarm {id}");
    let mut refs = Vec::new();
    let mut problems = Vec::new();
    if p.get("MetricName").is_some() {
        let stat = t
            .text(&p["ExtendedStatistic"])
            .or_else(|| t.text(&p["Statistic"]))
            .unwrap_or_default();
        refs.push(metric_object(t, p, stat, &origin));
    }
    let queries = p["Metrics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for q in queries {
        if q.get("MetricStat").is_some() {
            let stat = t.text(&q["MetricStat"]["Stat"]).unwrap_or_default();
            refs.push(metric_object(t, &q["MetricStat"]["Metric"], stat, &origin));
        } else if let Some(expr) = q["Expression"].as_str() {
            let (found, wrong) = parse_expression(expr, &origin);
            refs.extend(found);
            problems.extend(wrong);
        }
    }
    let exprs = queries.iter().filter_map(|q| q["Expression"].as_str());
    problems.extend(one_insights_query(exprs, &origin));
    (refs, problems)
}

/// The metrics every metric widget of a dashboard body shows: plain metric lines, SEARCH
/// expressions and Metrics Insights queries; and what is wrong with them (a `.` shorthand, an
/// expression naming an id the widget does not define, two Metrics Insights queries).
pub fn from_dashboard(body: &Value) -> (Vec<MetricRef>, Vec<String>) {
    let mut refs = Vec::new();
    let mut problems = Vec::new();
    for w in body["widgets"].as_array().into_iter().flatten() {
        if w["type"] != "metric" {
            continue;
        }
        let origin = format!("dashboard widget {:?}", w["properties"]["title"]);
        let lines: Vec<&[Value]> = w["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l.as_array().map(Vec::as_slice).unwrap_or_default())
            .collect();
        let options = |items: &[Value]| items.last().filter(|o| o.is_object()).cloned();
        let ids: Vec<&str> = lines
            .iter()
            .filter_map(|items| items.last().and_then(|o| o["id"].as_str()))
            .collect();
        let exprs: Vec<&str> = lines
            .iter()
            .filter_map(|items| items.first().and_then(|i| i["expression"].as_str()))
            .collect();
        problems.extend(one_insights_query(exprs.iter().copied(), &origin));
        for expr in &exprs {
            for id in undefined_ids(expr, &ids) {
                problems.push(format!(
                    "{origin}: expression {expr:?} names undefined id {id}"
                ));
            }
            let (found, wrong) = parse_expression(expr, &origin);
            refs.extend(found);
            problems.extend(wrong);
        }
        for items in lines {
            if items.first().is_some_and(|i| i.get("expression").is_some()) {
                continue;
            }
            let strings: Vec<&str> = items.iter().map_while(Value::as_str).collect();
            if strings.iter().any(|s| *s == "." || *s == "...") || strings.len() < 2 {
                problems.push(format!(
                    "{origin}: write metrics out in full (namespace, name, dimension pairs), \
                     not {}",
                    Value::from(items.to_vec())
                ));
                continue;
            }
            let stat = options(items)
                .and_then(|o| o["stat"].as_str().map(str::to_owned))
                .or_else(|| w["properties"]["stat"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "Average".to_owned());
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
                stat,
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
