//! `--reconcile`: the function's own token counts per model against what Bedrock itself
//! published in `AWS/Bedrock` over the same window.
//!
//! - Ours: `InputTokens` / `OutputTokens` summed per `Model` over the `[Service, Model,
//!   Variant]` series; prompt-cache tokens (`cacheReadInputTokens`, `cacheWriteInputTokens`) are
//!   summary-line properties only, summed per `modelId` through Logs Insights when `--log-group`
//!   is given (else not compared).
//! - Bedrock's: `InputTokenCount`, `OutputTokenCount`, `CacheReadInputTokenCount`,
//!   `CacheWriteInputTokenCount` per `ModelId`; tier variants (`model-id+priority`, `+flex`,
//!   `+latency-optimized`) are folded into their model.
//!
//! Drift % = (ours − AWS) ÷ AWS × 100, per model and token kind. Above `--max-drift` the
//! command exits with [`super::EXIT_DRIFT`]. A model on one side only is listed, not compared.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};

use super::format::{Align, OutputFormat, Table, fixed, grouped};
use super::logs::CacheTokens;
use super::query::{
    BEDROCK_CACHE_READ, BEDROCK_CACHE_WRITE, BEDROCK_INPUT, BEDROCK_NAMESPACE, BEDROCK_OUTPUT,
    Points, Scope, SeriesKey,
};
use super::window::{Window, human_span, rfc3339};
use chatbot_service::telemetry::catalog::{INPUT_TOKENS, OUTPUT_TOKENS};

/// A kind of token both sides count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Input,
    Output,
    CacheRead,
    CacheWrite,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Input, Kind::Output, Kind::CacheRead, Kind::CacheWrite];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Output => "output",
            Kind::CacheRead => "cache read",
            Kind::CacheWrite => "cache write",
        }
    }

    fn json_key(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Output => "output",
            Kind::CacheRead => "cacheRead",
            Kind::CacheWrite => "cacheWrite",
        }
    }

    fn from_bedrock(metric: &str) -> Option<Kind> {
        match metric {
            BEDROCK_INPUT => Some(Kind::Input),
            BEDROCK_OUTPUT => Some(Kind::Output),
            BEDROCK_CACHE_READ => Some(Kind::CacheRead),
            BEDROCK_CACHE_WRITE => Some(Kind::CacheWrite),
            _ => None,
        }
    }

    fn from_ours(metric: &str) -> Option<Kind> {
        match metric {
            INPUT_TOKENS => Some(Kind::Input),
            OUTPUT_TOKENS => Some(Kind::Output),
            _ => None,
        }
    }

    fn is_cache(self) -> bool {
        matches!(self, Kind::CacheRead | Kind::CacheWrite)
    }
}

/// `us.amazon.nova-pro-v1:0+priority` → `us.amazon.nova-pro-v1:0`; an ARN → its last part.
pub fn fold_model_id(id: &str) -> &str {
    let id = id.rsplit('/').next().unwrap_or(id);
    id.split_once('+').map_or(id, |(model, _)| model)
}

/// Where a model has data in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Both,
    OursOnly,
    AwsOnly,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Both => "both",
            Side::OursOnly => "ours",
            Side::AwsOnly => "aws",
        }
    }
}

/// One model × token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub kind: Kind,
    /// `None`: this side has no data for the model, or (cache kinds) was not read.
    pub ours: Option<u64>,
    pub aws: Option<u64>,
    /// (ours − AWS) ÷ AWS × 100; `None` when not compared or AWS counted none.
    pub drift_pct: Option<Decimal>,
    /// Above `--max-drift`, or tokens on our side where AWS counted none.
    pub exceeded: bool,
}

