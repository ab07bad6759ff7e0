//! Every dollar counted, through the router on the real offline model: prompt-cache tokens at
//! their own prices on both paths, estimates for usage that never came (abort, mid-stream
//! failure, timeout), and prices by the tier that actually served the call.

mod evidence;
mod service_rig;

use std::str::FromStr;
use std::time::Duration;

use axum::http::StatusCode;
use bedrock_offline::OfflineConfig;
use chatbot_service::config::{LatencyMode, ServiceConfig, ServiceTierName, Switch};
use chatbot_service::model::estimate_tokens;
use evidence::emf;
use http_body_util::BodyExt;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use service_rig::{TestService, chat_body, config, post_json, service, sse_events};
use tower::ServiceExt;

/// 36 words: long enough for the offline model's default 20-token cache minimum.
fn long_system_prompt() -> String {
    "You are a careful assistant for a small team. "
        .repeat(4)
        .trim()
        .to_owned()
}

fn lit(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(&v.to_string()).unwrap_or_else(|_| panic!("not a number: {v}"))
}

/// Per-1K prices: input, cache read, cache write, output.
struct Price([&'static str; 4]);

const NOVA_MICRO: Price = Price(["0.000035", "0.00000875", "0.000035", "0.00014"]);

impl Price {
    /// The model cost of a response's `usage`, each kind of token at its own rate.
    fn of(&self, usage: &Value) -> Decimal {
        let n = |k: &str| Decimal::from(usage[k].as_u64().unwrap_or(0));
        let [input, read, write, output] = self.0.map(lit);
        ((n("inputTokens") * input
            + n("cacheReadInputTokens") * read
            + n("cacheWriteInputTokens") * write
            + n("outputTokens") * output)
            / Decimal::from(1000))
        .normalize()
    }
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

fn caching() -> ServiceConfig {
    let mut c = config();
    c.prompt_cache = Switch::On;
    c.system_prompt = long_system_prompt();
    c
}

#[tokio::test]
async fn cache_reads_and_writes_are_priced_exactly_buffered_and_streaming() {
    let svc = service(caching(), OfflineConfig::default()).await;
    let system_tokens = 36;

    // Buffered: the first call writes the system prompt, the repeat reads it.
    let body = chat_body("what does caching save");
    for (round, key) in [(1, "cacheWriteInputTokens"), (2, "cacheReadInputTokens")] {
        let r = svc.send(post_json("/api/chat", &body)).await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        let usage = &v["usage"];
        assert_eq!(usage[key], system_tokens, "round {round}: {v}");
        let other = if round == 1 {
            "cacheReadInputTokens"
        } else {
            "cacheWriteInputTokens"
        };
        assert!(usage.get(other).is_none(), "0 is left out: {v}");
        let expected = NOVA_MICRO.of(usage);
        assert_eq!(dec(&v["cost"]["modelUsd"]), expected, "round {round}");
        assert_eq!(dec(&v["cost"]["totalUsd"]), expected);
        assert!(v["cost"].get("estimated").is_none());
        let d = emf_for(&svc, r.request_id()).await;
        assert_eq!(d[key], system_tokens, "{d}");
        assert_eq!(dec(&d["CostUSD"]), expected);
        assert_eq!(d["InputTokens"], usage["inputTokens"], "cache tokens apart");
    }

    // Streaming, with history: the system prompt is read, system + history is written (the
    // checkpoint closing the history); the repeat reads all of it.
    let conversation = json!({"messages": [
        {"role": "user", "content": "tell me about prompt caching please"},
        {"role": "assistant", "content": "It keeps a prefix of the input for a few minutes."},
        {"role": "user", "content": "and what does it cost"}
    ]})
    .to_string();
    let history_tokens = 6 + 11;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = svc.send(post_json("/api/chat/stream", &conversation)).await;
        let events = sse_events(std::str::from_utf8(&r.body).unwrap());
        let (name, done) = events.last().unwrap();
        assert_eq!(name, "done", "{events:?}");
        let usage = &done["usage"];
        let expected = NOVA_MICRO.of(usage);
        assert_eq!(dec(&done["cost"]["modelUsd"]), expected, "{done}");
        let d = emf_for(&svc, r.request_id()).await;
        assert_eq!(dec(&d["CostUSD"]), expected);
        for key in ["cacheReadInputTokens", "cacheWriteInputTokens"] {
            assert_eq!(d.get(key), usage.get(key), "{key}: {d}");
        }
        seen.push((
            usage["cacheReadInputTokens"].as_u64().unwrap_or(0),
            usage["cacheWriteInputTokens"].as_u64().unwrap_or(0),
        ));
    }
    assert_eq!(
        seen,
        vec![
            (system_tokens, history_tokens),
            (system_tokens + history_tokens, 0)
        ]
    );
}

/// The characters the service sends for a one-message request, as its estimator counts them.
fn input_estimate(system: &str, message: &str) -> u64 {
    estimate_tokens(system.chars().count() + message.chars().count())
}

/// The model cost of estimated usage at Nova Micro prices.
fn estimated_cost(input: u64, output: u64) -> Decimal {
    ((Decimal::from(input) * lit("0.000035") + Decimal::from(output) * lit("0.00014"))
        / Decimal::from(1000))
    .normalize()
}

#[tokio::test]
async fn usage_that_never_came_is_estimated_and_flagged() {
    let c = config();
    let system = c.system_prompt.clone();
    let svc = service(c, OfflineConfig::default()).await;

    // Mid-stream failure: three deltas, then an exception frame, no usage.
    let text = "explain it all #fault=midstream";
    let r = svc
        .send(post_json("/api/chat/stream", &chat_body(text)))
        .await;
    let events = sse_events(std::str::from_utf8(&r.body).unwrap());
    assert_eq!(events.last().unwrap().0, "error", "{events:?}");
    let streamed: usize = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap().chars().count())
        .sum();
    assert!(streamed > 0);
    let d = emf_for(&svc, r.request_id()).await;
    assert_eq!(d["costEstimated"], true, "{d}");
    assert_eq!(
        dec(&d["CostUSD"]),
        estimated_cost(input_estimate(&system, text), estimate_tokens(streamed)),
        "input chars/4 + streamed chars/4: {d}"
    );
    assert!(
        d.get("InputTokens").is_none(),
        "estimates are not token counts"
    );

    // A buffered call that times out: nothing streamed, the input is estimated.
    let text = "are you there #fault=hang";
    let r = svc.send(post_json("/api/chat", &chat_body(text))).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    let d = emf_for(&svc, r.request_id()).await;
    assert_eq!(d["costEstimated"], true, "{d}");
    assert_eq!(
        dec(&d["CostUSD"]),
        estimated_cost(input_estimate(&system, text), 0)
    );

    // The client hangs up after the first delta of a slow stream.
    let text = "take your time #fault=slow";
    let res = svc
        .router
        .clone()
        .oneshot(post_json("/api/chat/stream", &chat_body(text)))
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut body = res.into_body();
    let mut received = String::new();
    while !received.contains("event: delta") {
        let frame = body.frame().await.unwrap().unwrap();
        if let Some(bytes) = frame.data_ref() {
            received.push_str(&String::from_utf8_lossy(bytes));
        }
    }
    drop(body);
    let received_chars: usize = sse_events(&received)
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap().chars().count())
        .sum();
    let d = emf_for(&svc, &id).await;
    assert_eq!(d["clientAborted"], true, "{d}");
    assert_eq!(d["costEstimated"], true, "{d}");
    // The service may have received a word more than the client read before hanging up.
    let output_usd = dec(&d["CostUSD"]) - estimated_cost(input_estimate(&system, text), 0);
    let output_tokens = output_usd * Decimal::from(1000) / lit("0.00014");
    assert_eq!(output_tokens, output_tokens.trunc(), "{d}");
    assert!(
        output_tokens >= Decimal::from(estimate_tokens(received_chars))
            && output_tokens < lit("20"),
        "{output_tokens} estimated output tokens for {received_chars} characters seen: {d}"
    );
}

