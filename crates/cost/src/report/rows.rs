//! From metric series to report rows: sums per row, the totals row, and the derived figures
//! (USD per request, per 1K tokens, 30-day projection).
//!
//! CloudWatch returns sums as doubles. Each is turned into a decimal through its shortest
//! round-trip form and rounded to 10 decimal places (a ten-billionth of a dollar; float noise
//! sits far below that) before any further arithmetic, which is then exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use rust_decimal::Decimal;

use super::args::Grouping;
use super::logs::UnknownCount;
use super::query::{Points, Scope, SeriesKey, published_under};
use super::window::{MONTH, Window, day_label, hour_label};
use chatbot_service::telemetry::catalog::{
    COST_USD, DIM_SERVICE, ERRORS, INPUT_TOKENS, LATENCY, OUTPUT_TOKENS,
};

/// Decimal places kept for USD amounts.
pub const USD_DP: u32 = 10;
/// Label of the row for requests counted for the service but under no listed value of
/// `dimension`: `(no model)`.
pub fn ungrouped_label(dimension: &str) -> String {
    format!("(no {})", dimension.to_lowercase())
}

/// The summed metrics of one row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// `Latency`'s sample count: one value per request.
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Decimal,
    /// Requests whose model had no price (their cost is missing from `cost_usd`), counted from
    /// the summary lines (`costUnknown`) when `--log-group` is given; `None` = not counted.
    pub cost_unknown: Option<u64>,
}

impl Figures {
    fn add(&mut self, metric: &str, value: f64) {
        let count = || value.round().max(0.0) as u64;
        match metric {
            LATENCY => self.requests += count(),
            ERRORS => self.errors += count(),
            INPUT_TOKENS => self.input_tokens += count(),
            OUTPUT_TOKENS => self.output_tokens += count(),
            COST_USD => self.cost_usd += usd_from_f64(value),
            _ => {}
        }
    }

