//! One deadline per request, under the Runtime API emulator with short function deadlines: the
//! real `bootstrap` answers — with its request id, summary line, EMF document and trace — before
//! the invocation's deadline, whatever the model does. The configured model timeouts stay at
//! their long defaults (25 s per call, 20 s per attempt), so only the invocation's own deadline
//! minus `CHATBOT_ANSWER_MARGIN_MS` can explain an answer in time.

mod evidence;
mod lambda_emulator;
mod service_rig;

use std::time::Duration;

use bedrock_offline::{self as offline, OfflineConfig};
use evidence::{emf, xray};
use lambda_emulator::events::{function_url, http_api_v2, xray_trace_header};
use lambda_emulator::{Emulator, Invocation, InvokeOptions, Outcome};
use serde_json::Value;
use service_rig::{chat_body, sse_events};

const MARGIN_MS: &str = "1000";
const FALLBACK: &str = "us.amazon.nova-lite-v1:0";

struct Rig {
    emulator: Emulator,
    daemon: xray::Daemon,
    _model: offline::OfflineServer,
}

async fn rig(mode: &str, offline: OfflineConfig) -> Rig {
    let model = offline::spawn(offline, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let daemon = xray::Daemon::bind();
    let (endpoint, daemon_addr) = (model.endpoint_url(), daemon.address());
    let env = [
        ("CHATBOT_LAMBDA_MODE", mode),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
        ("AWS_XRAY_DAEMON_ADDRESS", daemon_addr.as_str()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("CHATBOT_ANSWER_MARGIN_MS", MARGIN_MS),
        ("CHATBOT_FALLBACK_MODEL_ID", FALLBACK),
    ];
    let emulator = Emulator::start(env!("CARGO_BIN_EXE_bootstrap"), &env).await;
    Rig {
        emulator,
        daemon,
        _model: model,
    }
}

/// Invoke with a function deadline of `deadline` from the poll, traced.
async fn invoke(rig: &Rig, event: Value, deadline: Duration) -> (Invocation, String) {
    let trace = xray_trace_header(true);
    let inv = rig
        .emulator
        .invoke_with(
            event,
            InvokeOptions {
                trace_id: Some(trace.clone()),
                deadline,
                timeout: Duration::from_secs(30),
            },
        )
        .await;
    (inv, trace)
}

/// The reply was complete before the function's deadline; returns how long it took.
fn answered_in_time(inv: &Invocation, deadline: Duration) -> Duration {
    let took = inv.finished_at - inv.polled_at.expect("polled");
    assert!(
        took < deadline,
        "answered after {took:?}, past the function's {deadline:?} deadline"
    );
    took
}

/// One summary line, one valid EMF document and a trace, all naming the request; returns the
/// summary line and the EMF document.
async fn evidence_of(rig: &Rig, inv: &Invocation, trace: &str) -> (Value, Value) {
    let (summary, doc) = rig.emulator.evidence(&inv.request_id).await;
    emf::validate(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    assert_eq!(summary["deadlineSource"], "lambda", "{summary}");
    let root = trace
        .split(';')
        .find_map(|p| p.strip_prefix("Root="))
        .unwrap();
    let datagrams = rig.daemon.collect(Duration::from_millis(300));
    let nodes = xray::check_trace(&datagrams, root).unwrap();
    let segment = nodes
        .iter()
        .find(|n| n["type"] != "subsegment")
        .expect("request segment");
    assert_eq!(
        segment["annotations"]["request_id"],
        inv.request_id.as_str()
    );
    (summary, doc)
}

fn buffered(text: &str) -> Value {
    http_api_v2(
        "POST",
        "/api/chat",
        &[("content-type", "application/json")],
        Some(&chat_body(text)),
    )
}

#[tokio::test]
async fn a_hanging_primary_is_answered_before_the_function_deadline() {
    let rig = rig("buffered", OfflineConfig::default()).await;
    let deadline = Duration::from_secs(3);
    let (inv, trace) = invoke(&rig, buffered("hello? #fault=hang"), deadline).await;
    let took = answered_in_time(&inv, deadline);
    let r = inv.http_response().unwrap();
    assert_eq!(r.status, 504);
    let body = r.json().unwrap();
    assert_eq!(body["error"]["code"], "model_timeout");
    assert_eq!(body["error"]["requestId"], inv.request_id);
    // It used the time it had: the model deadline is the function's minus the margin.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    let (summary, doc) = evidence_of(&rig, &inv, &trace).await;
    assert_eq!(summary["errorCode"], "model_timeout");
    assert_eq!(doc["Errors"], 1);
    assert_eq!(doc["costEstimated"], true, "the input may have been billed");
}

#[tokio::test]
async fn a_slowly_throttling_primary_gets_the_fallback_only_while_time_remains() {
    let rig = rig("buffered", OfflineConfig::default()).await;
    let deadline = Duration::from_secs(4);

    // Three throttled attempts of ~0.2 s: plenty of the deadline left, the fallback answers.
    let (inv, trace) = invoke(
        &rig,
        buffered("hi #fault=throttle~200@nova-micro"),
        deadline,
    )
    .await;
    answered_in_time(&inv, deadline);
    let r = inv.http_response().unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json().unwrap()["model"], FALLBACK);
    let (summary, _) = evidence_of(&rig, &inv, &trace).await;
    assert_eq!(summary["fallback"], true, "{summary}");

    // Three of ~0.7 s leave less than a second of the ~3 s: the fallback is skipped, and the
    // client gets the primary's 429 in time.
    let (inv, trace) = invoke(
        &rig,
        buffered("hi #fault=throttle~700@nova-micro"),
        deadline,
    )
    .await;
    answered_in_time(&inv, deadline);
    let r = inv.http_response().unwrap();
    assert_eq!(r.status, 429, "{:?}", r.json());
    assert_eq!(r.json().unwrap()["error"]["code"], "rate_limited");
    let (summary, doc) = evidence_of(&rig, &inv, &trace).await;
    assert_eq!(summary["fallbackSkipped"], true, "{summary}");
    assert!(summary.get("fallback").is_none(), "{summary}");
    assert_eq!(doc["Throttles"], 3, "{doc}");
    let warned = rig
        .emulator
        .lines()
        .into_iter()
        .filter_map(|l| l.json)
        .any(|j| {
            j["requestId"] == inv.request_id.as_str()
                && j["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("fallback skipped"))
        });
    assert!(warned, "the skip is logged with its reason");
}

#[tokio::test]
async fn a_stream_that_stalls_midway_ends_with_an_error_event_in_time() {
    let rig = rig("streaming", OfflineConfig::default()).await;
    let deadline = Duration::from_secs(3);
    let event = function_url(
        "POST",
        "/api/chat/stream",
        &[("content-type", "application/json")],
        Some(&chat_body("tell me everything #fault=stall")),
    );
    let (inv, trace) = invoke(&rig, event, deadline).await;
    answered_in_time(&inv, deadline);
    let Outcome::Streamed {
        prelude, chunks, ..
    } = &inv.outcome
    else {
        panic!("expected a stream: {:?}", inv.outcome);
    };
    assert_eq!(prelude["statusCode"], 200);
    let text: String = chunks
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    let events = sse_events(&text);
    assert_eq!(
        events.iter().filter(|(e, _)| e == "delta").count(),
        3,
        "{events:?}"
    );
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(data["code"], "model_timeout");
    assert_eq!(data["requestId"], inv.request_id.as_str());
    let (summary, doc) = evidence_of(&rig, &inv, &trace).await;
    assert_eq!(summary["effectiveStatus"], 504, "{summary}");
    assert_eq!(doc["Errors"], 1);
    assert_eq!(doc["costEstimated"], true);
}
