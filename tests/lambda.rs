//! The Lambda path end to end: the real compiled binary under a Runtime API emulator, calling
//! the offline model through the AWS SDK's standard endpoint override, with its stdout (logs,
//! EMF) and its X-Ray datagrams (to a loopback UDP "daemon") checked per invocation.

mod evidence;
mod lambda_emulator;
mod service_rig;

use std::str::FromStr;
use std::time::Duration;

use bedrock_offline::{self as offline, OfflineConfig};
use evidence::{emf, xray};
use lambda_emulator::events::{http_api_v2, xray_trace_header};
use lambda_emulator::{Emulator, Invocation, InvokeOptions};
use rust_decimal::Decimal;
use serde_json::Value;
use service_rig::chat_body;

struct Rig {
    emulator: Emulator,
    daemon: xray::Daemon,
    _model: offline::OfflineServer,
}

async fn rig(extra: &[(&str, &str)]) -> Rig {
    let model = offline::spawn(OfflineConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let daemon = xray::Daemon::bind();
    let endpoint = model.endpoint_url();
    let daemon_addr = daemon.address();
    let mut env = vec![
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
        ("AWS_XRAY_DAEMON_ADDRESS", daemon_addr.as_str()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("CHATBOT_DIAGNOSTIC_ROUTES", "true"),
        ("CHATBOT_ATTEMPT_TIMEOUT_MS", "1000"),
        ("CHATBOT_MODEL_TIMEOUT_MS", "2000"),
    ];
    env.extend_from_slice(extra);
    let emulator = Emulator::start(env!("CARGO_BIN_EXE_bootstrap"), &env).await;
    Rig {
        emulator,
        daemon,
        _model: model,
    }
}

fn post(path: &str, body: &str) -> Value {
    http_api_v2(
        "POST",
        path,
        &[("content-type", "application/json")],
        Some(body),
    )
}

fn root_of(header: &str) -> String {
    header
        .split(';')
        .find_map(|p| p.strip_prefix("Root="))
        .unwrap()
        .to_owned()
}

fn parent_of(header: &str) -> String {
    header
        .split(';')
        .find_map(|p| p.strip_prefix("Parent="))
        .unwrap()
        .to_owned()
}

async fn invoke(rig: &Rig, event: Value, sampled: bool) -> (Invocation, String) {
    let trace = xray_trace_header(sampled);
    let inv = rig
        .emulator
        .invoke_with(
            event,
            InvokeOptions {
                trace_id: Some(trace.clone()),
                ..InvokeOptions::default()
            },
        )
        .await;
    (inv, trace)
}

/// Exactly one summary line and one EMF document carry this request id.
async fn evidence(rig: &Rig, request_id: &str) -> (Value, Value) {
    rig.emulator.evidence(request_id).await
}

#[tokio::test]
async fn three_invocations_in_one_process_leave_logs_metrics_and_traces() {
    let rig = rig(&[]).await;
    let (chat, chat_trace) =
        invoke(&rig, post("/api/chat", &serde_json::json!({"messages": [{"role": "user", "content": "hello lambda"}], "conversationId": "c-42"}).to_string()), true).await;
    let (bad, bad_trace) = invoke(&rig, post("/api/chat", "{not json"), true).await;
    let (health, health_trace) =
        invoke(&rig, http_api_v2("GET", "/api/health", &[], None), true).await;

    // Responses posted back to the runtime API.
    let r = chat.http_response().unwrap();
    assert_eq!(r.status, 200);
    let v = r.json().unwrap();
    assert_eq!(v["requestId"], chat.request_id, "the Lambda request id");
    assert_eq!(r.header("x-request-id"), Some(chat.request_id.as_str()));
    assert!(v["reply"].as_str().unwrap().contains("hello lambda"));
    let r = bad.http_response().unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json().unwrap()["error"]["code"], "invalid_request");
    let r = health.http_response().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["status"], "ok");

    // One summary line and one valid EMF document each, tied by request id and trace id.
    for (i, (inv, trace)) in [
        (&chat, &chat_trace),
        (&bad, &bad_trace),
        (&health, &health_trace),
    ]
    .into_iter()
    .enumerate()
    {
        let (summary, doc) = evidence(&rig, &inv.request_id).await;
        emf::validate(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        assert_eq!(doc["xrayTraceId"], root_of(trace));
        assert_eq!(summary["xrayTraceId"], root_of(trace));
        assert_eq!(summary["functionName"], "chatbot-test");
        assert_eq!(summary["service"], "chatbot");
        assert_eq!(summary["coldStart"], i == 0);
        assert_eq!(
            doc.get("coldStart").is_some(),
            i == 0,
            "coldStart only on the first invocation"
        );
        assert!(doc["Latency"].as_f64().unwrap() > 0.0);
    }

    // The chat's tokens and cost: EMF and the log agree with the offline model and the price table.
    let (summary, doc) = evidence(&rig, &chat.request_id).await;
    let documented = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/observability.md"
    ))
    .unwrap();
    for key in summary.as_object().unwrap().keys() {
        assert!(
            documented.contains(&format!("`{key}`")),
            "summary key {key} is not in docs/observability.md"
        );
    }
    let usage = &v["usage"];
    assert_eq!(doc["InputTokens"], usage["inputTokens"]);
    assert_eq!(doc["OutputTokens"], usage["outputTokens"]);
    assert_eq!(doc["conversationId"], "c-42");
    assert_eq!(
        (&summary["variant"], &doc["Variant"]),
        (&Value::from("default"), &Value::from("default"))
    );
    check_cost(&summary, &doc, usage);

    // X-Ray: a segment per invocation in the invocation's trace, parented on Lambda's segment,
    // and a Bedrock subsegment under the chat's.
    let datagrams = rig.daemon.collect(Duration::from_millis(300));
    for trace in [&chat_trace, &bad_trace, &health_trace] {
        let nodes = xray::check_trace(&datagrams, &root_of(trace)).unwrap();
        let segment = nodes
            .iter()
            .find(|n| n["type"] != "subsegment")
            .expect("request segment");
        assert_eq!(
            segment["parent_id"],
            parent_of(trace),
            "continues Lambda's trace"
        );
        assert_eq!(segment["name"], "chatbot");
    }
    let chat_nodes = xray::check_trace(&datagrams, &root_of(&chat_trace)).unwrap();
    let segment = chat_nodes
        .iter()
        .find(|n| n["type"] != "subsegment")
        .unwrap();
    assert_eq!(segment["annotations"]["model"], "us.amazon.nova-micro-v1:0");
    assert_eq!(segment["annotations"]["stop_reason"], "end_turn");
    assert_eq!(segment["annotations"]["variant"], "default");
    assert_eq!(segment["annotations"]["cold_start"], true);
    assert_eq!(segment["http"]["response"]["status"], 200);
    assert!(
        segment["metadata"].to_string().contains("totalUsd"),
        "cost breakdown in metadata: {segment}"
    );
    let bedrock = chat_nodes
        .iter()
        .find(|n| n["namespace"] == "aws")
        .expect("Bedrock subsegment");
    assert_eq!(bedrock["parent_id"], segment["id"]);
    assert_eq!(bedrock["aws"]["operation"], "Converse");
    assert_eq!(bedrock["aws"]["region"], "us-east-2");
    assert_eq!(bedrock["http"]["response"]["status"], 200);
    let bad_nodes = xray::check_trace(&datagrams, &root_of(&bad_trace)).unwrap();
    let bad_segment = bad_nodes
        .iter()
        .find(|n| n["type"] != "subsegment")
        .unwrap();
    assert_eq!(bad_segment["error"], true, "4xx → error");
    assert_eq!(bad_segment["annotations"]["error_code"], "invalid_request");
}