    fn sum(&mut self, other: &Figures) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
        self.cost_unknown = match (self.cost_unknown, other.cost_unknown) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    /// `self − other`, never below zero.
    fn minus(&self, other: &Figures) -> Figures {
        Figures {
            requests: self.requests.saturating_sub(other.requests),
            errors: self.errors.saturating_sub(other.errors),
            input_tokens: self.input_tokens.saturating_sub(other.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(other.output_tokens),
            cost_usd: (self.cost_usd - other.cost_usd).max(Decimal::ZERO),
            cost_unknown: self
                .cost_unknown
                .map(|n| n.saturating_sub(other.cost_unknown.unwrap_or(0))),
        }
    }

    fn is_empty(&self) -> bool {
        Figures {
            cost_unknown: None,
            ..*self
        } == Figures::default()
            && self.cost_unknown.unwrap_or(0) == 0
    }

    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A double from CloudWatch as a decimal USD amount (see the module comment).
pub fn usd_from_f64(value: f64) -> Decimal {
    Decimal::from_str(&value.to_string())
        .or_else(|_| Decimal::try_from(value))
        .unwrap_or_default()
        .round_dp(USD_DP)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Model id, `(no model)`, `2025-07-20`, `2025-07-20T13:00Z` or `TOTAL`.
    pub key: String,
    /// Seconds of the window this row covers (the projection's denominator).
    pub span: i64,
    pub figures: Figures,
}

impl Row {
    /// Requests whose cost is in `cost_usd`: all but those counted as cost-unknown.
    pub fn priced_requests(&self) -> u64 {
        let f = &self.figures;
        f.requests.saturating_sub(f.cost_unknown.unwrap_or(0))
    }

    /// USD per priced request.
    pub fn cost_per_request(&self) -> Option<Decimal> {
        let n = self.priced_requests();
        (n > 0).then(|| (self.figures.cost_usd / Decimal::from(n)).round_dp(USD_DP))
    }

    /// Total USD (model + Lambda + API) per 1,000 tokens (none when no request was priced).
    pub fn cost_per_1k_tokens(&self) -> Option<Decimal> {
        let t = self.figures.tokens();
        (t > 0 && self.priced_requests() > 0).then(|| {
            (self.figures.cost_usd * Decimal::from(1000) / Decimal::from(t)).round_dp(USD_DP)
        })
    }

    /// The row's cost at the same rate for 30 days: cost × 30 d / span.
    pub fn projection_30d(&self) -> Option<Decimal> {
        (self.span > 0).then(|| {
            (self.figures.cost_usd * Decimal::from(MONTH) / Decimal::from(self.span))
                .round_dp(USD_DP)
        })
    }
}

/// The rows and the totals row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    pub rows: Vec<Row>,
    pub total: Row,
    /// Whether the service's request count (`Latency` under `[Service]`) has any data point.
    pub has_data: bool,
}

/// The points a total is made of, as (time, metric, value): the `[Service]` series for what the
/// catalog publishes there (requests, errors, cost), the pairs' for the rest (tokens).
fn total_points(
    series: &HashMap<SeriesKey, Points>,
) -> impl Iterator<Item = (i64, &'static str, f64)> + '_ {
    series
        .iter()
        .filter(|(key, _)| {
            let service_has_it = published_under(key.metric, &[DIM_SERVICE]);
            match key.scope {
                Scope::Service => service_has_it,
                Scope::Pair(_) => !service_has_it,
                Scope::Bedrock(_) => false,
            }
        })
        .flat_map(|(key, points)| points.iter().map(move |(t, v)| (*t, key.metric, *v)))
}

/// Whether the service counted any request in the window: a data point of `Latency` under
/// `[Service]` (what "no data" is judged on).
pub fn has_requests(series: &HashMap<SeriesKey, Points>) -> bool {
    series
        .iter()
        .any(|(k, p)| k.scope == Scope::Service && k.metric == LATENCY && !p.is_empty())
}

/// Builds the rows from the series `query::fetch` returned. `unknown`: the cost-unknown
/// counts from the summary lines, when they were read.
pub fn build(
    grouping: Grouping,
    window: &Window,
    series: &HashMap<SeriesKey, Points>,
    unknown: Option<&[UnknownCount]>,
) -> Rows {
    let has_data = has_requests(series);
    let mut total = Figures::default();
    for (_, metric, v) in total_points(series) {
        total.add(metric, v);
    }
    total.cost_unknown = unknown.map(|u| u.iter().map(|c| c.requests).sum());
    let rows = match grouping {
        Grouping::Dimension(dim) => by_group(dim, window, series, &total, unknown),
        Grouping::Time(size) => by_time(window, size, series, unknown),
    };
    Rows {
        rows,
        total: Row {
            key: "TOTAL".into(),
            span: window.seconds(),
            figures: total,
        },
        has_data,
    }
}

/// One row per value of `dimension` (the pairs' series summed client-side), most expensive
/// first, then the remainder of the service total.
fn by_group(
    dimension: &str,
    window: &Window,
    series: &HashMap<SeriesKey, Points>,
    total: &Figures,
    unknown: Option<&[UnknownCount]>,
) -> Vec<Row> {
    let mut groups: BTreeMap<&str, Figures> = BTreeMap::new();
    for (key, points) in series {
        if let Scope::Pair(p) = &key.scope {
            let f = groups.entry(p.value(dimension)).or_default();
            for (_, v) in points {
                f.add(key.metric, *v);
            }
        }
    }
    let listed: BTreeSet<String> = groups.keys().map(|g| (*g).to_owned()).collect();
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(|(g, mut f)| {
            f.cost_unknown = unknown.map(|u| {
                u.iter()
                    .filter(|c| c.value(dimension) == Some(g))
                    .map(|c| c.requests)
                    .sum()
            });
            Row {
                key: g.to_owned(),
                span: window.seconds(),
                figures: f,
            }
        })
        .filter(|r| !r.figures.is_empty())
        .collect();
    rows.sort_by(|a, b| {
        b.figures
            .cost_usd
            .cmp(&a.figures.cost_usd)
            .then_with(|| b.figures.requests.cmp(&a.figures.requests))
            .then_with(|| a.key.cmp(&b.key))
    });
    let mut grouped = Figures::default();
    for r in &rows {
        grouped.sum(&r.figures);
    }
    let mut rest = total.minus(&grouped);
    // Cost-unknown lines whose model (variant) has no metrics land here too.
    rest.cost_unknown = unknown.map(|u| {
        u.iter()
            .filter(|c| c.value(dimension).is_none_or(|v| !listed.contains(v)))
            .map(|c| c.requests)
            .sum()
    });
    if rest.requests > 0 || rest.cost_usd > Decimal::ZERO || rest.cost_unknown.unwrap_or(0) > 0 {
        rows.push(Row {
            key: ungrouped_label(dimension),
            span: window.seconds(),
            figures: rest,
        });
    }
    rows
}

/// One row per UTC hour or day bucket in the window (empty buckets included), oldest first.
fn by_time(
    window: &Window,
    size: i64,
    series: &HashMap<SeriesKey, Points>,
    unknown: Option<&[UnknownCount]>,
) -> Vec<Row> {
    let mut buckets: BTreeMap<i64, Figures> = window
        .buckets(size)
        .into_iter()
        .map(|b| {
            let f = Figures {
                cost_unknown: unknown.map(|_| 0),
                ..Figures::default()
            };
            (b, f)
        })
        .collect();
    let bucket = |t: i64| t.div_euclid(size) * size;
    for (t, metric, v) in total_points(series) {
        buckets.entry(bucket(t)).or_default().add(metric, v);
    }
    for c in unknown.unwrap_or_default() {
        if let Some(t) = c.time {
            let f = buckets.entry(bucket(t)).or_default();
            f.cost_unknown = Some(f.cost_unknown.unwrap_or(0) + c.requests);
        }
    }
    buckets
        .into_iter()
        .map(|(start, figures)| Row {
            key: if size >= super::window::DAY {
                day_label(start)
            } else {
                hour_label(start)
            },
            span: window.overlap(start, size),
            figures,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::query::Pair;
    use crate::report::window::{DAY, HOUR};

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn service(metric: &'static str) -> SeriesKey {
        SeriesKey {
            scope: Scope::Service,
            metric,
        }
    }

    fn pair(model: &str, variant: &str, metric: &'static str) -> SeriesKey {
        SeriesKey {
            scope: Scope::Pair(Pair {
                model: model.into(),
                variant: variant.into(),
            }),
            metric,
        }
    }

    #[test]
    fn float_noise_is_rounded_away() {
        assert_eq!(usd_from_f64(0.1 + 0.2), d("0.3"));
        assert_eq!(usd_from_f64(0.000056 * 3.0), d("0.000168"));
        assert_eq!(usd_from_f64(1e-7), d("0.0000001"));
    }

    #[test]
    fn derived_figures() {
        let row = Row {
            key: "m".into(),
            span: DAY,
            figures: Figures {
                requests: 4,
                input_tokens: 3_000,
                output_tokens: 1_000,
                cost_usd: d("0.0002"),
                ..Figures::default()
            },
        };
        assert_eq!(row.cost_per_request(), Some(d("0.00005")));
        // 0.0002 × 1000 / 4000
        assert_eq!(row.cost_per_1k_tokens(), Some(d("0.00005")));
        // one day's cost × 30
        assert_eq!(row.projection_30d(), Some(d("0.006")));
        let empty = Row {
            figures: Figures::default(),
            ..row.clone()
        };
        assert_eq!(empty.cost_per_request(), None);
        assert_eq!(empty.cost_per_1k_tokens(), None);
        // Requests with an unknown cost are not in the per-request figures.
        let half = Row {
            figures: Figures {
                cost_unknown: Some(2),
                ..row.figures
            },
            ..row.clone()
        };
        assert_eq!(half.cost_per_request(), Some(d("0.0001")));
        let none = Row {
            figures: Figures {
                cost_unknown: Some(4),
                cost_usd: Decimal::ZERO,
                ..row.figures
            },
            ..row
        };
        assert_eq!(none.cost_per_request(), None);
        assert_eq!(none.cost_per_1k_tokens(), None);
    }

    fn sample() -> HashMap<SeriesKey, Points> {
        let mut s: HashMap<SeriesKey, Points> = HashMap::new();
        s.insert(service(LATENCY), vec![(0, 5.0), (60, 2.0)]);
        s.insert(service(COST_USD), vec![(0, 0.0031)]);
        // "cheap" answered under two variants: its row sums both pairs.
        s.insert(pair("cheap", "a", LATENCY), vec![(0, 2.0)]);
        s.insert(pair("cheap", "a", COST_USD), vec![(0, 0.00006)]);
        s.insert(pair("cheap", "a", INPUT_TOKENS), vec![(0, 100.0)]);
        s.insert(pair("cheap", "b", LATENCY), vec![(0, 1.0)]);
        s.insert(pair("cheap", "b", COST_USD), vec![(0, 0.00004)]);
        s.insert(pair("cheap", "b", INPUT_TOKENS), vec![(60, 50.0)]);
        s.insert(pair("dear", "b", LATENCY), vec![(0, 2.0)]);
        s.insert(pair("dear", "b", COST_USD), vec![(0, 0.003)]);
        s.insert(pair("dear", "b", OUTPUT_TOKENS), vec![(0, 7.0)]);
        s
    }

    #[test]
    fn model_rows_sum_their_pairs_sorted_by_cost_and_remainder_row() {
        let w = Window {
            start: 0,
            end: 2 * HOUR,
            period: 60,
        };
        let r = build(Grouping::Dimension("Model"), &w, &sample(), None);
        let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["dear", "cheap", "(no model)"]);
        assert_eq!(r.rows[1].figures.requests, 3);
        assert_eq!(r.rows[1].figures.input_tokens, 150);
        assert_eq!(r.rows[1].figures.cost_usd, d("0.0001"));
        assert_eq!(r.rows[2].figures.requests, 2);
        assert_eq!(r.rows[2].figures.cost_usd, Decimal::ZERO);
        assert_eq!(r.rows[2].figures.cost_unknown, None);
        // Totals: requests and cost from [Service], tokens summed over the pairs.
        assert_eq!(r.total.figures.requests, 7);
        assert_eq!(r.total.figures.cost_usd, d("0.0031"));
        assert_eq!(r.total.figures.input_tokens, 150);
        assert_eq!(r.total.figures.output_tokens, 7);
        assert!(r.has_data);

        let by_variant = build(Grouping::Dimension("Variant"), &w, &sample(), None);
        let keys: Vec<(&str, u64)> = by_variant
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.figures.requests))
            .collect();
        assert_eq!(keys, [("b", 3), ("a", 2), ("(no variant)", 2)]);
    }

    #[test]
    fn cost_unknown_counts_land_in_their_rows() {
        let w = Window {
            start: 0,
            end: 2 * HOUR,
            period: 60,
        };
        let count = |model: Option<&str>, time, requests| UnknownCount {
            time,
            model: model.map(str::to_owned),
            variant: Some("a".into()),
            requests,
        };
        let unknown = [
            count(Some("cheap"), Some(0), 2),
            count(Some("unlisted"), Some(HOUR), 1),
            count(None, Some(HOUR + 60), 1),
        ];
        let r = build(Grouping::Dimension("Model"), &w, &sample(), Some(&unknown));
        let got: Vec<(&str, Option<u64>)> = r
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.figures.cost_unknown))
            .collect();
        assert_eq!(
            got,
            [
                ("dear", Some(0)),
                ("cheap", Some(2)),
                ("(no model)", Some(2))
            ]
        );
        assert_eq!(r.total.figures.cost_unknown, Some(4));
        let hours = build(Grouping::Time(HOUR), &w, &sample(), Some(&unknown));
        let got: Vec<Option<u64>> = hours.rows.iter().map(|r| r.figures.cost_unknown).collect();
        assert_eq!(got, [Some(2), Some(2)]);
    }

    #[test]
    fn no_requests_under_service_is_no_data() {
        let w = Window {
            start: 0,
            end: HOUR,
            period: 60,
        };
        let mut s = sample();
        s.insert(service(LATENCY), vec![]);
        assert!(!build(Grouping::Time(HOUR), &w, &s, None).has_data);
    }

    #[test]
    fn time_rows_cover_every_bucket() {
        let w = Window {
            start: 1_740_859_200, // 2025-03-01T20:00Z
            end: 1_740_859_200 + 8 * HOUR,
            period: 3_600,
        };
        let mut s: HashMap<SeriesKey, Points> = HashMap::new();
        s.insert(
            service(LATENCY),
            vec![(w.start, 1.0), (w.start + 5 * HOUR, 2.0)],
        );
        s.insert(
            pair("m", "v", OUTPUT_TOKENS),
            vec![(w.start + 5 * HOUR, 40.0)],
        );
        let days = build(Grouping::Time(DAY), &w, &s, None);
        assert_eq!(days.rows.len(), 2);
        assert_eq!(days.rows[0].key, "2025-03-01");
        assert_eq!(days.rows[0].figures.requests, 1);
        assert_eq!(days.rows[1].figures.requests, 2);
        assert_eq!(days.rows[1].figures.output_tokens, 40);
        assert_eq!(days.rows[1].span, 4 * HOUR);
        let hours = build(Grouping::Time(HOUR), &w, &s, None);
        assert_eq!(hours.rows.len(), 8);
        assert_eq!(hours.rows[5].key, "2025-03-02T01:00Z");
        assert_eq!(hours.rows[5].figures.requests, 2);
        assert_eq!(hours.total.figures.requests, 3);
        assert_eq!(hours.total.figures.output_tokens, 40);
    }
}
