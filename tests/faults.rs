//! The fault matrix: each fault the offline model injects — random throttling and 5xx, a hung
//! model, a 1 token/s trickle, an exception mid-stream, a connection reset, a malformed reply —
//! buffered and streaming, through the real local host over TCP with reqwest.
//!
//! For every request: the client gets a defined answer (success through retries, the documented
//! status, or an SSE `error` event) within the configured deadline; the request leaves exactly
//! one valid EMF document, one summary line and one trace whose flags match the status; nothing
//! panics; and once the clients are gone no model stream, connection or task is left behind.
//! The answers are tabulated in docs/reliability.md.

mod evidence;
mod service_rig;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bedrock_offline::{OfflineConfig, OfflineStats};
use chatbot_service::config::ServiceConfig;
use evidence::capture::{Evidence, evidence};
use evidence::{emf, xray};
use serde_json::Value;
use service_rig::local::LocalServer;
use service_rig::status_for_code;
use service_rig::{chat_body, sse_events};
use tokio::runtime::Handle;

/// Short test deadlines: one attempt (and the longest silence inside a stream), and the whole
/// model call (and the whole stream).
const ATTEMPT_MS: u64 = 500;
const MODEL_MS: u64 = 2_000;
/// Allowance over a deadline for scheduling and telemetry on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1_000);

fn budget() -> ServiceConfig {
    let mut c = service_rig::config();
    c.connect_timeout_ms = 500;
    c.attempt_timeout_ms = ATTEMPT_MS;
    c.model_timeout_ms = MODEL_MS;
    c.max_attempts = 3;
    c
}

fn deadline() -> Duration {
    Duration::from_millis(MODEL_MS) + SLACK
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Buffered,
    Streaming,
}

impl Mode {
    fn path(self) -> &'static str {
        match self {
            Mode::Buffered => "/api/chat",
            Mode::Streaming => "/api/chat/stream",
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Mode::Buffered => "Converse",
            Mode::Streaming => "ConverseStream",
        }
    }
}

/// What the client got, as it got it.
struct Outcome {
    label: String,
    mode: Mode,
    request_id: String,
    status: u16,
    took: Duration,
    /// The JSON body (a buffered reply, or an error sent before any stream began).
    json: Option<Value>,
    /// The SSE events of a stream that began.
    events: Vec<(String, Value)>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:?}): {} in {:?}, code {:?}",
            self.label,
            self.mode,
            self.status,
            self.took,
            self.code()
        )
    }
}

impl Outcome {
    /// The error code the client was told: `error.code` of a JSON error, or `code` of the SSE
    /// `error` event.
    fn code(&self) -> Option<String> {
        let from_json = self.json.as_ref().and_then(|j| j["error"]["code"].as_str());
        let from_event = self
            .events
            .iter()
            .find(|(e, _)| e == "error")
            .and_then(|(_, d)| d["code"].as_str());
        from_json.or(from_event).map(str::to_owned)
    }

    /// The status the request amounts to: an `error` event after a streamed 200 counts as its
    /// code's status (what the summary line, EMF and trace must say).
    fn effective(&self) -> u16 {
        match (self.status, self.code()) {
            (200, Some(code)) => status_for_code(&code),
            (s, _) => s,
        }
    }

    fn last_event(&self) -> Option<&str> {
        self.events.last().map(|(e, _)| e.as_str())
    }
}