#[tokio::test]
async fn calls_are_priced_by_the_tier_that_served_them() {
    // Claude 3.5 Haiku has a latency-optimized price (kept for historical data).
    let mut c = config();
    c.model_id = "us.anthropic.claude-3-5-haiku-20241022-v1:0".into();
    c.latency_mode = Some(LatencyMode::Optimized);
    let svc = service(c, OfflineConfig::default()).await;
    let optimized = Price(["0.001", "0", "0", "0.005"]);
    let standard = Price(["0.0008", "0.00008", "0.001", "0.004"]);
    for (text, served, price) in [
        ("fast please", "optimized", &optimized),
        // Asked for optimized, served standard: priced standard.
        (
            "fast please #served-latency=standard",
            "standard",
            &standard,
        ),
    ] {
        let r = svc.chat(text).await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        assert_eq!(dec(&v["cost"]["modelUsd"]), price.of(&v["usage"]), "{text}");
        let d = emf_for(&svc, r.request_id()).await;
        assert_eq!(d["servedTier"], served, "{d}");
    }

    // A tier without a price: no cost, flagged unknown — never the standard price instead.
    let mut c = config();
    c.service_tier = Some(ServiceTierName::Priority);
    let svc = service(c, OfflineConfig::default()).await;
    let r = svc.chat("urgent").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["cost"].is_null(), "{}", r.json());
    let d = emf_for(&svc, r.request_id()).await;
    assert_eq!(d["servedTier"], "priority");
    assert_eq!(d["costUnknown"], true);
    assert!(d.get("CostUSD").is_none(), "{d}");
    // The same service, served on the default tier: priced.
    let r = svc.chat("urgent #served-tier=default").await;
    let v = r.json();
    assert_eq!(dec(&v["cost"]["modelUsd"]), NOVA_MICRO.of(&v["usage"]));
    assert_eq!(
        emf_for(&svc, r.request_id()).await["servedTier"],
        "standard"
    );
}

