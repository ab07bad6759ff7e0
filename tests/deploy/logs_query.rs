//! Field names in CloudWatch Logs Insights queries (dashboard widgets, runbook blocks), so a
//! query never filters on a name the service does not log. A tokenizer, not a parser: quoted
//! text is skipped, `@` fields are Logs Insights' own, aliases made with `as` are allowed later.

use std::collections::BTreeSet;

use chatbot_service::telemetry::catalog::METRICS;

/// Keys of every JSON log line (src/telemetry/logging.rs), as docs/observability.md lists.
pub const LINE_FIELDS: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "service",
    "requestId",
    "xrayTraceId",
    "coldStart",
    "functionName",
    "functionVersion",
    "logger",
];

/// Keys of the summary line (`"message": "request completed"`, src/telemetry/finish.rs), one
/// per request, as docs/observability.md lists.
pub const SUMMARY_FIELDS: &[&str] = &[
    "route",
    "method",
    "status",
    "effectiveStatus",
    "errorCode",
    "modelError",
    "latencyMs",
    "modelLatencyMs",
    "timeToFirstTokenMs",
    "modelId",
    "variant",
    "stopReason",
    "inputTokens",
    "outputTokens",
    // Prompt caching, service tier, Bedrock's own latency and the service's share of it,
    // stream pace (the metric budget moved these questions to the logs).
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
    "servedTier",
    "bedrockLatencyMs",
    "overheadMs",
    "outputTokensPerSecond",
    "longestChunkGapMs",
    "costUsd",
    "modelCostUsd",
    "computeCostUsd",
    "apiCostUsd",
    "costUnknown",
    "costEstimated",
    "attempts",
    "retries",
    "throttles",
    "fallback",
    "conversationId",
    "streaming",
    "clientAborted",
    // Spend control: the budget that refused the request; what it reserved before the model
    // call and settled after it; store calls that failed; served unbudgeted (fail-open).
    "budgetRejected",
    "budgetReservedUsd",
    "budgetSettledUsd",
    "budgetFailedOpen",
    "storeErrors",
    // Conversation memory.
    "historyTurns",
    "droppedTurns",
    "historyTokens",
];

/// Keys of other lines: `panic` (`panicMessage`, `location`), the `WARN` lines of a failed
/// state-store call (`storeError`: the DynamoDB error).
pub const OTHER_LINE_FIELDS: &[&str] = &["panicMessage", "location", "storeError"];

/// Free properties of the EMF documents (besides metric and dimension names): what was a
/// metric before the metric budget is one of these, for Logs Insights.
pub const EMF_PROPERTIES: &[&str] = &[
    "requestId",
    "xrayTraceId",
    "conversationId",
    "statusCode",
    "stopReason",
    "errorCode",
    "route",
    "budgetRejected",
    "budgetReservedUsd",
    "budgetSettledUsd",
    "coldStart",
    "clientAborted",
    "fallback",
    "costUnknown",
    "costEstimated",
    "retries",
    "modelLatencyMs",
    "servedTier",
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
];

/// Logs Insights commands, keywords and functions (lower-cased) the queries here may use.
const LANGUAGE: &[&str] = &[
    "fields",
    "filter",
    "stats",
    "sort",
    "limit",
    "display",
    "parse",
    "dedup",
    "by",
    "as",
    "and",
    "or",
    "not",
    "asc",
    "desc",
    "like",
    "in",
    "source",
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "pct",
    "stddev",
    "earliest",
    "latest",
    "ispresent",
    "isempty",
    "isblank",
    "strcontains",
    "coalesce",
    "concat",
    "bin",
    "floor",
    "ceil",
    "abs",
    "strlen",
    "tolower",
    "toupper",
    "substr",
    "replace",
    "datefloor",
    "fromMillis",
    "toMillis",
];

/// Every name a query may use: log fields, EMF properties, metric and dimension names, and
/// `extra` (e.g. the HTTP API access-log keys).
pub fn known_fields(extra: &[String]) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = LINE_FIELDS
        .iter()
        .chain(SUMMARY_FIELDS)
        .chain(OTHER_LINE_FIELDS)
        .chain(EMF_PROPERTIES)
        .map(|s| s.to_string())
        .collect();
    known.extend(METRICS.iter().map(|m| m.name.to_string()));
    for set in METRICS.iter().flat_map(|m| m.dimensions.iter()) {
        known.extend(set.iter().map(|d| d.to_string()));
    }
    known.extend(extra.iter().cloned());
    known
}