impl Comparison {
    fn status(&self, side: Side) -> &'static str {
        match side {
            Side::OursOnly => "only ours",
            Side::AwsOnly => "only AWS/Bedrock",
            Side::Both if self.ours.is_none() => "not compared",
            Side::Both if self.exceeded => "DRIFT",
            Side::Both => "ok",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReconciliation {
    /// The model id (tier variants folded in).
    pub model: String,
    pub side: Side,
    /// The `ModelId` values Bedrock published it under (`…+priority` and so on).
    pub bedrock_ids: Vec<String>,
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub models: Vec<ModelReconciliation>,
    pub max_drift_pct: Decimal,
    /// Whether cache tokens were read from the logs (`--log-group`).
    pub cache_compared: bool,
}

impl Reconciliation {
    /// (model, kind, drift) of each comparison above the threshold.
    pub fn exceeded(&self) -> Vec<(&str, Kind, Option<Decimal>)> {
        self.models
            .iter()
            .flat_map(|m| {
                m.comparisons
                    .iter()
                    .filter(|c| c.exceeded)
                    .map(|c| (m.model.as_str(), c.kind, c.drift_pct))
            })
            .collect()
    }
}

/// Sums of one side per model and kind.
type Sums = BTreeMap<String, BTreeMap<Kind, u64>>;

fn total(points: &Points) -> u64 {
    points.iter().map(|(_, v)| v.round().max(0.0) as u64).sum()
}

/// Compares the two sides. `series` holds our pairs' token series and Bedrock's; `cache` our
/// cache tokens per model (from the logs), when read.
pub fn reconcile(
    series: &HashMap<SeriesKey, Points>,
    cache: Option<&BTreeMap<String, CacheTokens>>,
    max_drift_pct: Decimal,
) -> Reconciliation {
    let mut ours: Sums = BTreeMap::new();
    let mut aws: Sums = BTreeMap::new();
    let mut bedrock_ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, points) in series.iter().filter(|(_, p)| !p.is_empty()) {
        match &key.scope {
            Scope::Pair(p) => {
                if let Some(kind) = Kind::from_ours(key.metric) {
                    *ours
                        .entry(p.model.clone())
                        .or_default()
                        .entry(kind)
                        .or_default() += total(points);
                }
            }
            Scope::Bedrock(id) => {
                if let Some(kind) = Kind::from_bedrock(key.metric) {
                    let model = fold_model_id(id).to_owned();
                    bedrock_ids
                        .entry(model.clone())
                        .or_default()
                        .insert(id.clone());
                    *aws.entry(model).or_default().entry(kind).or_default() += total(points);
                }
            }
            Scope::Service => {}
        }
    }
    for (model, tokens) in cache.into_iter().flatten() {
        let sums = ours.entry(model.clone()).or_default();
        *sums.entry(Kind::CacheRead).or_default() += tokens.read;
        *sums.entry(Kind::CacheWrite).or_default() += tokens.write;
    }
    let names: BTreeSet<&String> = ours.keys().chain(aws.keys()).collect();
    let models = names
        .into_iter()
        .map(|model| {
            let (o, a) = (ours.get(model), aws.get(model));
            let side = match (o, a) {
                (Some(_), Some(_)) => Side::Both,
                (Some(_), None) => Side::OursOnly,
                _ => Side::AwsOnly,
            };
            let comparisons = Kind::ALL
                .iter()
                .map(|&kind| {
                    let read = !kind.is_cache() || cache.is_some();
                    let ours_n = o
                        .filter(|_| read)
                        .map(|s| s.get(&kind).copied().unwrap_or(0));
                    let aws_n = a.map(|s| s.get(&kind).copied().unwrap_or(0));
                    compare(kind, ours_n, aws_n, side, max_drift_pct)
                })
                .collect();
            ModelReconciliation {
                model: model.clone(),
                side,
                bedrock_ids: bedrock_ids
                    .get(model)
                    .map(|ids| ids.iter().cloned().collect())
                    .unwrap_or_default(),
                comparisons,
            }
        })
        .collect();
    Reconciliation {
        models,
        max_drift_pct,
        cache_compared: cache.is_some(),
    }
}

fn compare(
    kind: Kind,
    ours: Option<u64>,
    aws: Option<u64>,
    side: Side,
    max_drift_pct: Decimal,
) -> Comparison {
    let (drift_pct, exceeded) = match (side, ours, aws) {
        (Side::Both, Some(o), Some(a)) if a > 0 => {
            let drift =
                (Decimal::from(o) - Decimal::from(a)) * Decimal::ONE_HUNDRED / Decimal::from(a);
            (Some(drift), drift.abs() > max_drift_pct)
        }
        // Tokens Bedrock never counted, for a model it does know: no finite drift.
        (Side::Both, Some(o), Some(0)) => (None, o > 0),
        _ => (None, false),
    };
    Comparison {
        kind,
        ours,
        aws,
        drift_pct,
        exceeded,
    }
}

/// What `--reconcile` prints.
pub struct ReconcileReport {
    pub service: String,
    pub namespace: String,
    pub window: Window,
    pub result: Reconciliation,
}

/// `+10.00%`, `-3.25%`, `0.00%`.
fn percent(d: Decimal) -> String {
    let sign = if d > Decimal::ZERO { "+" } else { "" };
    format!("{sign}{}%", fixed(d, 2))
}

pub fn render(r: &ReconcileReport, format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => human(r, false),
        OutputFormat::Markdown => human(r, true),
        OutputFormat::Csv => csv(r),
        OutputFormat::Json => serde_json::to_string_pretty(&to_json(r)).unwrap_or_default() + "\n",
    }
}

