//! A `metrics` recorder that writes one CloudWatch EMF document per request.
//!
//! Why our own recorder rather than `metrics_cloudwatch_embedded`: that crate aggregates into one
//! process-wide collector flushed per Lambda invocation. The local server runs requests
//! concurrently and the contract is *one document per request* on both hosts, with per-metric
//! dimension sets (`Errors` also by `ErrorCode`). Scoping the collection to the request (a
//! task-local set by the telemetry layer) gives that with ~150 lines and no global lock.
//!
//! Code records with the ordinary facade (`metrics::counter!(…)`) while a request is current; the
//! values land in that request's [`RequestMetrics`]; [`document`] renders them when it ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::{Map, Value, json};

use crate::telemetry::catalog;
use crate::telemetry::context::RequestCtx;

/// EMF limits (CloudWatch EMF specification).
const MAX_METRICS_PER_DIRECTIVE: usize = 100;
const MAX_VALUES_PER_METRIC: usize = 100;
const MAX_DIMENSION_VALUE_CHARS: usize = 1024;

/// The values one request recorded, by metric name. (Labels on a key are ignored: the catalog
/// fixes every metric's dimension sets.)
#[derive(Default)]
pub struct RequestMetrics {
    inner: Mutex<BTreeMap<&'static str, Sample>>,
}

#[derive(Debug, Clone, Default)]
struct Sample {
    values: Vec<f64>,
}

impl RequestMetrics {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<&'static str, Sample>) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn add(&self, key: &Key, value: f64, accumulate: bool) {
        // Only catalogued names are emitted: one source of truth for dashboards and alarms.
        let Some(def) = catalog::find(key.name()) else {
            debug_assert!(false, "metric {} is not in the catalog", key.name());
            return;
        };
        self.with(|m| {
            let s = m.entry(def.name).or_default();
            if accumulate && let Some(last) = s.values.last_mut() {
                *last += value;
            } else if s.values.len() < MAX_VALUES_PER_METRIC {
                s.values.push(value);
            }
        });
    }
}

struct Handle {
    key: Key,
}

impl Handle {
    fn record(&self, value: f64, accumulate: bool) {
        RequestCtx::with_current(|ctx| ctx.metrics.add(&self.key, value, accumulate));
    }
}

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.record(value as f64, true);
    }
    fn absolute(&self, value: u64) {
        self.record(value as f64, false);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.record(value, true);
    }
    fn decrement(&self, value: f64) {
        self.record(-value, true);
    }
    fn set(&self, value: f64) {
        self.record(value, false);
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, value: f64) {
        Handle::record(self, value, false);
    }
}

/// The process-wide recorder; it routes each measurement to the current request.
pub struct EmfRecorder;

impl Recorder for EmfRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle { key: key.clone() }))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Handle { key: key.clone() }))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle { key: key.clone() }))
    }
}

/// Install the recorder once per process (idempotent; a recorder someone else installed wins).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = metrics::set_global_recorder(EmfRecorder);
    });
}

/// Whole numbers as JSON integers (counts read better as `1` than `1.0`).
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn dimension_value(v: &str) -> String {
    v.chars().take(MAX_DIMENSION_VALUE_CHARS).collect()
}

/// Render the request's EMF document: each metric under those of its dimension sets whose values
/// are known, and free properties for Logs Insights.
pub fn document(
    ctx: &RequestCtx,
    dimensions: &[(&'static str, Option<&str>)],
    properties: Map<String, Value>,
) -> Value {
    let samples = ctx.metrics.with(|m| m.clone());
    let namespace = ctx.telemetry.namespace.as_str();
    let mut root = Map::new();
    let known: Vec<&str> = dimensions
        .iter()
        .filter_map(|(k, v)| {
            let v = (*v)?;
            root.insert((*k).to_owned(), Value::String(dimension_value(v)));
            Some(*k)
        })
        .collect();
    // The sets of a metric that this request can fill (every dimension known).
    let usable = |sets: &[&'static [&'static str]]| -> Vec<Vec<&'static str>> {
        sets.iter()
            .filter(|set| set.iter().all(|d| known.contains(d)))
            .map(|set| set.to_vec())
            .collect()
    };

    // Metric definitions grouped by the dimension sets they are published under: one directive
    // per group.
    let mut groups: Vec<(Vec<Vec<&str>>, Vec<Value>)> = Vec::new();
    for (name, sample) in &samples {
        let def = catalog::find(name).expect("only catalogued names are collected");
        let value = match sample.values.as_slice() {
            [one] => number(*one),
            many => Value::Array(many.iter().copied().map(number).collect()),
        };
        root.insert((*name).to_owned(), value);
        let definition = json!({"Name": name, "Unit": def.unit.as_str()});
        let sets = usable(def.dimensions);
        match groups.iter_mut().find(|(s, _)| *s == sets) {
            Some((_, defs)) => defs.push(definition),
            None => groups.push((sets, vec![definition])),
        }
    }
    let directives: Vec<Value> = groups
        .iter()
        .flat_map(|(sets, defs)| {
            defs.chunks(MAX_METRICS_PER_DIRECTIVE).map(
                move |chunk| json!({"Namespace": namespace, "Dimensions": sets, "Metrics": chunk}),
            )
        })
        .collect();
    for (k, v) in properties {
        root.entry(k).or_insert(v);
    }
    let timestamp = ctx
        .started_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}),
    );
    doc.extend(root);
    Value::Object(doc)
}