/// The field names a query uses: identifiers that are neither language, `@` fields, quoted text,
/// nor aliases made with `as`.
pub fn field_names(query: &str) -> Vec<String> {
    let mut tokens: Vec<(bool, String)> = Vec::new(); // (after '@', identifier)
    let mut chars = query.chars().peekable();
    let mut at = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                at = false;
            }
            '@' => at = true,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut ident = c.to_string();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == '.' {
                        ident.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push((at, ident));
                at = false;
            }
            c if c.is_ascii_digit() => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
                {
                    chars.next();
                }
                at = false;
            }
            _ => at = false,
        }
    }
    let aliases: BTreeSet<&str> = tokens
        .windows(2)
        .filter(|w| w[0].1.eq_ignore_ascii_case("as"))
        .map(|w| w[1].1.as_str())
        .collect();
    let mut names: Vec<String> = tokens
        .iter()
        .filter(|(at, ident)| {
            !*at && !aliases.contains(ident.as_str())
                && !LANGUAGE.iter().any(|k| k.eq_ignore_ascii_case(ident))
        })
        .map(|(_, ident)| ident.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Names in `query` that are neither language, `@` fields, aliases, nor in `known`.
pub fn unknown_fields(query: &str, known: &BTreeSet<String>) -> Vec<String> {
    field_names(query)
        .into_iter()
        .filter(|f| !known.contains(f))
        .collect()
}

/// The query without whitespace, for spotting its filters.
fn squeezed(query: &str) -> String {
    query.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Whether the query filters on the `message` key (not the raw `@message`) with `needle`
/// right after it, whitespace aside (`=`, `like`, `="request completed"`).
fn filters_message(query: &str, needle: &str) -> bool {
    query.match_indices("message").any(|(i, m)| {
        let word_start = !query[..i]
            .ends_with(|c: char| c == '@' || c == '_' || c == '.' || c.is_alphanumeric());
        word_start && squeezed(&query[i + m.len()..]).starts_with(needle)
    })
}

/// Names only an EMF document has: metric and dimension names, and its own properties.
fn emf_only() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = METRICS.iter().map(|m| m.name.to_string()).collect();
    for m in METRICS {
        for set in m.dimensions {
            names.extend(set.iter().map(|d| d.to_string()));
        }
    }
    names.extend(
        EMF_PROPERTIES
            .iter()
            .filter(|p| !LINE_FIELDS.contains(p) && !SUMMARY_FIELDS.contains(p))
            .map(|p| p.to_string()),
    );
    names
}

/// Mistakes about which record a query reads, as sentences:
///
/// - a query on the summary line (`message = "request completed"`) naming a key only an EMF
///   document has (`statusCode`, `Model`, `Latency`, …) or only another line has (`storeError`)
///   matches nothing on it;
/// - a `stats` query over a property both the summary line and the EMF document carry
///   (`errorCode`, `retries`, `clientAborted`, …; `coldStart` is on every line) counts each
///   request twice unless it picks one record: `filter message = "request completed"`, or
///   `ispresent(…)` of a name only EMF documents have.
pub fn record_problems(query: &str) -> Vec<String> {
    let names = field_names(query);
    let mut p = Vec::new();
    let on_summary = |f: &str| LINE_FIELDS.contains(&f) || SUMMARY_FIELDS.contains(&f);
    if filters_message(query, "=\"requestcompleted\"") {
        let elsewhere: Vec<&String> = names
            .iter()
            .filter(|f| {
                !on_summary(f)
                    && (emf_only().contains(f.as_str()) || OTHER_LINE_FIELDS.contains(&f.as_str()))
            })
            .collect();
        if !elsewhere.is_empty() {
            p.push(format!(
                "reads the summary line (message = \"request completed\") but {elsewhere:?} \
                 are not keys of it (EMF document or other lines only)"
            ));
        }
    }
    let stats = squeezed(query).contains("|stats") || query.trim_start().starts_with("stats");
    let picks_one = filters_message(query, "=")
        || filters_message(query, "like")
        || emf_only()
            .iter()
            .any(|n| squeezed(query).contains(&format!("ispresent({n})")));
    let twice: Vec<&String> = names
        .iter()
        .filter(|f| EMF_PROPERTIES.contains(&f.as_str()) && on_summary(f))
        .collect();
    if stats && !picks_one && !twice.is_empty() {
        p.push(format!(
            "counts {twice:?}, which the summary line and the EMF document both carry, without \
             picking one record per request (filter message = \"request completed\")"
        ));
    }
    p
}