fn human(r: &ReconcileReport, markdown: bool) -> String {
    let mut t = Table::new(&[
        ("MODEL", Align::Left),
        ("TOKENS", Align::Left),
        ("OURS", Align::Right),
        ("AWS/BEDROCK", Align::Right),
        ("DRIFT", Align::Right),
        ("STATUS", Align::Left),
    ]);
    let count = |n: Option<u64>| n.map(grouped).unwrap_or_else(|| "-".into());
    for m in &r.result.models {
        for c in &m.comparisons {
            let drift = match (c.drift_pct, c.ours, c.aws) {
                (Some(d), _, _) => percent(d),
                (None, Some(o), Some(0)) if o > 0 && m.side == Side::Both => "n/a".into(),
                _ => "-".into(),
            };
            t.push(vec![
                m.model.clone(),
                c.kind.label().into(),
                count(c.ours),
                count(c.aws),
                drift,
                c.status(m.side).into(),
            ]);
        }
    }
    let w = &r.window;
    let res = &r.result;
    let mut out = format!(
        "Token reconciliation: service {} (namespace {}) against {BEDROCK_NAMESPACE}, {} to {} ({}); max drift {}%\n\n",
        r.service,
        r.namespace,
        rfc3339(w.start),
        rfc3339(w.end),
        human_span(w.seconds()),
        res.max_drift_pct.normalize()
    );
    out.push_str(&if markdown {
        t.markdown()
    } else {
        t.aligned(false)
    });
    out.push_str(
        "\nDRIFT = (ours − AWS/Bedrock) ÷ AWS/Bedrock × 100. Bedrock's tier variants (+priority, +flex, +latency-optimized) are folded into their model.\n",
    );
    if !res.cache_compared {
        out.push_str(
            "Cache tokens: not compared (they are summary-line properties: pass --log-group to read them through Logs Insights).\n",
        );
    }
    let one_side: Vec<&str> = res
        .models
        .iter()
        .filter(|m| m.side != Side::Both)
        .map(|m| m.model.as_str())
        .collect();
    if !one_side.is_empty() {
        out.push_str(&format!(
            "On one side only (listed, not compared): {}.\n",
            one_side.join(", ")
        ));
    }
    let exceeded = res.exceeded();
    if exceeded.is_empty() {
        out.push_str(&format!(
            "Every comparison is within {}%.\n",
            res.max_drift_pct.normalize()
        ));
    } else {
        out.push_str(&format!(
            "{} comparison(s) above {}%: exit status {}.\n",
            exceeded.len(),
            res.max_drift_pct.normalize(),
            super::EXIT_DRIFT
        ));
    }
    out
}

fn csv(r: &ReconcileReport) -> String {
    let mut t = Table::new(&[
        ("model", Align::Left),
        ("tokens", Align::Left),
        ("ours", Align::Right),
        ("aws", Align::Right),
        ("drift_pct", Align::Right),
        ("status", Align::Left),
    ]);
    let opt = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    for m in &r.result.models {
        for c in &m.comparisons {
            t.push(vec![
                m.model.clone(),
                c.kind.json_key().into(),
                opt(c.ours),
                opt(c.aws),
                c.drift_pct
                    .map(|d| super::format::exact(d.round_dp(4)))
                    .unwrap_or_default(),
                c.status(m.side).into(),
            ]);
        }
    }
    t.csv()
}

