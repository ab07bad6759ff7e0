//! A loopback stand-in for the X-Ray daemon (a UDP socket) and checks of what arrives: the
//! daemon header, each segment document's required fields and formats, and the shape of a
//! whole trace (parents exist, children nest in time, annotation keys valid).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Daemon {
    socket: UdpSocket,
}

impl Daemon {
    pub fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Daemon { socket }
    }

    pub fn address(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    /// Everything received until `quiet` passes with nothing new, each datagram validated.
    pub fn collect(&self, quiet: Duration) -> Vec<Value> {
        let mut docs = Vec::new();
        let mut buf = vec![0u8; 70_000];
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            if let Ok(n) = self.socket.recv(&mut buf) {
                docs.push(
                    parse_datagram(&buf[..n]).unwrap_or_else(|e| panic!("bad datagram: {e}")),
                );
                last = Instant::now();
            }
        }
        docs
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub fn is_trace_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3 && parts[0] == "1" && is_hex(parts[1], 8) && is_hex(parts[2], 24)
}

/// `{"format": "json", "version": 1}\n{segment}` → the segment, checked.
pub fn parse_datagram(raw: &[u8]) -> Result<Value, String> {
    if raw.len() > 64 * 1024 {
        return Err(format!("{} bytes, over 64 kB", raw.len()));
    }
    let text = std::str::from_utf8(raw).map_err(|e| e.to_string())?;
    let (header, body) = text.split_once('\n').ok_or("no header line")?;
    let header: Value = serde_json::from_str(header).map_err(|e| format!("header: {e}"))?;
    if header != serde_json::json!({"format": "json", "version": 1}) {
        return Err(format!("header is {header}"));
    }
    let doc: Value = serde_json::from_str(body).map_err(|e| format!("document: {e}"))?;
    check_document(&doc, true)?;
    Ok(doc)
}

fn check_document(doc: &Value, top: bool) -> Result<(), String> {
    let name = doc["name"].as_str().ok_or(format!("no name: {doc}"))?;
    if name.is_empty() || name.len() > 200 {
        return Err(format!("bad name {name:?}"));
    }
    let id = doc["id"].as_str().ok_or("no id")?;
    if !is_hex(id, 16) {
        return Err(format!("id {id} is not 16 hex digits"));
    }
    let start = doc["start_time"].as_f64().ok_or("no numeric start_time")?;
    match (doc["end_time"].as_f64(), doc.get("in_progress")) {
        (Some(end), _) if end >= start => {}
        (None, Some(Value::Bool(true))) => {}
        _ => {
            return Err(format!(
                "{name}: no end_time >= start_time and not in_progress"
            ));
        }
    }
    if top {
        let trace = doc["trace_id"].as_str().ok_or("no trace_id")?;
        if !is_trace_id(trace) {
            return Err(format!("trace_id {trace} malformed"));
        }
    }
    if doc["type"] == "subsegment" && !doc["parent_id"].as_str().is_some_and(|p| is_hex(p, 16)) {
        return Err(format!("subsegment {name} without a valid parent_id"));
    }
    if let Some(p) = doc.get("parent_id")
        && !p.as_str().is_some_and(|p| is_hex(p, 16))
    {
        return Err(format!("{name}: parent_id {p} malformed"));
    }
    if let Some(ann) = doc.get("annotations") {
        for (k, v) in ann.as_object().ok_or("annotations not an object")? {
            let key_ok = !k.is_empty()
                && k.len() <= 500
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !key_ok {
                return Err(format!("annotation key {k:?} invalid"));
            }
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                return Err(format!("annotation {k} value {v} not string/number/bool"));
            }
        }
    }
    for sub in doc["subsegments"].as_array().into_iter().flatten() {
        check_document(sub, false)?;
    }
    Ok(())
}

/// Every (sub)segment in the documents, flattened, with the trace id of its document.
pub fn flatten(docs: &[Value]) -> Vec<(String, Value)> {
    fn walk(trace: &str, parent: Option<&str>, v: &Value, out: &mut Vec<(String, Value)>) {
        let mut node = v.clone();
        if let (Some(p), None) = (parent, node.get("parent_id")) {
            node["parent_id"] = Value::String(p.to_owned());
        }
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        for sub in v["subsegments"].as_array().into_iter().flatten() {
            walk(trace, Some(&id), sub, out);
        }
        out.push((trace.to_owned(), node));
    }
    let mut out = Vec::new();
    for d in docs {
        walk(
            d["trace_id"].as_str().unwrap_or_default(),
            None,
            d,
            &mut out,
        );
    }
    out
}

/// Check one trace: its segments all carry `trace_id`, every subsegment's parent is among them,
/// and every child lies within its parent's time span.
pub fn check_trace(docs: &[Value], trace_id: &str) -> Result<Vec<Value>, String> {
    let nodes: Vec<Value> = flatten(docs)
        .into_iter()
        .filter(|(t, _)| t == trace_id)
        .map(|(_, n)| n)
        .collect();
    if nodes.is_empty() {
        return Err(format!("no segments for trace {trace_id}"));
    }
    for n in &nodes {
        if n["type"] != "subsegment" {
            continue;
        }
        let pid = n["parent_id"].as_str().unwrap();
        let parent = nodes.iter().find(|p| p["id"] == pid).ok_or(format!(
            "subsegment {} has no parent {pid} in the trace",
            n["name"]
        ))?;
        let (ps, pe) = (
            parent["start_time"].as_f64().unwrap(),
            parent["end_time"].as_f64().unwrap_or(f64::MAX),
        );
        let cs = n["start_time"].as_f64().unwrap();
        let ce = n["end_time"].as_f64().unwrap_or(cs);
        // X-Ray times are float seconds: allow a microsecond of rounding.
        if cs + 1e-6 < ps || ce > pe + 1e-6 {
            return Err(format!(
                "subsegment {} [{cs}, {ce}] outside parent [{ps}, {pe}]",
                n["name"]
            ));
        }
    }
    Ok(nodes)
}
