//! The streaming Lambda host (`CHATBOT_LAMBDA_MODE=streaming`, a Function URL in
//! RESPONSE_STREAM mode): the real binary's reply arrives chunk by chunk through the Runtime
//! API, and still leaves one summary line, one EMF document and its trace.

mod evidence;
mod lambda_emulator;
mod service_rig;

use std::time::Duration;

use bedrock_offline::{self as offline, OfflineConfig};
use evidence::{emf, xray};
use lambda_emulator::events::{function_url, xray_trace_header};
use lambda_emulator::{Emulator, InvokeOptions, Outcome};
use serde_json::Value;
use service_rig::{chat_body, sse_events};

async fn streaming_function(
    offline: OfflineConfig,
    extra: &[(&str, &str)],
) -> (Emulator, xray::Daemon, offline::OfflineServer) {
    let model = offline::spawn(offline, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let daemon = xray::Daemon::bind();
    let endpoint = model.endpoint_url();
    let daemon_addr = daemon.address();
    let mut env = vec![
        ("CHATBOT_LAMBDA_MODE", "streaming"),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
        ("AWS_XRAY_DAEMON_ADDRESS", daemon_addr.as_str()),
        ("CHATBOT_ATTEMPT_TIMEOUT_MS", "2000"),
        ("CHATBOT_MODEL_TIMEOUT_MS", "4000"),
    ];
    env.extend_from_slice(extra);
    let emulator = Emulator::start(env!("CARGO_BIN_EXE_bootstrap"), &env).await;
    (emulator, daemon, model)
}

fn post(body: &str) -> Value {
    post_to("/api/chat/stream", body)
}

fn post_to(path: &str, body: &str) -> Value {
    function_url(
        "POST",
        path,
        &[("content-type", "application/json")],
        Some(body),
    )
}

#[tokio::test]
async fn a_streamed_reply_arrives_in_chunks_with_its_telemetry() {
    // 50 tokens/s: a ~50-word reply takes about a second, so chunks are spread in time.
    let (emulator, daemon, _model) = streaming_function(
        OfflineConfig {
            tokens_per_sec: 50.0,
            ..OfflineConfig::default()
        },
        &[],
    )
    .await;
    let trace = xray_trace_header(true);
    let inv = emulator
        .invoke_with(
            post(&chat_body("stream through lambda")),
            InvokeOptions {
                trace_id: Some(trace.clone()),
                ..InvokeOptions::default()
            },
        )
        .await;
    let Outcome::Streamed {
        prelude,
        chunks,
        error,
    } = &inv.outcome
    else {
        panic!("expected a streamed response, got {:?}", inv.outcome);
    };
    assert!(error.is_none(), "{error:?}");
    assert_eq!(prelude["statusCode"], 200);
    assert!(
        prelude["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(prelude["headers"]["x-request-id"], inv.request_id);

    // Chunk by chunk: many chunks, spread over time, the first well before the last.
    assert!(chunks.len() >= 10, "{} chunks", chunks.len());
    let first = chunks.first().unwrap().0;
    let last = chunks.last().unwrap().0;
    assert!(
        last.duration_since(first) >= Duration::from_millis(300),
        "not streamed: {:?}",
        last.duration_since(first)
    );
    let first_text = String::from_utf8_lossy(&chunks[0].1);
    assert!(
        first_text.contains("event: meta"),
        "meta goes out first: {first_text}"
    );

    let body: String = chunks
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    let events = sse_events(&body);
    assert_eq!(events.first().unwrap().0, "meta");
    let (last_event, done) = events.last().unwrap();
    assert_eq!(last_event, "done");
    let deltas = events.iter().filter(|(e, _)| e == "delta").count();
    assert_eq!(done["usage"]["outputTokens"], deltas as u64);

    // Telemetry, finished as the stream ended.
    let rid = inv.request_id.clone();
    let found = emulator
        .wait_for_stdout(
            |l| {
                l.json
                    .as_ref()
                    .is_some_and(|j| j["requestId"] == rid && j.get("_aws").is_some())
            },
            Duration::from_secs(5),
        )
        .await
        .expect("EMF document");
    let doc = found.json.unwrap();
    emf::validate(&doc).unwrap();
    assert_eq!(doc["OutputTokens"], done["usage"]["outputTokens"]);
    assert_eq!(doc["CostUSD"], done["cost"]["totalUsd"]);
    assert!(doc["TimeToFirstToken"].as_f64().unwrap() < doc["Latency"].as_f64().unwrap());
    assert!(
        done["cost"]["apiUsd"].is_null(),
        "a Function URL has no API Gateway charge"
    );
    assert!(done["cost"]["computeUsd"].as_f64().unwrap() > 0.0);
    let summaries: Vec<Value> = emulator
        .lines()
        .into_iter()
        .filter_map(|l| l.json)
        .filter(|j| j["requestId"] == rid && j["message"] == "request completed")
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["streaming"], true);
    assert!(summaries[0]["timeToFirstTokenMs"].as_f64().is_some());

    let root = trace.split(';').next().unwrap().trim_start_matches("Root=");
    let nodes = xray::check_trace(&daemon.collect(Duration::from_millis(300)), root).unwrap();
    let bedrock = nodes
        .iter()
        .find(|n| n["namespace"] == "aws")
        .expect("Bedrock subsegment");
    assert_eq!(bedrock["aws"]["operation"], "ConverseStream");
}

#[tokio::test]
async fn errors_in_streaming_mode_keep_their_bodies() {
    let (emulator, _daemon, _model) = streaming_function(OfflineConfig::default(), &[]).await;
    // Before the stream: a JSON error with its status (streaming hosts once lost such bodies).
    let inv = emulator.invoke(post(&chat_body("#fault=throttle"))).await;
    let reply = inv.http_response().unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json().unwrap()["error"]["code"], "rate_limited");
    let inv = emulator.invoke(post("{oops")).await;
    let reply = inv.http_response().unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json().unwrap()["error"]["requestId"], inv.request_id);
    // After it began: an SSE error event, and the function does not fail the invocation.
    let inv = emulator.invoke(post(&chat_body("#fault=midstream"))).await;
    let Outcome::Streamed { error, .. } = &inv.outcome else {
        panic!("{:?}", inv.outcome)
    };
    assert!(error.is_none());
    let reply = inv.http_response().unwrap();
    let events = sse_events(&reply.text());
    assert_eq!(events.last().unwrap().0, "error");
    assert_eq!(events.last().unwrap().1["code"], "model_error");
}

