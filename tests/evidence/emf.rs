//! Checks an EMF document against every rule of the CloudWatch EMF specification that
//! reference.md lists, plus this service's cardinality rule (no per-request dimension).

use serde_json::Value;

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Dimensions this service may use; anything else (a request id…) would explode cardinality.
const ALLOWED_DIMENSIONS: &[&str] = &["Service", "Model", "Variant"];

pub fn validate(doc: &Value) -> Result<(), String> {
    let size = doc.to_string().len();
    if size > 256 * 1024 {
        return Err(format!("document is {size} bytes, over 256 KB"));
    }
    let root = doc.as_object().ok_or("document is not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    let ts = aws.get("Timestamp").ok_or("no Timestamp")?;
    let ts = ts
        .as_u64()
        .ok_or(format!("Timestamp {ts} is not an integer"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    if ts.abs_diff(now) > 3_600_000 {
        return Err(format!(
            "Timestamp {ts} is not epoch milliseconds near now ({now})"
        ));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("no CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("CloudWatchMetrics is empty".into());
    }
    for d in directives {
        let ns = d["Namespace"]
            .as_str()
            .ok_or("directive without Namespace")?;
        if ns.is_empty() || ns.len() > 255 {
            return Err(format!("bad Namespace {ns:?}"));
        }
        let sets = d["Dimensions"]
            .as_array()
            .ok_or("directive without Dimensions array")?;
        for set in sets {
            let keys = set.as_array().ok_or("a dimension set is not an array")?;
            if keys.is_empty() || keys.len() > 30 {
                return Err(format!("dimension set of {} keys", keys.len()));
            }
            for k in keys {
                let k = k.as_str().ok_or("dimension key not a string")?;
                if !ALLOWED_DIMENSIONS.contains(&k) {
                    return Err(format!(
                        "dimension {k} is not one of {ALLOWED_DIMENSIONS:?}"
                    ));
                }
                let v = root
                    .get(k)
                    .ok_or(format!("dimension {k} is not a root member"))?;
                let v = v
                    .as_str()
                    .ok_or(format!("dimension {k} value is not a string"))?;
                if v.is_empty() || v.chars().count() > 1024 {
                    return Err(format!("dimension {k} value has bad length"));
                }
            }
        }
        let metrics = d["Metrics"]
            .as_array()
            .ok_or("directive without Metrics array")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err(format!(
                "{} metric definitions in one directive",
                metrics.len()
            ));
        }
        for m in metrics {
            let name = m["Name"].as_str().ok_or("metric without Name")?;
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("Unit not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("{name}: unit {unit} is not a CloudWatch unit"));
                }
            }
            if let Some(r) = m.get("StorageResolution")
                && r != 1
                && r != 60
            {
                return Err(format!("{name}: StorageResolution {r}"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if !values.is_empty()
                        && values.len() <= 100
                        && values.iter().all(Value::is_number) => {}
                Some(other) => {
                    return Err(format!(
                        "{name}: value {other} is not a number or ≤100 numbers"
                    ));
                }
                None => return Err(format!("metric {name} is not a root member")),
            }
        }
    }
    Ok(())
}

/// The set of metric names a document defines, across directives.
pub fn metric_names(doc: &Value) -> Vec<String> {
    let mut names: Vec<String> = doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["Metrics"].as_array().into_iter().flatten())
        .filter_map(|m| m["Name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The dimension sets under which `metric` is published.
pub fn dimension_sets(doc: &Value, metric: &str) -> Vec<Vec<String>> {
    let mut sets = Vec::new();
    for d in doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let defines = d["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["Name"] == metric);
        if defines {
            for set in d["Dimensions"].as_array().into_iter().flatten() {
                sets.push(
                    set.as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k.as_str().unwrap().to_owned())
                        .collect(),
                );
            }
        }
    }
    sets
}

/// The validator itself must fail on each broken rule (called from one test binary).
pub fn self_check() {
    let good = serde_json::json!({
        "_aws": {"Timestamp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64,
                 "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["Service"]], "Metrics": [{"Name": "Requests", "Unit": "Count"}]}]},
        "Service": "s", "Requests": 1
    });
    validate(&good).unwrap();
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut d = good.clone();
        f(&mut d);
        validate(&d).unwrap_err()
    };
    mutate(&|d| d["_aws"]["Timestamp"] = serde_json::json!(1.5));
    mutate(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Msec".into());
    mutate(&|d| {
        d.as_object_mut().unwrap().remove("Requests");
    });
    mutate(&|d| {
        d.as_object_mut().unwrap().remove("Service");
    });
    mutate(&|d| {
        d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = serde_json::json!([["requestId"]])
    });
    mutate(&|d| d["Requests"] = "1".into());
    mutate(&|d| d["Requests"] = serde_json::json!(vec![1; 101]));
}
