//! Bedrock Guardrails end to end on the offline model's simulated guardrail (blocked words, the
//! trace with text units, streaming included): through the router for the HTTP contract and the
//! exact cost, and under the Runtime API emulator for the evidence (summary line, EMF, trace).

mod evidence;
mod lambda_emulator;
mod service_rig;

use std::str::FromStr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bedrock_offline::{self as offline, OfflineConfig};
use chatbot_service::config::ServiceConfig;
use evidence::{emf, xray};
use lambda_emulator::events::{http_api_v2, xray_trace_header};
use lambda_emulator::{Emulator, InvokeOptions};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use service_rig::{TestService, chat_body, config, post_json, service, sse_events};

const GUARDRAIL: &str = "chatbotguard1";
const BLOCKED_MESSAGE: &str = "Sorry, the model cannot answer this question.";
/// Blocked in any text; `squid` only in the model's output (a user may quote it, the echoed
/// reply is then cut off where it appears).
const BLOCKED_WORD: &str = "kraken";
const BLOCKED_OUTPUT_WORD: &str = "squid";

fn offline_guardrail() -> OfflineConfig {
    OfflineConfig {
        guardrail_blocked_words: vec![BLOCKED_WORD.into()],
        guardrail_blocked_output_words: vec![BLOCKED_OUTPUT_WORD.into()],
        ..OfflineConfig::default()
    }
}

/// A 1,500-character system prompt: two text units of input on every assessment.
fn guarded() -> ServiceConfig {
    let mut c = config();
    c.guardrail_id = Some(GUARDRAIL.into());
    c.system_prompt = "Answer briefly. ".repeat(94)[..1500].to_owned();
    c
}

fn lit(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(&v.to_string()).unwrap_or_else(|_| panic!("not a number: {v}"))
}

/// Nova Micro tokens plus content-filter units at $0.15 per 1,000 (the offline guardrail reports
/// its units as content and word policy units; word filters are free).
fn expected(usage: &Value, content_units: u64) -> (Decimal, Decimal) {
    let n = |k: &str| Decimal::from(usage[k].as_u64().unwrap());
    let model = (n("inputTokens") * lit("0.000035") + n("outputTokens") * lit("0.00014"))
        / Decimal::from(1000);
    let guardrail = Decimal::from(content_units) * lit("0.15") / Decimal::from(1000);
    (model.normalize(), guardrail.normalize())
}