/// modelUsd = tokens × price exactly; computeUsd = whole billed ms × 128 MB × GB-second price +
/// per-request price; apiUsd = the HTTP API per-request price; CostUSD = their sum.
fn check_cost(summary: &Value, doc: &Value, usage: &Value) {
    let d = |v: &Value| {
        Decimal::from_str(&v.to_string()).unwrap_or_else(|_| panic!("not a number: {v}"))
    };
    let lit = |s: &str| Decimal::from_str(s).unwrap();
    let tokens = |k: &str| Decimal::from(usage[k].as_u64().unwrap());
    let model = (tokens("inputTokens") * lit("0.000035") + tokens("outputTokens") * lit("0.00014"))
        / Decimal::from(1000);
    assert_eq!(d(&summary["modelCostUsd"]), model.normalize());
    assert_eq!(d(&summary["apiCostUsd"]), lit("0.000001"));
    let gb_second = if cfg!(target_arch = "aarch64") {
        "0.0000133334"
    } else {
        "0.0000166667"
    };
    let per_ms = lit("0.125") * lit(gb_second) / Decimal::from(1000);
    let compute = d(&summary["computeCostUsd"]) - lit("0.0000002");
    let billed_ms = compute / per_ms;
    assert_eq!(
        billed_ms,
        billed_ms.round(),
        "compute cost is a whole number of billed ms: {billed_ms}"
    );
    let latency = summary["latencyMs"].as_f64().unwrap();
    assert!(
        billed_ms >= Decimal::ONE && billed_ms <= Decimal::from(latency.ceil() as u64 + 1),
        "{billed_ms} ms vs {latency}"
    );
    let total = model + d(&summary["computeCostUsd"]) + d(&summary["apiCostUsd"]);
    assert_eq!(d(&summary["costUsd"]), total.normalize());
    assert_eq!(d(&doc["CostUSD"]), total.normalize());
}