/// What the client must get.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// 200: the reply, or a stream ending in `done`.
    Reply,
    /// A JSON error with this status and code (streams: before any event was sent).
    Error(u16, &'static str),
    /// A stream that began (200, `meta`, at least one `delta`) and ended in an `error` event.
    ErrorEvent(&'static str),
}

fn assert_answer(o: &Outcome, expected: Answer) {
    match expected {
        Answer::Reply => {
            assert_eq!(o.status, 200, "{o}");
            match o.mode {
                Mode::Buffered => {
                    let j = o.json.as_ref().expect("JSON reply");
                    assert!(j["reply"].as_str().is_some_and(|r| !r.is_empty()), "{o}");
                    assert_eq!(j["requestId"], o.request_id.as_str());
                }
                Mode::Streaming => assert_eq!(o.last_event(), Some("done"), "{o}"),
            }
        }
        Answer::Error(status, code) => {
            assert_eq!(o.status, status, "{o}");
            let j = o
                .json
                .as_ref()
                .unwrap_or_else(|| panic!("{o}: not a JSON error"));
            assert_eq!(j["error"]["code"], code, "{o}");
            assert_eq!(j["error"]["requestId"], o.request_id.as_str(), "{o}");
            assert!(
                j["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
        Answer::ErrorEvent(code) => {
            assert_eq!(o.status, 200, "{o}");
            let names: Vec<&str> = o.events.iter().map(|(e, _)| e.as_str()).collect();
            assert_eq!(names.first(), Some(&"meta"), "{o}: {names:?}");
            assert!(
                names.contains(&"delta"),
                "{o}: the stream had begun: {names:?}"
            );
            assert!(!names.contains(&"done"), "{o}: {names:?}");
            let (last, data) = o.events.last().unwrap();
            assert_eq!(last, "error", "{o}: {names:?}");
            assert_eq!(data["code"], code, "{o}");
            assert_eq!(data["requestId"], o.request_id.as_str(), "{o}");
        }
    }
}

/// One service on the offline model, served by the real local host, and a client for it.
struct Rig {
    svc: service_rig::TestService,
    server: LocalServer,
    http: reqwest::Client,
    stats: OfflineStats,
}

/// What is left of a rig once it is shut down: its EMF documents.
struct Stopped {
    emf: Arc<Mutex<Vec<String>>>,
}

impl Rig {
    async fn start(config: ServiceConfig, offline: OfflineConfig) -> Rig {
        evidence();
        let svc = service_rig::service(config, offline).await;
        let stats = svc.offline.as_ref().unwrap().stats();
        let server = LocalServer::start(svc.router.clone()).await;
        Rig {
            svc,
            server,
            http: reqwest::Client::new(),
            stats,
        }
    }

    async fn send(&self, label: &str, mode: Mode, text: &str) -> Outcome {
        let t = Instant::now();
        let res = self
            .http
            .post(self.server.url(mode.path()))
            .header("content-type", "application/json")
            .body(chat_body(text))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: no HTTP answer: {e}"));
        let status = res.status().as_u16();
        let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let sse = res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream");
        let body = res
            .text()
            .await
            .unwrap_or_else(|e| panic!("{label}: body cut off: {e}"));
        let took = t.elapsed();
        let (json, events) = if sse {
            (None, sse_events(&body))
        } else {
            let json = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{label}: not JSON ({e}): {body}"));
            (Some(json), Vec::new())
        };
        Outcome {
            label: label.to_owned(),
            mode,
            request_id,
            status,
            took,
            json,
            events,
        }
    }

    /// The clients are done: every model stream must be closed, and the server must stop at
    /// once (it waits for open connections, so a connection held by a stuck request would
    /// show here); then the offline model stops too.
    async fn shut_down(self) -> Stopped {
        wait_until("model streams closed", || self.stats.active_streams() == 0).await;
        drop(self.http);
        let took = self
            .server
            .stop(Duration::from_secs(3))
            .await
            .expect("a connection was still open 3 s after the server was told to stop");
        assert!(took < Duration::from_secs(2), "server stop took {took:?}");
        let mut svc = self.svc;
        if let Some(offline) = svc.offline.take() {
            offline.shutdown().await;
        }
        Stopped { emf: svc.emf }
    }
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn alive_tasks() -> usize {
    Handle::current().metrics().num_alive_tasks()
}

/// After every rig of a test is shut down and dropped, the runtime is back to the tasks it had
/// before: no connection, model call or stream pump outlived its request.
async fn assert_no_leaked_tasks(baseline: usize) {
    let t = Instant::now();
    while alive_tasks() > baseline && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(alive_tasks(), baseline, "tasks left behind");
}

fn flags(node: &Value) -> (bool, bool, bool) {
    let on = |k: &str| node[k] == true;
    (on("error"), on("throttle"), on("fault"))
}

/// X-Ray's flags for a status: error for 4xx (429 included), throttle for 429, fault for 5xx.
fn flags_for(status: u16) -> (bool, bool, bool) {
    ((400..500).contains(&status), status == 429, status >= 500)
}

/// Exactly one valid EMF document, one summary line and one trace for the request, all saying
/// what the client was told. Returns the EMF document.
async fn check_evidence(ev: &Evidence, docs: &[Value], o: &Outcome) -> Value {
    let effective = o.effective();
    let code = o.code();
    let failed = code.is_some();

    let mine: Vec<&Value> = docs
        .iter()
        .filter(|d| d["requestId"] == o.request_id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{o}: EMF documents {mine:?}");
    let doc = mine[0].clone();
    emf::validate(&doc).unwrap_or_else(|e| panic!("{o}: {e}: {doc}"));
    assert_eq!(doc["statusCode"], effective, "{o}: {doc}");
    assert_eq!(doc["errorCode"].as_str(), code.as_deref(), "{o}: {doc}");
    assert!(doc["Latency"].is_number(), "{o}: {doc}");
    assert_eq!(doc["Errors"], u64::from(failed), "{o}: {doc}");
    assert!(doc.get("clientAborted").is_none(), "{o}: {doc}");

    let summaries = ev.summaries(&o.request_id);
    assert_eq!(summaries.len(), 1, "{o}: summary lines {summaries:?}");
    let s = &summaries[0];
    assert_eq!(s["status"], o.status, "{o}: {s}");
    assert_eq!(s["effectiveStatus"], effective, "{o}: {s}");
    assert_eq!(s["errorCode"].as_str(), code.as_deref(), "{o}: {s}");
    assert_eq!(
        s["level"],
        if failed { "ERROR" } else { "INFO" },
        "{o}: {s}"
    );
    assert_eq!(s["streaming"], o.mode == Mode::Streaming, "{o}: {s}");
    assert_eq!(s["clientAborted"], false, "{o}: {s}");
    assert_eq!(s["throttles"], doc["Throttles"], "{o}: {s}");
    assert_eq!(s["retries"], doc["retries"], "{o}: {s}");
    if failed {
        assert!(s["modelError"].as_str().is_some(), "{o}: {s}");
    }

    let trace_id = s["xrayTraceId"].as_str().expect("traced: xrayTraceId");
    assert!(xray::is_trace_id(trace_id), "{trace_id}");
    assert_eq!(doc["xrayTraceId"], trace_id, "{o}");
    let nodes = ev.trace(trace_id).await;
    let roots: Vec<&Value> = nodes
        .iter()
        .filter(|n| n.get("parent_id").is_none())
        .collect();
    assert_eq!(roots.len(), 1, "{o}: one request segment: {nodes:?}");
    let segment = roots[0];
    assert_eq!(segment["annotations"]["request_id"], o.request_id.as_str());
    assert_eq!(
        segment["http"]["response"]["status"], effective,
        "{o}: {segment}"
    );
    assert_eq!(flags(segment), flags_for(effective), "{o}: {segment}");
    // An estimated cost is flagged on the trace as on the EMF document.
    assert_eq!(
        segment["metadata"]["cost.estimated"] == true,
        doc["costEstimated"] == true,
        "{o}: {segment}"
    );
    assert_eq!(
        segment["annotations"]["error_code"].as_str(),
        code.as_deref(),
        "{o}: {segment}"
    );
    let calls: Vec<&Value> = nodes.iter().filter(|n| n["namespace"] == "aws").collect();
    assert_eq!(
        calls.len(),
        1,
        "{o}: one Bedrock call (retries are inside it): {nodes:?}"
    );
    let call = calls[0];
    assert_eq!(call["aws"]["operation"], o.mode.operation(), "{o}");
    assert_eq!(call["metadata"]["retries"], s["retries"], "{o}: {call}");
    let (e, t, f) = flags(call);
    assert_eq!(e || t || f, failed, "{o}: model call flags: {call}");
    doc
}

fn emf_docs(stopped: &Stopped) -> Vec<Value> {
    stopped
        .emf
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).expect("EMF is JSON"))
        .collect()
}

/// Everything after the requests: rigs shut down, the evidence of every outcome, no panic, no
/// leaked task.
async fn settle(baseline: usize, rigs: Vec<(Rig, Vec<Outcome>)>) -> Vec<(Outcome, Value)> {
    let ev = evidence();
    let mut checked = Vec::new();
    for (rig, outcomes) in rigs {
        let stopped = rig.shut_down().await;
        let docs = emf_docs(&stopped);
        assert_eq!(
            docs.len(),
            outcomes.len(),
            "one EMF document per request, no more"
        );
        for o in outcomes {
            let doc = check_evidence(ev, &docs, &o).await;
            checked.push((o, doc));
        }
    }
    assert_no_leaked_tasks(baseline).await;
    let panics = ev.server_panics();
    assert!(panics.is_empty(), "panics: {panics:?}");
    for (o, d) in &checked {
        let s = &ev.summaries(&o.request_id)[0];
        eprintln!(
            "{o}; attempts {}, throttles {}, modelError {}",
            s["attempts"], d["Throttles"], s["modelError"]
        );
    }
    checked
}

/// Sends `text` buffered and streaming at once and checks each answer and its time.
async fn both(
    rig: &Rig,
    label: &str,
    text: &str,
    buffered: Answer,
    streaming: Answer,
) -> Vec<Outcome> {
    let (b, s) = tokio::join!(
        rig.send(label, Mode::Buffered, text),
        rig.send(label, Mode::Streaming, text)
    );
    for (o, expected) in [(&b, buffered), (&s, streaming)] {
        assert_answer(o, expected);
        assert!(o.took <= deadline(), "{o}: over the {MODEL_MS} ms deadline");
    }
    vec![b, s]
}

/// Requests sent one after another (so a seeded model draws its faults in a fixed order), each
/// answered within the deadline and as `check` allows.
async fn sequential(rig: &Rig, mode: Mode, label: &str, check: impl Fn(&Outcome)) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for i in 0..RANDOM_REQUESTS {
        let o = rig
            .send(&format!("{label} #{i}"), mode, &format!("question {i}"))
            .await;
        assert!(o.took <= deadline(), "{o}: over the {MODEL_MS} ms deadline");
        check(&o);
        outcomes.push(o);
    }
    outcomes
}

/// Requests per mode in the random-fault rows.
const RANDOM_REQUESTS: usize = 40;

/// One mode's share of a random-fault row: its requests with their EMF documents, and how many
/// attempts the offline model saw.
struct ModeRun {
    mode: Mode,
    rows: Vec<(Outcome, Value)>,
    attempts_seen: u64,
}

impl ModeRun {
    fn answered(&self) -> usize {
        self.rows.iter().filter(|(o, _)| o.status == 200).count()
    }

    fn retried(&self) -> usize {
        self.rows
            .iter()
            .filter(|(_, d)| d["retries"].as_u64() > Some(0))
            .count()
    }

    /// Each attempt the SDK made reached the model exactly once, and was counted.
    fn assert_attempts_counted(&self) {
        let attempts: u64 = self
            .rows
            .iter()
            .map(|(_, d)| d["retries"].as_u64().unwrap() + 1)
            .sum();
        assert_eq!(
            attempts, self.attempts_seen,
            "{:?}: attempts in EMF vs requests the model saw",
            self.mode
        );
    }
}

/// A random-fault row: a seeded model per mode (so each draws its own sequence, in order),
/// RANDOM_REQUESTS sequential requests each, every answer as `check` allows, the evidence settled.
async fn random_fault_row(
    label: &str,
    offline: impl Fn(u64) -> OfflineConfig,
    seeds: (u64, u64),
    check: impl Fn(&Outcome) + Copy,
) -> [ModeRun; 2] {
    let baseline = alive_tasks();
    let (buffered, streaming) = tokio::join!(
        Rig::start(budget(), offline(seeds.0)),
        Rig::start(budget(), offline(seeds.1))
    );
    let (b, s) = tokio::join!(
        sequential(&buffered, Mode::Buffered, label, check),
        sequential(&streaming, Mode::Streaming, label, check)
    );
    let seen = [buffered.stats.requests(), streaming.stats.requests()];
    let checked = settle(baseline, vec![(buffered, b), (streaming, s)]).await;
    let (rows_b, rows_s): (Vec<_>, Vec<_>) = checked
        .into_iter()
        .partition(|(o, _)| o.mode == Mode::Buffered);
    let runs = [
        ModeRun {
            mode: Mode::Buffered,
            rows: rows_b,
            attempts_seen: seen[0],
        },
        ModeRun {
            mode: Mode::Streaming,
            rows: rows_s,
            attempts_seen: seen[1],
        },
    ];
    for r in &runs {
        eprintln!(
            "{:?}: {}/40 answered, {} after retries",
            r.mode,
            r.answered(),
            r.retried()
        );
    }
    runs
}

#[tokio::test]
async fn random_throttling_30_percent_is_retried_or_answered_429() {
    let offline = |seed| OfflineConfig {
        throttle_percent: 30.0,
        seed: Some(seed),
        ..OfflineConfig::default()
    };
    let check = |o: &Outcome| match o.status {
        200 => assert_answer(o, Answer::Reply),
        _ => assert_answer(o, Answer::Error(429, "rate_limited")),
    };
    for run in random_fault_row("throttle-30%", offline, (7, 8), check).await {
        let mode = run.mode;
        // Only throttling is injected, so every retry was a throttle; a 429 means every
        // attempt was throttled.
        for (o, d) in &run.rows {
            let (throttles, retries) = (
                d["Throttles"].as_u64().unwrap(),
                d["retries"].as_u64().unwrap(),
            );
            match o.status {
                200 => assert_eq!(throttles, retries, "{o}: {d}"),
                _ => assert_eq!((throttles, retries), (3, 2), "{o}: {d}"),
            }
        }
        let (ok, retried) = (run.answered(), run.retried());
        assert!(
            ok >= 34,
            "{mode:?}: P(3 throttles in a row) is 2.7 %, got {ok}/40 answered"
        );
        assert!(
            retried >= 4,
            "{mode:?}: 30 % throttling must show as retries, got {retried}"
        );
        run.assert_attempts_counted();
    }
}

#[tokio::test]
async fn random_5xx_10_percent_is_retried() {
    let offline = |seed| OfflineConfig {
        error_percent: 10.0,
        seed: Some(seed),
        ..OfflineConfig::default()
    };
    let check = |o: &Outcome| match o.status {
        200 => assert_answer(o, Answer::Reply),
        502 => assert_answer(o, Answer::Error(502, "model_error")),
        _ => assert_answer(o, Answer::Error(503, "model_unavailable")),
    };
    for run in random_fault_row("5xx-10%", offline, (3, 4), check).await {
        let mode = run.mode;
        let (ok, retried) = (run.answered(), run.retried());
        assert!(
            ok >= 38,
            "{mode:?}: P(3 failures in a row) is 0.1 %, got {ok}/40 answered"
        );
        assert!(retried >= 1, "{mode:?}: 10 % 5xx must show as retries");
        assert!(run.rows.iter().all(|(_, d)| d["Throttles"] == 0));
        run.assert_attempts_counted();
    }
}

/// A model that never answers: every attempt times out; the call gives up by its deadline.
#[tokio::test]
async fn a_hung_model_is_a_504_by_the_deadline() {
    let baseline = alive_tasks();
    let rig = Rig::start(budget(), OfflineConfig::default()).await;
    let answer = Answer::Error(504, "model_timeout");
    let outcomes = both(&rig, "hang", "#fault=hang", answer, answer).await;
    for o in &outcomes {
        assert!(
            o.took >= Duration::from_millis(ATTEMPT_MS),
            "{o}: before an attempt timed out"
        );
    }
    for (o, d) in settle(baseline, vec![(rig, outcomes)]).await {
        assert!(
            d["retries"].as_u64() >= Some(1),
            "{o}: timed-out attempts are retried: {d}"
        );
    }
}

/// 1 token per second. Buffered: the reply would take a minute, so attempts time out (504).
/// Streaming: the gap after the first token exceeds the attempt timeout (the longest silence
/// allowed), so the stream ends in an `error` event; with a longer silence allowance the
/// whole-stream deadline ends it instead.
#[tokio::test]
async fn a_slow_trickle_is_cut_off_by_the_silence_and_stream_deadlines() {
    let baseline = alive_tasks();
    let rig = Rig::start(budget(), OfflineConfig::default()).await;
    let mut patient = budget();
    patient.attempt_timeout_ms = 1_500;
    let patient = Rig::start(patient, OfflineConfig::default()).await;

    let (outcomes, long) = tokio::join!(
        both(
            &rig,
            "slow",
            "#fault=slow",
            Answer::Error(504, "model_timeout"),
            Answer::ErrorEvent("model_timeout"),
        ),
        patient.send(
            "slow, 1.5 s silence allowed",
            Mode::Streaming,
            "#fault=slow"
        )
    );
    let stream = &outcomes[1];
    assert!(
        stream.took < Duration::from_millis(ATTEMPT_MS) + SLACK,
        "{stream}: cut off by the silence bound"
    );
    assert_answer(&long, Answer::ErrorEvent("model_timeout"));
    let deltas = long.events.iter().filter(|(e, _)| e == "delta").count();
    assert!(
        deltas >= 2,
        "{long}: tokens kept coming until the deadline ({deltas})"
    );
    assert!(
        long.took >= Duration::from_millis(MODEL_MS) && long.took <= deadline(),
        "{long}: ended by the {MODEL_MS} ms stream deadline"
    );
    settle(baseline, vec![(rig, outcomes), (patient, vec![long])]).await;
}

/// An exception after a few tokens. Buffered, the same fault is an error response, retried and
/// then passed on; streaming, it becomes the stream's `error` event (never retried: text has
/// been sent).
#[tokio::test]
async fn a_midstream_exception_is_an_error_status_or_event() {
    let baseline = alive_tasks();
    let rig = Rig::start(budget(), OfflineConfig::default()).await;
    let mut outcomes = both(
        &rig,
        "midstream",
        "#fault=midstream",
        Answer::Error(502, "model_error"),
        Answer::ErrorEvent("model_error"),
    )
    .await;
    outcomes.extend(
        both(
            &rig,
            "midstream-throttle",
            "#fault=midstream-throttle",
            Answer::Error(429, "rate_limited"),
            Answer::ErrorEvent("rate_limited"),
        )
        .await,
    );
    for (o, d) in settle(baseline, vec![(rig, outcomes)]).await {
        match (o.label.as_str(), o.mode) {
            ("midstream", Mode::Buffered) => assert_eq!(d["retries"], 2, "{o}: {d}"),
            ("midstream-throttle", Mode::Buffered) => assert_eq!(d["Throttles"], 3, "{o}: {d}"),
            ("midstream-throttle", Mode::Streaming) => assert_eq!(d["Throttles"], 1, "{o}: {d}"),
            _ => assert_eq!(d["retries"], 0, "{o}: {d}"),
        }
        if o.mode == Mode::Streaming {
            // Usage never reported: the cost is estimated from what was sent and streamed.
            assert_eq!(d["costEstimated"], true, "{o}: {d}");
            assert!(d["CostUSD"].as_f64().unwrap() > 0.0, "{o}: {d}");
        }
    }
}

/// The model drops the connection halfway through its reply.
#[tokio::test]
async fn a_connection_reset_is_a_model_error() {
    let baseline = alive_tasks();
    let rig = Rig::start(budget(), OfflineConfig::default()).await;
    let outcomes = both(
        &rig,
        "reset",
        "#fault=reset",
        Answer::Error(502, "model_error"),
        Answer::ErrorEvent("model_error"),
    )
    .await;
    settle(baseline, vec![(rig, outcomes)]).await;
}

/// A reply that does not parse: truncated JSON (buffered), a frame with a bad checksum (stream).
#[tokio::test]
async fn a_malformed_reply_is_a_model_error() {
    let baseline = alive_tasks();
    let rig = Rig::start(budget(), OfflineConfig::default()).await;
    let outcomes = both(
        &rig,
        "malformed",
        "#fault=malformed",
        Answer::Error(502, "model_error"),
        Answer::ErrorEvent("model_error"),
    )
    .await;
    settle(baseline, vec![(rig, outcomes)]).await;
}
