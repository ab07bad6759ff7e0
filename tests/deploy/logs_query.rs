//! Field names in CloudWatch Logs Insights queries (dashboard widgets, runbook blocks), so a
//! query never filters on a name the service does not log. A tokenizer, not a parser: quoted
//! text is skipped, `@` fields are Logs Insights' own, aliases made with `as` are allowed later.

use std::collections::BTreeSet;

use chatbot_service::telemetry::catalog::METRICS;

/// Keys of the JSON log lines (src/telemetry/logging.rs) and of the summary line
/// (`"message": "request completed"`, src/telemetry/finish.rs), as docs/observability.md lists.
pub const LOG_FIELDS: &[&str] = &[
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
    "panicMessage",
    "location",
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
    "costUsd",
    "modelCostUsd",
    "computeCostUsd",
    "apiCostUsd",
    "costUnknown",
    "attempts",
    "retries",
    "throttles",
    "fallback",
    "conversationId",
    "streaming",
    "clientAborted",
    // Spend control (the summary line): the request was refused by a budget; what it reserved
    // before the model call and settled after it; a state store call that failed.
    "budgetRejected",
    "budgetReservedUsd",
    "budgetSettledUsd",
    "storeError",
];

/// Free properties of the EMF documents (besides metric and dimension names).
pub const EMF_PROPERTIES: &[&str] = &[
    "requestId",
    "xrayTraceId",
    "conversationId",
    "statusCode",
    "stopReason",
    "errorCode",
    "route",
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
    let mut known: BTreeSet<String> = LOG_FIELDS
        .iter()
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

/// Names in `query` that are neither language, `@` fields, aliases, nor in `known`.
pub fn unknown_fields(query: &str, known: &BTreeSet<String>) -> Vec<String> {
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
    let mut unknown: Vec<String> = tokens
        .iter()
        .filter(|(at, ident)| {
            !*at && !aliases.contains(ident.as_str())
                && !LANGUAGE.iter().any(|k| k.eq_ignore_ascii_case(ident))
                && !known.contains(ident.as_str())
        })
        .map(|(_, ident)| ident.clone())
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}