#[tokio::test]
async fn error_paths_still_leave_their_evidence_with_trace_flags() {
    let rig = rig(&[]).await;
    let (throttled, t1) =
        invoke(&rig, post("/api/chat", &chat_body("#fault=throttle")), true).await;
    let (timeout, t2) = invoke(&rig, post("/api/chat", &chat_body("#fault=hang")), true).await;
    let (panicked, t3) = invoke(&rig, post("/api/_diag/panic", "{}"), true).await;
    let (failed, t4) = invoke(&rig, post("/api/chat", &chat_body("#fault=error")), true).await;

    let expect = [
        (&throttled, 429, "rate_limited"),
        (&timeout, 504, "model_timeout"),
        (&panicked, 500, "internal"),
        (&failed, 502, "model_error"),
    ];
    for (inv, status, code) in expect {
        let r = inv.http_response().unwrap();
        assert_eq!(r.status, status);
        assert_eq!(r.json().unwrap()["error"]["code"], code);
        assert_eq!(r.json().unwrap()["error"]["requestId"], inv.request_id);
        let (summary, doc) = evidence(&rig, &inv.request_id).await;
        emf::validate(&doc).unwrap();
        assert_eq!(summary["errorCode"], code);
        assert_eq!(summary["level"], "ERROR");
        assert_eq!(doc["Errors"], 1);
        assert_eq!(doc["errorCode"], code);
    }
    // The panic: one JSON error line with the request id, and no non-JSON noise on stdout.
    let panic_lines: Vec<Value> = rig
        .emulator
        .lines()
        .into_iter()
        .filter_map(|l| l.json)
        .filter(|j| j["message"] == "panic")
        .collect();
    assert_eq!(panic_lines.len(), 1);
    assert_eq!(panic_lines[0]["requestId"], panicked.request_id);
    assert_eq!(panic_lines[0]["level"], "ERROR");
    assert!(
        rig.emulator.lines().iter().all(|l| l.json.is_some()),
        "stdout is JSON lines only"
    );
    let (_, doc) = evidence(&rig, &throttled.request_id).await;
    assert_eq!(doc["Throttles"], 3, "three throttled attempts");
    assert_eq!(doc["retries"], 2);

    let datagrams = rig.daemon.collect(Duration::from_millis(300));
    let segment = |trace: &str| {
        let nodes = xray::check_trace(&datagrams, &root_of(trace)).unwrap();
        nodes
            .iter()
            .find(|n| n["type"] != "subsegment")
            .unwrap()
            .clone()
    };
    let bedrock = |trace: &str| {
        let nodes = xray::check_trace(&datagrams, &root_of(trace)).unwrap();
        nodes.into_iter().find(|n| n["namespace"] == "aws").unwrap()
    };
    let s = segment(&t1);
    assert_eq!(
        (s["throttle"].as_bool(), s["error"].as_bool()),
        (Some(true), Some(true)),
        "429: {s}"
    );
    let b = bedrock(&t1);
    assert_eq!(b["throttle"], true);
    assert_eq!(b["http"]["response"]["status"], 429);
    assert_eq!(b["metadata"]["retries"], 2, "{b}");
    assert_eq!(segment(&t2)["fault"], true, "504 → fault");
    assert_eq!(bedrock(&t2)["fault"], true, "a timed-out call is a fault");
    assert_eq!(segment(&t3)["fault"], true, "panic → 500 → fault");
    assert_eq!(segment(&t3)["annotations"]["error_code"], "internal");
    assert_eq!(segment(&t4)["fault"], true);
}

#[tokio::test]
async fn unsampled_invocations_send_no_segments() {
    let rig = rig(&[]).await;
    let (inv, trace) = invoke(&rig, post("/api/chat", &chat_body("quietly")), false).await;
    assert_eq!(inv.http_response().unwrap().status, 200);
    let (summary, _) = evidence(&rig, &inv.request_id).await;
    assert_eq!(
        summary["xrayTraceId"],
        root_of(&trace),
        "still correlated in logs"
    );
    assert!(
        rig.daemon.collect(Duration::from_millis(300)).is_empty(),
        "Sampled=0: no datagrams"
    );
}