/// The estimator (characters ÷ 4) against the offline model's own input counts (one token per
/// word) on texts of different shapes; the figures are in docs/observability.md (Cost).
#[tokio::test]
async fn the_input_estimator_against_the_offline_models_counts() {
    let mut c = config();
    c.system_prompt = "You are a helpful assistant.".into();
    let system = c.system_prompt.clone();
    let svc = service(c, OfflineConfig::default()).await;
    let samples = [
        ("short question", "What is the capital of France?"),
        (
            "English prose",
            "The quick brown fox jumps over the lazy dog while the farmer watches from the \
             porch, wondering whether the weather will hold until the harvest is finished \
             and the barn is full again before the first frost of the autumn arrives.",
        ),
        (
            "code",
            "fn main() { let xs: Vec<u32> = (0..10).map(|i| i * i).collect(); \
             println!(\"{:?}\", xs.iter().sum::<u32>()); }",
        ),
        (
            "long words",
            "Internationalization considerations notwithstanding, telecommunications \
             infrastructure modernization necessitates comprehensive interoperability.",
        ),
    ];
    println!(
        "{:<16} {:>8} {:>9} {:>7}",
        "text", "offline", "estimate", "ratio"
    );
    for (label, text) in samples {
        let v = svc.chat(text).await.json();
        let counted = v["usage"]["inputTokens"].as_u64().unwrap();
        let estimated = input_estimate(&system, text);
        let ratio = estimated as f64 / counted as f64;
        println!("{label:<16} {counted:>8} {estimated:>9} {ratio:>7.2}");
        // Never below the offline count, at most about three times it (code, long words):
        // an estimate errs towards counting the spend.
        assert!(
            (1.0..=3.5).contains(&ratio),
            "{label}: {estimated} vs {counted}"
        );
    }
}