async fn emf_for(svc: &TestService, request_id: &str) -> Value {
    for _ in 0..200 {
        if let Some(d) = svc
            .emf_docs()
            .into_iter()
            .find(|d| d["requestId"] == request_id)
        {
            emf::validate(&d).unwrap();
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no EMF document for {request_id}");
}

#[tokio::test]
async fn a_reply_the_guardrail_lets_through_carries_its_cost_exactly() {
    let svc = service(guarded(), offline_guardrail()).await;
    let r = svc.chat("tell me about the sea").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["stopReason"], "end_turn");
    assert!(v.get("guardrail").is_none(), "{v}");
    // Input: 2 units (1,500 + a few characters); output: 1 unit (the reply is under 1,000).
    let (model, guardrail) = expected(&v["usage"], 2 + 1);
    assert_eq!(dec(&v["cost"]["modelUsd"]), model);
    assert_eq!(dec(&v["cost"]["guardrailUsd"]), guardrail);
    assert_eq!(dec(&v["cost"]["totalUsd"]), model + guardrail);
    let d = emf_for(&svc, r.request_id()).await;
    assert_eq!(d["GuardrailInterventions"], 0);
    assert_eq!(d["guardrailAction"], "none");
    assert_eq!(
        d["guardrailTextUnits"], 6,
        "content + word units, input and output"
    );
    assert_eq!(dec(&d["CostUSD"]), model + guardrail);
}

#[tokio::test]
async fn a_blocked_input_is_answered_with_the_guardrail_message_and_not_remembered() {
    let svc = service(guarded(), offline_guardrail()).await;
    let r = svc
        .send(post_json(
            "/api/chat",
            &json!({"message": format!("where does the {BLOCKED_WORD} live")}).to_string(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "a notice, not an error");
    let v = r.json();
    assert_eq!(v["stopReason"], "guardrail_intervened");
    assert_eq!(v["reply"], BLOCKED_MESSAGE);
    assert_eq!(
        v["guardrail"],
        json!({"action": "input_blocked", "policies": ["wordPolicy:custom"]})
    );
    // The model never ran: no tokens; the input's assessment is billed.
    assert_eq!(v["usage"]["inputTokens"], 0);
    assert_eq!(v["usage"]["outputTokens"], 0);
    let (_, guardrail) = expected(&v["usage"], 2);
    assert_eq!(dec(&v["cost"]["modelUsd"]), Decimal::ZERO);
    assert_eq!(dec(&v["cost"]["guardrailUsd"]), guardrail);
    let d = emf_for(&svc, r.request_id()).await;
    assert_eq!(d["GuardrailInterventions"], 1);
    assert_eq!(d["guardrailAction"], "input_blocked");
    assert_eq!(d["guardrailPolicies"], json!(["wordPolicy:custom"]));
    assert_eq!(d["Errors"], 0, "an intervention is not a failure");
    assert!(
        !d.to_string().contains(BLOCKED_WORD),
        "no content in the evidence: {d}"
    );
    // The blocked turn is not in the conversation.
    let id = v["conversationId"].as_str().unwrap();
    let got = svc
        .send(
            Request::get(format!("/api/conversations/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let turns = match got.status {
        StatusCode::OK => got.json()["turns"].as_array().unwrap().len(),
        StatusCode::NOT_FOUND => 0,
        other => panic!("GET conversation: {other}"),
    };
    assert_eq!(turns, 0);
}

#[tokio::test]
async fn an_output_blocked_midway_through_a_stream_ends_with_the_notice() {
    let svc = service(guarded(), offline_guardrail()).await;
    let text = format!("say {BLOCKED_OUTPUT_WORD} for me");
    let r = svc
        .send(post_json("/api/chat/stream", &chat_body(&text)))
        .await;
    let events = sse_events(std::str::from_utf8(&r.body).unwrap());
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    // Sync mode: words up to the blocked one went out, then the guardrail's message.
    assert!(deltas.len() > 2, "{deltas:?}");
    assert_eq!(*deltas.last().unwrap(), BLOCKED_MESSAGE);
    assert!(!deltas.concat().contains(BLOCKED_OUTPUT_WORD), "{deltas:?}");
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    assert_eq!(done["stopReason"], "guardrail_intervened");
    assert_eq!(
        done["guardrail"],
        json!({"action": "output_blocked", "policies": ["wordPolicy:custom"]})
    );
    // Both the model's tokens (up to the intervention) and both assessments are billed.
    let (model, guardrail) = expected(&done["usage"], 2 + 1);
    assert!(done["usage"]["outputTokens"].as_u64().unwrap() > 0);
    assert_eq!(dec(&done["cost"]["modelUsd"]), model);
    assert_eq!(dec(&done["cost"]["guardrailUsd"]), guardrail);
    let d = emf_for(&svc, r.request_id()).await;
    assert_eq!(d["GuardrailInterventions"], 1);
    assert_eq!(d["guardrailAction"], "output_blocked");
}

#[tokio::test]
async fn without_a_guardrail_nothing_changes() {
    let svc = service(config(), offline_guardrail()).await;
    let r = svc.chat(&format!("the {BLOCKED_WORD} again")).await;
    let v = r.json();
    assert_eq!(v["stopReason"], "end_turn", "no guardrailConfig, no check");
    assert!(v["cost"].get("guardrailUsd").is_none());
    let d = emf_for(&svc, r.request_id()).await;
    assert!(d.get("GuardrailInterventions").is_none(), "no metric: {d}");
    assert!(d.get("guardrailAction").is_none());
}

/// The real binary under the Runtime API emulator: the summary line, the EMF document and the
/// trace say what the guardrail did, with the `guardrail_action` annotation.
#[tokio::test]
async fn lambda_evidence_names_the_intervention() {
    let model = offline::spawn(offline_guardrail(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let daemon = xray::Daemon::bind();
    let (endpoint, daemon_addr) = (model.endpoint_url(), daemon.address());
    let env = [
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
        ("AWS_XRAY_DAEMON_ADDRESS", daemon_addr.as_str()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("CHATBOT_GUARDRAIL_ID", GUARDRAIL),
        ("CHATBOT_GUARDRAIL_VERSION", "1"),
    ];
    let emulator = Emulator::start(env!("CARGO_BIN_EXE_bootstrap"), &env).await;
    let trace = xray_trace_header(true);
    let event = http_api_v2(
        "POST",
        "/api/chat",
        &[("content-type", "application/json")],
        Some(&chat_body(&format!("feed the {BLOCKED_WORD}"))),
    );
    let inv = emulator
        .invoke_with(
            event,
            InvokeOptions {
                trace_id: Some(trace.clone()),
                ..InvokeOptions::default()
            },
        )
        .await;
    let r = inv.http_response().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["guardrail"]["action"], "input_blocked");
    let (summary, doc) = emulator.evidence(&inv.request_id).await;
    assert_eq!(summary["guardrailAction"], "input_blocked", "{summary}");
    assert_eq!(summary["guardrailPolicies"], "wordPolicy:custom");
    assert_eq!(summary["guardrailTextUnits"], 2, "{summary}");
    assert!(summary["guardrailCostUsd"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["level"], "INFO");
    assert_eq!(doc["GuardrailInterventions"], 1);
    let root = trace
        .split(';')
        .find_map(|p| p.strip_prefix("Root="))
        .unwrap();
    let nodes = xray::check_trace(&daemon.collect(Duration::from_millis(300)), root).unwrap();
    let segment = nodes.iter().find(|n| n["type"] != "subsegment").unwrap();
    assert_eq!(
        segment["annotations"]["guardrail_action"], "input_blocked",
        "{segment}"
    );
    assert!(segment["metadata"]["cost.guardrailUsd"].as_f64().unwrap() > 0.0);
    let bedrock = nodes.iter().find(|n| n["namespace"] == "aws").unwrap();
    assert_eq!(
        bedrock["metadata"]["aws.bedrock.guardrail.action"],
        "input_blocked"
    );
    assert!(
        !nodes.iter().any(|n| n.to_string().contains(BLOCKED_WORD)),
        "no content in the trace"
    );
}