fn to_json(r: &ReconcileReport) -> Value {
    let res = &r.result;
    let pct = |d: Decimal| {
        d.round_dp(4)
            .to_f64()
            .map(Value::from)
            .unwrap_or(Value::Null)
    };
    let models: Vec<Value> = res
        .models
        .iter()
        .map(|m| {
            let mut tokens = serde_json::Map::new();
            for c in &m.comparisons {
                tokens.insert(
                    c.kind.json_key().into(),
                    json!({
                        "ours": c.ours,
                        "aws": c.aws,
                        "driftPct": c.drift_pct.map(pct).unwrap_or(Value::Null),
                        "exceeded": c.exceeded,
                        "status": c.status(m.side),
                    }),
                );
            }
            json!({
                "model": m.model,
                "side": m.side.as_str(),
                "bedrockModelIds": m.bedrock_ids,
                "tokens": tokens,
            })
        })
        .collect();
    let exceeded: Vec<Value> = res
        .exceeded()
        .into_iter()
        .map(|(model, kind, drift)| {
            json!({
                "model": model,
                "tokens": kind.json_key(),
                "driftPct": drift.map(pct).unwrap_or(Value::Null),
            })
        })
        .collect();
    json!({
        "service": r.service,
        "namespace": r.namespace,
        "bedrockNamespace": BEDROCK_NAMESPACE,
        "start": rfc3339(r.window.start),
        "end": rfc3339(r.window.end),
        "windowSeconds": r.window.seconds(),
        "maxDriftPct": pct(res.max_drift_pct),
        "cacheCompared": res.cache_compared,
        "models": models,
        "exceeded": exceeded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::query::Pair;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn ours(model: &str, variant: &str, metric: &'static str, v: f64) -> (SeriesKey, Points) {
        let scope = Scope::Pair(Pair {
            model: model.into(),
            variant: variant.into(),
        });
        (SeriesKey { scope, metric }, vec![(0, v)])
    }

    fn aws(id: &str, metric: &'static str, v: f64) -> (SeriesKey, Points) {
        let scope = Scope::Bedrock(id.into());
        (SeriesKey { scope, metric }, vec![(0, v)])
    }

    #[test]
    fn tier_variants_fold_into_their_model() {
        assert_eq!(
            fold_model_id("us.amazon.nova-pro-v1:0+priority"),
            "us.amazon.nova-pro-v1:0"
        );
        assert_eq!(
            fold_model_id("amazon.nova-pro-v1:0+latency-optimized"),
            "amazon.nova-pro-v1:0"
        );
        assert_eq!(
            fold_model_id("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"),
            "amazon.nova-lite-v1:0"
        );
        assert_eq!(
            fold_model_id("amazon.nova-lite-v1:0"),
            "amazon.nova-lite-v1:0"
        );
    }

    #[test]
    fn drift_per_model_and_kind() {
        let series: HashMap<SeriesKey, Points> = [
            // Pro: two variants on our side, two tiers on Bedrock's: both fold to 10,000.
            ours("pro", "a", INPUT_TOKENS, 6_000.0),
            ours("pro", "b", INPUT_TOKENS, 4_000.0),
            aws("pro", BEDROCK_INPUT, 7_000.0),
            aws("pro+priority", BEDROCK_INPUT, 3_000.0),
            // Lite: 2,200 against 2,000 = +10 %.
            ours("lite", "a", INPUT_TOKENS, 2_200.0),
            aws("lite", BEDROCK_INPUT, 2_000.0),
            aws("lite", BEDROCK_CACHE_READ, 500.0),
            // Output we counted that Bedrock did not.
            ours("lite", "a", OUTPUT_TOKENS, 10.0),
            ours("mine", "a", INPUT_TOKENS, 5.0),
            aws("theirs", BEDROCK_INPUT, 9.0),
        ]
        .into_iter()
        .collect();
        let cache = BTreeMap::from([(
            "lite".to_owned(),
            CacheTokens {
                read: 490,
                write: 0,
            },
        )]);
        let r = reconcile(&series, Some(&cache), d("2"));
        let by = |m: &str| r.models.iter().find(|x| x.model == m).unwrap();
        let pro = by("pro");
        assert_eq!(pro.side, Side::Both);
        assert_eq!(pro.bedrock_ids, ["pro", "pro+priority"]);
        assert_eq!(pro.comparisons[0].ours, Some(10_000));
        assert_eq!(pro.comparisons[0].aws, Some(10_000));
        assert_eq!(pro.comparisons[0].drift_pct, Some(Decimal::ZERO));
        let lite = by("lite");
        assert_eq!(lite.comparisons[0].drift_pct, Some(d("10")));
        assert!(lite.comparisons[0].exceeded);
        // Output: 10 ours, 0 AWS → no finite drift, exceeded.
        assert_eq!(lite.comparisons[1].drift_pct, None);
        assert!(lite.comparisons[1].exceeded);
        // Cache read: (490 − 500) / 500 = −2 %: not above 2.
        assert_eq!(lite.comparisons[2].drift_pct, Some(d("-2")));
        assert!(!lite.comparisons[2].exceeded);
        assert_eq!(by("mine").side, Side::OursOnly);
        assert_eq!(by("theirs").side, Side::AwsOnly);
        assert!(!by("theirs").comparisons.iter().any(|c| c.exceeded));
        let exceeded: Vec<(&str, Kind)> = r.exceeded().iter().map(|(m, k, _)| (*m, *k)).collect();
        assert_eq!(exceeded, [("lite", Kind::Input), ("lite", Kind::Output)]);

        // Without the logs, cache tokens are not compared.
        let r = reconcile(&series, None, d("15"));
        let lite = r.models.iter().find(|x| x.model == "lite").unwrap();
        assert_eq!(lite.comparisons[2].ours, None);
        assert_eq!(lite.comparisons[2].status(lite.side), "not compared");
        assert!(!r.cache_compared);
    }
}
