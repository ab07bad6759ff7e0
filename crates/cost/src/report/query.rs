//! Reading the function's metrics: which models (or other dimension values) have data
//! (ListMetrics), then every series the report needs as `Sum` per period (GetMetricData, at most
//! 500 queries per call, every page).
//!
//! Only `Sum` of plain metrics: no percentiles, no metric math, no SEARCH — CloudWatch bills
//! those the same, and moto (the tests' CloudWatch) has none of them.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat, ScanBy,
};

use super::ReportError;
use super::aws::{METRICS_ACTIONS, classify};
use super::progress::Progress;
use super::window::Window;
// Stand-ins until cost-report reads the new catalog (Requests = Latency sample count).
const REQUESTS: &str = "Requests";
const COST_UNKNOWN: &str = "CostUnknown";
use chatbot_service::telemetry::catalog::{
    COST_USD, DIM_SERVICE, ERRORS, INPUT_TOKENS, OUTPUT_TOKENS,
};

/// The metrics a report row is made of.
pub const REPORT_METRICS: [&str; 6] = [
    REQUESTS,
    ERRORS,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    COST_USD,
    COST_UNKNOWN,
];

/// GetMetricData's limit on queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// One series: `metric` under `[Service]` (`group` None) or `[Service, <dimension>=group]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub group: Option<String>,
    pub metric: &'static str,
}

/// (bucket start in epoch seconds, Sum in that bucket).
pub type Points = Vec<(i64, f64)>;

/// Values of `dimension` published together with `Service=service` (from the `Requests`
/// metric's `[Service, <dimension>]` set). CloudWatch lists only metrics with data in the last
/// two weeks.
pub async fn discover(
    client: &Client,
    namespace: &str,
    service: &str,
    dimension: &str,
) -> Result<Vec<String>, ReportError> {
    let mut pages = client
        .list_metrics()
        .namespace(namespace)
        .metric_name(REQUESTS)
        .dimensions(
            DimensionFilter::builder()
                .name(DIM_SERVICE)
                .value(service)
                .build(),
        )
        .dimensions(DimensionFilter::builder().name(dimension).build())
        .into_paginator()
        .send();
    let mut values = BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListMetrics", METRICS_ACTIONS, e))?;
        for metric in page.metrics() {
            if let Some(v) = value_in_set(metric.dimensions(), service, dimension) {
                values.insert(v.to_owned());
            }
        }
    }
    Ok(values.into_iter().collect())
}

/// Service names that have a `Requests` metric in `namespace` (for the "no data" hint).
pub async fn services(client: &Client, namespace: &str) -> Result<Vec<String>, ReportError> {
    let mut pages = client
        .list_metrics()
        .namespace(namespace)
        .metric_name(REQUESTS)
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

/// The value of `dimension` when `dims` is exactly `[Service=service, <dimension>=value]`.
fn value_in_set<'a>(dims: &'a [Dimension], service: &str, dimension: &str) -> Option<&'a str> {
    if dims.len() != 2 {
        return None;
    }
    let get = |name: &str| dims.iter().find(|d| d.name() == Some(name))?.value();
    (get(DIM_SERVICE)? == service).then_some(())?;
    get(dimension)
}

/// Every series to read: the `[Service]` totals, plus per group when `dimension` is given.
pub fn series(dimension: Option<&str>, groups: &[String]) -> Vec<SeriesKey> {
    let mut keys: Vec<SeriesKey> = REPORT_METRICS
        .iter()
        .map(|m| SeriesKey {
            group: None,
            metric: m,
        })
        .collect();
    if dimension.is_some() {
        for g in groups {
            keys.extend(REPORT_METRICS.iter().map(|m| SeriesKey {
                group: Some(g.clone()),
                metric: m,
            }));
        }
    }
    keys
}

/// GetMetricData queries for `keys`, ids `q0`, `q1`, … (ids must start with a lower-case
/// letter), in batches of at most 500.
pub fn batches(
    namespace: &str,
    service: &str,
    dimension: Option<&str>,
    keys: &[SeriesKey],
    period: i64,
) -> Vec<Vec<MetricDataQuery>> {
    let queries: Vec<MetricDataQuery> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let mut metric = Metric::builder()
                .namespace(namespace)
                .metric_name(key.metric)
                .dimensions(
                    Dimension::builder()
                        .name(DIM_SERVICE)
                        .value(service)
                        .build(),
                );
            if let (Some(dim), Some(value)) = (dimension, &key.group) {
                metric = metric.dimensions(Dimension::builder().name(dim).value(value).build());
            }
            let stat = MetricStat::builder()
                .metric(metric.build())
                .period(period as i32)
                .stat("Sum")
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
    dimension: Option<&str>,
    keys: &[SeriesKey],
    window: &Window,
    progress: &Progress,
) -> Result<HashMap<SeriesKey, Points>, ReportError> {
    let batches = batches(namespace, service, dimension, keys, window.period);
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

    #[test]
    fn exact_dimension_sets_only() {
        let d = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
        let set = [d("Service", "chatbot-dev"), d("Model", "m1")];
        assert_eq!(value_in_set(&set, "chatbot-dev", "Model"), Some("m1"));
        assert_eq!(value_in_set(&set, "chatbot-prod", "Model"), None);
        let three = [d("Service", "chatbot-dev"), d("Model", "m1"), d("X", "y")];
        assert_eq!(value_in_set(&three, "chatbot-dev", "Model"), None);
        let other = [d("Service", "chatbot-dev"), d("Variant", "a")];
        assert_eq!(value_in_set(&other, "chatbot-dev", "Model"), None);
    }

    #[test]
    fn batches_hold_at_most_500_queries_with_unique_ids() {
        let groups: Vec<String> = (0..100).map(|i| format!("model-{i}")).collect();
        let keys = series(Some("Model"), &groups);
        assert_eq!(keys.len(), 6 + 100 * 6);
        let b = batches("Ns", "svc", Some("Model"), &keys, 60);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![500, 106]);
        let ids: BTreeSet<&str> = b.iter().flatten().filter_map(|q| q.id()).collect();
        assert_eq!(ids.len(), keys.len());
        assert!(ids.iter().all(|id| id.starts_with('q')));
        // The last query is the last group's last metric, with both dimensions, Sum per 60 s.
        let last = b[1].last().unwrap().metric_stat().unwrap();
        assert_eq!(last.stat(), Some("Sum"));
        assert_eq!(last.period(), Some(60));
        let dims = last.metric().unwrap().dimensions();
        assert_eq!(dims.len(), 2);
        assert_eq!(dims[1].value(), Some("model-99"));
        assert_eq!(last.metric().unwrap().metric_name(), Some("CostUnknown"));
    }

    #[test]
    fn time_groupings_read_only_service_totals() {
        let keys = series(None, &["ignored".into()]);
        assert_eq!(keys.len(), 6);
        assert!(keys.iter().all(|k| k.group.is_none()));
    }
}
