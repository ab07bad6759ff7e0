//! Reading metrics: which model × variant pairs have data (ListMetrics on the
//! `[Service, Model, Variant]` set), which `AWS/Bedrock` model ids have token counts (for
//! `--reconcile`), then every series the report needs (GetMetricData, at most 500 queries per
//! call, every page), aggregated client-side.
//!
//! Only plain `MetricStat` queries — `Sum`, and `SampleCount` of `Latency` (one value per
//! request, so its sample count is the request count): no percentiles, no metric math, no
//! SEARCH. CloudWatch bills those the same, and moto (the tests' CloudWatch) has none of them.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat, ScanBy,
};

use super::ReportError;
use super::aws::{METRICS_ACTIONS, classify};
use super::progress::Progress;
use super::window::Window;
use chatbot_service::telemetry::catalog::{
    self, COST_USD, DIM_MODEL, DIM_SERVICE, DIM_VARIANT, ERRORS, INPUT_TOKENS, LATENCY,
    OUTPUT_TOKENS,
};

/// The metrics a report row is made of. `Latency` is read as its sample count (requests).
pub const REPORT_METRICS: [&str; 5] = [LATENCY, ERRORS, COST_USD, INPUT_TOKENS, OUTPUT_TOKENS];

/// The three-dimension set the per-model and per-variant rows are summed from.
pub const PAIR_SET: [&str; 3] = [DIM_SERVICE, DIM_MODEL, DIM_VARIANT];

/// Bedrock's own runtime metrics (`--reconcile`): namespace, dimension, token counts.
pub const BEDROCK_NAMESPACE: &str = "AWS/Bedrock";
pub const BEDROCK_DIM: &str = "ModelId";
pub const BEDROCK_INPUT: &str = "InputTokenCount";
pub const BEDROCK_OUTPUT: &str = "OutputTokenCount";
pub const BEDROCK_CACHE_READ: &str = "CacheReadInputTokenCount";
pub const BEDROCK_CACHE_WRITE: &str = "CacheWriteInputTokenCount";
pub const BEDROCK_TOKEN_METRICS: [&str; 4] = [
    BEDROCK_INPUT,
    BEDROCK_OUTPUT,
    BEDROCK_CACHE_READ,
    BEDROCK_CACHE_WRITE,
];

/// GetMetricData's limit on queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// One model × variant the service published metrics for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    pub model: String,
    pub variant: String,
}

impl Pair {
    /// The pair's value of `dimension` (`Model` or `Variant`).
    pub fn value(&self, dimension: &str) -> &str {
        if dimension == DIM_VARIANT {
            &self.variant
        } else {
            &self.model
        }
    }
}

/// Which dimension set (and namespace) a series is read under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `[Service]` in the function's namespace: the service's totals.
    Service,
    /// `[Service, Model, Variant]` in the function's namespace.
    Pair(Pair),
    /// `[ModelId]` in `AWS/Bedrock` (the id as Bedrock publishes it, tier suffix included).
    Bedrock(String),
}

/// One series: `metric` under `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub scope: Scope,
    pub metric: &'static str,
}

impl SeriesKey {
    /// `SampleCount` for the function's `Latency` (the request count), `Sum` otherwise.
    pub fn stat(&self) -> &'static str {
        match self.scope {
            Scope::Bedrock(_) => "Sum",
            _ if self.metric == LATENCY => "SampleCount",
            _ => "Sum",
        }
    }
}

/// (bucket start in epoch seconds, statistic in that bucket).
pub type Points = Vec<(i64, f64)>;

/// Whether the catalog publishes `metric` under exactly `set`.
pub fn published_under(metric: &str, set: &[&str]) -> bool {
    catalog::find(metric).is_some_and(|m| m.dimensions.contains(&set))
}