#[tokio::test]
async fn content_is_logged_only_when_an_operator_turns_it_on() {
    let secret = "my secret question about zebras";
    let rig_off = rig(&[]).await;
    let (inv, _) = invoke(&rig_off, post("/api/chat", &chat_body(secret)), true).await;
    evidence(&rig_off, &inv.request_id).await;
    assert!(
        rig_off
            .emulator
            .lines()
            .iter()
            .all(|l| !l.text.contains("zebras"))
    );
    let datagrams = rig_off.daemon.collect(Duration::from_millis(300));
    assert!(
        !datagrams.iter().any(|d| d.to_string().contains("zebras")),
        "nor in traces"
    );

    let rig_on = rig(&[
        ("CHATBOT_LOG_CONTENT", "true"),
        ("CHATBOT_LOG_CONTENT_MAX_CHARS", "12"),
    ])
    .await;
    let (inv, _) = invoke(&rig_on, post("/api/chat", &chat_body(secret)), true).await;
    let (summary, doc) = evidence(&rig_on, &inv.request_id).await;
    assert_eq!(summary["prompt"], "my secret qu…");
    assert!(summary["reply"].as_str().unwrap().chars().count() <= 13);
    assert!(!doc.to_string().contains("zebras"), "never in metrics");
}

/// Prompt caching on: the first call writes the system prompt to the cache, the repeat reads
/// it; both counts reach the response, the summary line, the EMF document and the Bedrock
/// subsegment, and the cost prices each at its own rate.
#[tokio::test]
async fn prompt_cache_tokens_reach_every_signal() {
    let system = "You are a careful assistant for a small team. ".repeat(4);
    let rig = rig(&[
        ("CHATBOT_PROMPT_CACHE", "on"),
        ("CHATBOT_SYSTEM_PROMPT", system.trim()),
    ])
    .await;
    let body = chat_body("what is cached here");
    let (first, first_trace) = invoke(&rig, post("/api/chat", &body), true).await;
    let (second, second_trace) = invoke(&rig, post("/api/chat", &body), true).await;
    let datagrams = rig.daemon.collect(Duration::from_millis(300));
    for (inv, trace, key) in [
        (&first, &first_trace, "cacheWriteInputTokens"),
        (&second, &second_trace, "cacheReadInputTokens"),
    ] {
        let v = inv.http_response().unwrap().json().unwrap();
        let cached = v["usage"][key].as_u64().unwrap_or(0);
        assert_eq!(cached, 36, "{key}: the system prompt's words: {v}");
        let (summary, doc) = evidence(&rig, &inv.request_id).await;
        assert_eq!(summary[key], cached, "{summary}");
        assert_eq!(doc[key], cached, "{doc}");
        let nodes = xray::check_trace(&datagrams, &root_of(trace)).unwrap();
        let bedrock = nodes.iter().find(|n| n["namespace"] == "aws").unwrap();
        let otel = if key == "cacheReadInputTokens" {
            "gen_ai.usage.cache_read.input_tokens"
        } else {
            "gen_ai.usage.cache_creation.input_tokens"
        };
        let meta = &bedrock["metadata"];
        assert_eq!(meta[otel], cached, "{bedrock}");
        assert_eq!(meta["gen_ai.usage.input_tokens"], v["usage"]["inputTokens"]);
        assert_eq!(
            meta["gen_ai.usage.output_tokens"],
            v["usage"]["outputTokens"]
        );
        assert_eq!(meta["gen_ai.request.temperature"], 0.7);
        assert_eq!(meta["aws.bedrock.service_tier"], "standard");
        assert_eq!(summary["servedTier"], "standard");
        // Each kind of token at its own Nova Micro price, to the last digit.
        let lit = |s: &str| Decimal::from_str(s).unwrap();
        let n = |k: &str| Decimal::from(v["usage"][k].as_u64().unwrap_or(0));
        let model = (n("inputTokens") * lit("0.000035")
            + n("cacheReadInputTokens") * lit("0.00000875")
            + n("cacheWriteInputTokens") * lit("0.000035")
            + n("outputTokens") * lit("0.00014"))
            / Decimal::from(1000);
        let got = Decimal::from_str(&summary["modelCostUsd"].to_string()).unwrap();
        assert_eq!(got, model.normalize(), "{summary}");
    }
}
