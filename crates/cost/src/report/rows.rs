//! From metric series to report rows: sums per row, the totals row, and the derived figures
//! (USD per request, per 1K tokens, 30-day projection).
//!
//! CloudWatch returns sums as doubles. Each is turned into a decimal through its shortest
//! round-trip form and rounded to 10 decimal places (a ten-billionth of a dollar; float noise
//! sits far below that) before any further arithmetic, which is then exact.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use rust_decimal::Decimal;

use super::args::Grouping;
use super::query::{Points, SeriesKey};
use super::window::{MONTH, Window, day_label, hour_label};
// Stand-ins until cost-report reads the new catalog (Requests = Latency sample count).
const REQUESTS: &str = "Requests";
const COST_UNKNOWN: &str = "CostUnknown";
use chatbot_service::telemetry::catalog::{COST_USD, ERRORS, INPUT_TOKENS, OUTPUT_TOKENS};

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
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Decimal,
    /// Requests whose model had no price (their cost is missing from `cost_usd`).
    pub cost_unknown: u64,
}

impl Figures {
    fn add(&mut self, metric: &str, value: f64) {
        let count = || value.round().max(0.0) as u64;
        match metric {
            REQUESTS => self.requests += count(),
            ERRORS => self.errors += count(),
            INPUT_TOKENS => self.input_tokens += count(),
            OUTPUT_TOKENS => self.output_tokens += count(),
            COST_USD => self.cost_usd += usd_from_f64(value),
            COST_UNKNOWN => self.cost_unknown += count(),
            _ => {}
        }
    }

    fn sum(&mut self, other: &Figures) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
        self.cost_unknown += other.cost_unknown;
    }

    /// `self − other`, never below zero.
    fn minus(&self, other: &Figures) -> Figures {
        Figures {
            requests: self.requests.saturating_sub(other.requests),
            errors: self.errors.saturating_sub(other.errors),
            input_tokens: self.input_tokens.saturating_sub(other.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(other.output_tokens),
            cost_usd: (self.cost_usd - other.cost_usd).max(Decimal::ZERO),
            cost_unknown: self.cost_unknown.saturating_sub(other.cost_unknown),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Figures::default()
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
    pub fn cost_per_request(&self) -> Option<Decimal> {
        let n = self.figures.requests;
        (n > 0).then(|| (self.figures.cost_usd / Decimal::from(n)).round_dp(USD_DP))
    }

    /// Total USD (model + Lambda + API) per 1,000 tokens.
    pub fn cost_per_1k_tokens(&self) -> Option<Decimal> {
        let t = self.figures.tokens();
        (t > 0).then(|| {
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
    /// Whether CloudWatch returned any data point at all.
    pub has_data: bool,
}

/// Builds the rows from the series `query::fetch` returned.
pub fn build(
    grouping: Grouping,
    window: &Window,
    groups: &[String],
    series: &HashMap<SeriesKey, Points>,
) -> Rows {
    let has_data = series.values().any(|p| !p.is_empty());
    let mut total = Figures::default();
    for (key, points) in series.iter().filter(|(k, _)| k.group.is_none()) {
        for (_, v) in points {
            total.add(key.metric, *v);
        }
    }
    let rows = match grouping {
        Grouping::Dimension(dim) => by_group(dim, window, groups, series, &total),
        Grouping::Time(size) => by_time(window, size, series),
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

/// One row per group, most expensive first, then the remainder of the service total.
fn by_group(
    dimension: &str,
    window: &Window,
    groups: &[String],
    series: &HashMap<SeriesKey, Points>,
    total: &Figures,
) -> Vec<Row> {
    let mut rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            let mut f = Figures::default();
            for (key, points) in series.iter().filter(|(k, _)| k.group.as_ref() == Some(g)) {
                for (_, v) in points {
                    f.add(key.metric, *v);
                }
            }
            Row {
                key: g.clone(),
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
    let rest = total.minus(&grouped);
    if rest.requests > 0 || rest.cost_usd > Decimal::ZERO {
        rows.push(Row {
            key: ungrouped_label(dimension),
            span: window.seconds(),
            figures: rest,
        });
    }
    rows
}

/// One row per UTC hour or day bucket in the window (empty buckets included), oldest first.
fn by_time(window: &Window, size: i64, series: &HashMap<SeriesKey, Points>) -> Vec<Row> {
    let mut buckets: BTreeMap<i64, Figures> = window
        .buckets(size)
        .into_iter()
        .map(|b| (b, Figures::default()))
        .collect();
    for (key, points) in series.iter().filter(|(k, _)| k.group.is_none()) {
        for (t, v) in points {
            let b = t.div_euclid(size) * size;
            buckets.entry(b).or_default().add(key.metric, *v);
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
    use crate::report::window::{DAY, HOUR};

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn key(group: Option<&str>, metric: &'static str) -> SeriesKey {
        SeriesKey {
            group: group.map(str::to_owned),
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
            ..row
        };
        assert_eq!(empty.cost_per_request(), None);
        assert_eq!(empty.cost_per_1k_tokens(), None);
    }

    #[test]
    fn model_rows_sorted_by_cost_and_remainder_row() {
        let w = Window {
            start: 0,
            end: 2 * HOUR,
            period: 60,
        };
        let mut s: HashMap<SeriesKey, Points> = HashMap::new();
        s.insert(key(None, REQUESTS), vec![(0, 5.0), (60, 2.0)]);
        s.insert(key(None, COST_USD), vec![(0, 0.0031)]);
        s.insert(key(Some("cheap"), REQUESTS), vec![(0, 3.0)]);
        s.insert(key(Some("cheap"), COST_USD), vec![(0, 0.0001)]);
        s.insert(key(Some("dear"), REQUESTS), vec![(0, 2.0)]);
        s.insert(key(Some("dear"), COST_USD), vec![(0, 0.003)]);
        let groups = vec!["cheap".to_owned(), "dear".to_owned(), "gone".to_owned()];
        let r = build(Grouping::Dimension("Model"), &w, &groups, &s);
        let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["dear", "cheap", "(no model)"]);
        assert_eq!(r.rows[2].figures.requests, 2);
        assert_eq!(r.rows[2].figures.cost_usd, Decimal::ZERO);
        assert_eq!(r.total.figures.requests, 7);
        assert_eq!(r.total.figures.cost_usd, d("0.0031"));
        assert!(r.has_data);
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
            key(None, REQUESTS),
            vec![(w.start, 1.0), (w.start + 5 * HOUR, 2.0)],
        );
        let days = build(Grouping::Time(DAY), &w, &[], &s);
        assert_eq!(days.rows.len(), 2);
        assert_eq!(days.rows[0].key, "2025-03-01");
        assert_eq!(days.rows[0].figures.requests, 1);
        assert_eq!(days.rows[1].figures.requests, 2);
        assert_eq!(days.rows[1].span, 4 * HOUR);
        let hours = build(Grouping::Time(HOUR), &w, &[], &s);
        assert_eq!(hours.rows.len(), 8);
        assert_eq!(hours.rows[5].key, "2025-03-02T01:00Z");
        assert_eq!(hours.rows[5].figures.requests, 2);
        assert_eq!(hours.total.figures.requests, 3);
    }
}