/// Model × variant pairs published together with `Service=service` (from `Latency`'s
/// `[Service, Model, Variant]` set: every request that reached a model has one). CloudWatch
/// lists only metrics with data in the last two weeks.
pub async fn pairs(
    client: &Client,
    namespace: &str,
    service: &str,
) -> Result<Vec<Pair>, ReportError> {
    let mut pages = client
        .list_metrics()
        .namespace(namespace)
        .metric_name(LATENCY)
        .dimensions(
            DimensionFilter::builder()
                .name(DIM_SERVICE)
                .value(service)
                .build(),
        )
        .dimensions(DimensionFilter::builder().name(DIM_MODEL).build())
        .dimensions(DimensionFilter::builder().name(DIM_VARIANT).build())
        .into_paginator()
        .send();
    let mut values = BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListMetrics", METRICS_ACTIONS, e))?;
        for metric in page.metrics() {
            if let Some(p) = pair_in_set(metric.dimensions(), service) {
                values.insert(p);
            }
        }
    }
    Ok(values.into_iter().collect())
}

/// Service names that have a `Latency` metric under `[Service]` in `namespace` (for the "no
/// data" hint).
pub async fn services(client: &Client, namespace: &str) -> Result<Vec<String>, ReportError> {
    let mut pages = client
        .list_metrics()
        .namespace(namespace)
        .metric_name(LATENCY)
        .into_paginator()
        .send();
    let mut names = BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListMetrics", METRICS_ACTIONS, e))?;
        for metric in page.metrics() {
            let dims = metric.dimensions();
            if let [d] = dims
                && d.name() == Some(DIM_SERVICE)
                && let Some(v) = d.value()
            {
                names.insert(v.to_owned());
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// The `AWS/Bedrock` token series that exist: each token metric under exactly `[ModelId]`.
pub async fn bedrock_series(client: &Client) -> Result<Vec<SeriesKey>, ReportError> {
    let mut pages = client
        .list_metrics()
        .namespace(BEDROCK_NAMESPACE)
        .dimensions(DimensionFilter::builder().name(BEDROCK_DIM).build())
        .into_paginator()
        .send();
    let mut keys = BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListMetrics", METRICS_ACTIONS, e))?;
        for metric in page.metrics() {
            let Some(name) = metric.metric_name() else {
                continue;
            };
            let Some(known) = BEDROCK_TOKEN_METRICS.iter().find(|m| **m == name) else {
                continue;
            };
            if let [d] = metric.dimensions()
                && d.name() == Some(BEDROCK_DIM)
                && let Some(id) = d.value()
            {
                keys.insert(SeriesKey {
                    scope: Scope::Bedrock(id.to_owned()),
                    metric: known,
                });
            }
        }
    }
    Ok(keys.into_iter().collect())
}

/// The pair when `dims` is exactly `[Service=service, Model=m, Variant=v]` (any order).
fn pair_in_set(dims: &[Dimension], service: &str) -> Option<Pair> {
    if dims.len() != PAIR_SET.len() {
        return None;
    }
    let get = |name: &str| dims.iter().find(|d| d.name() == Some(name))?.value();
    (get(DIM_SERVICE)? == service).then_some(())?;
    Some(Pair {
        model: get(DIM_MODEL)?.to_owned(),
        variant: get(DIM_VARIANT)?.to_owned(),
    })
}

/// Every series to read: the report metrics the catalog publishes under `[Service]`, and per
/// pair the rest — all of them when rows are per model or variant (`per_pair_rows`), else only
/// those `[Service]` lacks (the token counts, which the totals and time rows sum over pairs).
pub fn series(per_pair_rows: bool, pairs: &[Pair]) -> Vec<SeriesKey> {
    let mut keys: Vec<SeriesKey> = REPORT_METRICS
        .iter()
        .filter(|m| published_under(m, &[DIM_SERVICE]))
        .map(|m| SeriesKey {
            scope: Scope::Service,
            metric: m,
        })
        .collect();
    let per_pair: Vec<&'static str> = REPORT_METRICS
        .iter()
        .copied()
        .filter(|m| published_under(m, &PAIR_SET))
        .filter(|m| per_pair_rows || !published_under(m, &[DIM_SERVICE]))
        .collect();
    for p in pairs {
        keys.extend(per_pair.iter().map(|m| SeriesKey {
            scope: Scope::Pair(p.clone()),
            metric: m,
        }));
    }
    keys
}

/// The series `--reconcile` reads on the function's side: the token counts per pair.
pub fn token_series(pairs: &[Pair]) -> Vec<SeriesKey> {
    pairs
        .iter()
        .flat_map(|p| {
            [INPUT_TOKENS, OUTPUT_TOKENS].map(|m| SeriesKey {
                scope: Scope::Pair(p.clone()),
                metric: m,
            })
        })
        .collect()
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

/// GetMetricData queries for `keys`, ids `q0`, `q1`, … (ids must start with a lower-case
/// letter), in batches of at most 500.
pub fn batches(
    namespace: &str,
    service: &str,
    keys: &[SeriesKey],
    period: i64,
) -> Vec<Vec<MetricDataQuery>> {
    let queries: Vec<MetricDataQuery> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let metric = Metric::builder().metric_name(key.metric);
            // Dimensions in the catalog's order, as the EMF documents list them.
            let metric = match &key.scope {
                Scope::Service => metric
                    .namespace(namespace)
                    .dimensions(dimension(DIM_SERVICE, service)),
                Scope::Pair(p) => metric
                    .namespace(namespace)
                    .dimensions(dimension(DIM_SERVICE, service))
                    .dimensions(dimension(DIM_MODEL, &p.model))
                    .dimensions(dimension(DIM_VARIANT, &p.variant)),
                Scope::Bedrock(id) => metric
                    .namespace(BEDROCK_NAMESPACE)
                    .dimensions(dimension(BEDROCK_DIM, id)),
            };
            let stat = MetricStat::builder()
                .metric(metric.build())
                .period(period as i32)
                .stat(key.stat())
                .build();
            MetricDataQuery::builder()
                .id(format!("q{i}"))
                .metric_stat(stat)
                .return_data(true)
                .build()
        })
        .collect();
    queries
        .chunks(MAX_QUERIES_PER_CALL)
        .map(<[MetricDataQuery]>::to_vec)
        .collect()
}

/// Reads `keys` over the window: every batch, every page; points of one id are gathered
/// across pages.
pub async fn fetch(
    client: &Client,
    namespace: &str,
    service: &str,
    keys: &[SeriesKey],
    window: &Window,
    progress: &Progress,
) -> Result<HashMap<SeriesKey, Points>, ReportError> {
    let batches = batches(namespace, service, keys, window.period);
    let mut out: HashMap<SeriesKey, Points> = HashMap::new();
    let total = batches.len();
    for (b, queries) in batches.into_iter().enumerate() {
        let mut pages = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(window.start_time())
            .end_time(window.end_time())
            .scan_by(ScanBy::TimestampAscending)
            .into_paginator()
            .send();
        let mut page_no = 0;
        while let Some(page) = pages.next().await {
            page_no += 1;
            progress.update(&format!(
                "reading {} metric series from CloudWatch (batch {}/{total}, page {page_no})",
                keys.len(),
                b + 1
            ));
            let page = page.map_err(|e| classify("GetMetricData", METRICS_ACTIONS, e))?;
            for result in page.metric_data_results() {
                let Some(key) = result
                    .id()
                    .and_then(|id| id.strip_prefix('q'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| keys.get(n))
                else {
                    continue;
                };
                let points = out.entry(key.clone()).or_default();
                points.extend(
                    result
                        .timestamps()
                        .iter()
                        .map(|t| t.secs())
                        .zip(result.values().iter().copied()),
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(m: &str, v: &str) -> Pair {
        Pair {
            model: m.into(),
            variant: v.into(),
        }
    }

    #[test]
    fn exact_dimension_sets_only() {
        let d = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
        let set = [
            d("Service", "chatbot-dev"),
            d("Model", "m1"),
            d("Variant", "a"),
        ];
        assert_eq!(pair_in_set(&set, "chatbot-dev"), Some(pair("m1", "a")));
        assert_eq!(pair_in_set(&set, "chatbot-prod"), None);
        let two = [d("Service", "chatbot-dev"), d("Model", "m1")];
        assert_eq!(pair_in_set(&two, "chatbot-dev"), None);
        let other = [
            d("Service", "chatbot-dev"),
            d("Model", "m1"),
            d("ErrorCode", "x"),
        ];
        assert_eq!(pair_in_set(&other, "chatbot-dev"), None);
    }

    #[test]
    fn the_catalog_decides_what_is_read_where() {
        // [Service]: requests (Latency), errors, cost; tokens only per model × variant.
        let keys = series(false, &[pair("m", "v")]);
        let service: Vec<(&str, &str)> = keys
            .iter()
            .map(|k| (k.metric, if k.scope == Scope::Service { "S" } else { "P" }))
            .collect();
        assert_eq!(
            service,
            [
                ("Latency", "S"),
                ("Errors", "S"),
                ("CostUSD", "S"),
                ("InputTokens", "P"),
                ("OutputTokens", "P")
            ]
        );
        assert_eq!(keys[0].stat(), "SampleCount");
        assert_eq!(keys[1].stat(), "Sum");
        assert_eq!(series(true, &[pair("m", "v")]).len(), 3 + 5);
    }

    #[test]
    fn batches_hold_at_most_500_queries_with_unique_ids() {
        let pairs: Vec<Pair> = (0..100).map(|i| pair(&format!("model-{i}"), "v")).collect();
        let keys = series(true, &pairs);
        assert_eq!(keys.len(), 3 + 100 * 5);
        let b = batches("Ns", "svc", &keys, 60);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![500, 3]);
        let ids: BTreeSet<&str> = b.iter().flatten().filter_map(|q| q.id()).collect();
        assert_eq!(ids.len(), keys.len());
        assert!(ids.iter().all(|id| id.starts_with('q')));
        // The last query is the last pair's last metric, with all three dimensions, per 60 s.
        let last = b[1].last().unwrap().metric_stat().unwrap();
        assert_eq!(last.stat(), Some("Sum"));
        assert_eq!(last.period(), Some(60));
        let metric = last.metric().unwrap();
        let dims: Vec<(&str, &str)> = metric
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap(), d.value().unwrap()))
            .collect();
        assert_eq!(
            dims,
            [("Service", "svc"), ("Model", "model-99"), ("Variant", "v")]
        );
        assert_eq!(metric.metric_name(), Some("OutputTokens"));
        // The first is the service's request count.
        let first = b[0][0].metric_stat().unwrap();
        assert_eq!(first.stat(), Some("SampleCount"));
        assert_eq!(first.metric().unwrap().metric_name(), Some("Latency"));
    }

    #[test]
    fn bedrock_series_are_read_in_their_namespace() {
        let keys = [SeriesKey {
            scope: Scope::Bedrock("us.amazon.nova-pro-v1:0+priority".into()),
            metric: BEDROCK_INPUT,
        }];
        let b = batches("ServerlessChatbot", "svc", &keys, 300);
        let stat = b[0][0].metric_stat().unwrap();
        let metric = stat.metric().unwrap();
        assert_eq!(metric.namespace(), Some("AWS/Bedrock"));
        assert_eq!(metric.dimensions()[0].name(), Some("ModelId"));
        assert_eq!(
            metric.dimensions()[0].value(),
            Some("us.amazon.nova-pro-v1:0+priority")
        );
        assert_eq!(stat.stat(), Some("Sum"));
    }
}