/// A panic in the streamed body after `meta` and a `delta` were sent (the diagnostic route):
/// the stream ends with an `error` event, the invocation is not failed, the request is the
/// service's failure in every signal — and the process goes on serving.
#[tokio::test]
async fn a_panic_mid_stream_is_an_error_event_an_error_and_a_fault() {
    let (emulator, daemon, _model) = streaming_function(
        OfflineConfig::default(),
        &[("CHATBOT_DIAGNOSTIC_ROUTES", "true")],
    )
    .await;
    let trace = xray_trace_header(true);
    let inv = emulator
        .invoke_with(
            post_to("/api/_diag/panic-midstream", "{}"),
            InvokeOptions {
                trace_id: Some(trace.clone()),
                ..InvokeOptions::default()
            },
        )
        .await;
    let Outcome::Streamed {
        prelude,
        chunks,
        error,
    } = &inv.outcome
    else {
        panic!("expected a streamed response, got {:?}", inv.outcome);
    };
    assert!(
        error.is_none(),
        "the invocation itself succeeded: {error:?}"
    );
    assert_eq!(prelude["statusCode"], 200);
    assert_eq!(prelude["headers"]["cache-control"], "no-store");
    let body: String = chunks
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["meta", "delta", "error"], "{body}");
    assert_eq!(events[2].1["code"], "internal");
    assert_eq!(events[2].1["requestId"], inv.request_id);

    let rid = inv.request_id.clone();
    let found = emulator
        .wait_for_stdout(
            |l| {
                l.json
                    .as_ref()
                    .is_some_and(|j| j["requestId"] == rid && j.get("_aws").is_some())
            },
            Duration::from_secs(5),
        )
        .await
        .expect("EMF document");
    let doc = found.json.unwrap();
    emf::validate(&doc).unwrap();
    assert_eq!(doc["Errors"], 1, "{doc}");
    assert_eq!(doc["statusCode"], 500, "{doc}");
    assert_eq!(doc["errorCode"], "internal", "{doc}");
    assert!(
        doc.get("clientAborted").is_none(),
        "not a client abort: {doc}"
    );
    let lines: Vec<Value> = emulator
        .lines()
        .into_iter()
        .filter_map(|l| l.json)
        .filter(|j| j["requestId"] == rid)
        .collect();
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|j| j["message"] == "request completed")
        .collect();
    assert_eq!(summaries.len(), 1);
    let s = summaries[0];
    assert_eq!(s["level"], "ERROR", "{s}");
    assert_eq!(s["errorCode"], "internal", "{s}");
    assert_eq!(s["effectiveStatus"], 500, "{s}");
    assert_eq!(s["clientAborted"], false, "{s}");
    assert_eq!(
        lines.iter().filter(|j| j["message"] == "panic").count(),
        1,
        "the panic line, with the request id"
    );

    let root = trace.split(';').next().unwrap().trim_start_matches("Root=");
    let nodes = xray::check_trace(&daemon.collect(Duration::from_millis(300)), root).unwrap();
    let segment = nodes.iter().find(|n| n["type"] != "subsegment").unwrap();
    assert_eq!(segment["fault"], true, "{segment}");
    assert_eq!(segment["annotations"]["error_code"], "internal");

    // The same process answers the next invocation.
    let next = emulator.invoke(post(&chat_body("still here"))).await;
    let reply = next.http_response().unwrap();
    assert_eq!(sse_events(&reply.text()).last().unwrap().0, "done");
}
