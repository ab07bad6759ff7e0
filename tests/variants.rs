//! Model variants end to end: weighted sticky assignment, the fallback model on throttling (the
//! offline model serves both ids), and the variant on every piece of evidence.

mod evidence;
mod service_rig;

use std::time::Duration;

use axum::http::StatusCode;
use bedrock_offline::OfflineConfig;
use evidence::emf;
use serde_json::json;
use service_rig::{config, post_json, service, sse_events};

const AB: &str = "micro=us.amazon.nova-micro-v1:0:50,lite=us.amazon.nova-lite-v1:0:50";

fn body(text: &str, conversation: &str) -> String {
    json!({"messages": [{"role": "user", "content": text}], "conversationId": conversation})
        .to_string()
}

#[tokio::test]
async fn conversations_keep_their_variant_and_evidence_names_it() {
    let mut c = config();
    c.model_variants = Some(AB.into());
    let svc = service(c, OfflineConfig::default()).await;
    let mut seen = std::collections::HashMap::new();
    for i in 0..20 {
        let conv = format!("conversation-{i}");
        let first = svc
            .send(post_json("/api/chat", &body("hi", &conv)))
            .await
            .json();
        let again = svc
            .send(post_json("/api/chat", &body("again", &conv)))
            .await
            .json();
        assert_eq!(
            first["variant"], again["variant"],
            "sticky per conversation"
        );
        assert_eq!(first["model"], again["model"]);
        let expected_model = if first["variant"] == "micro" {
            "us.amazon.nova-micro-v1:0"
        } else {
            "us.amazon.nova-lite-v1:0"
        };
        assert_eq!(first["model"], expected_model);
        *seen
            .entry(first["variant"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both variants get traffic: {seen:?}");

    let docs = svc.wait_emf(40).await;
    for d in &docs {
        emf::validate(d).unwrap();
        assert!(d["Variant"] == "micro" || d["Variant"] == "lite");
        assert!(emf::dimension_sets(d, "CostUSD").contains(&vec![
            "Service".to_owned(),
            "Model".to_owned(),
            "Variant".to_owned()
        ]));
    }
    // Cost per variant follows each variant's own price.
    let lite = docs.iter().find(|d| d["Variant"] == "lite").unwrap();
    let micro = docs.iter().find(|d| d["Variant"] == "micro").unwrap();
    let per_token = |d: &serde_json::Value| {
        d["CostUSD"].as_f64().unwrap()
            / (d["InputTokens"].as_f64().unwrap() + d["OutputTokens"].as_f64().unwrap())
    };
    assert!(
        per_token(lite) > per_token(micro),
        "Nova Lite is dearer per token"
    );
}

#[tokio::test]
async fn a_throttled_model_falls_back_once() {
    let mut c = config();
    c.fallback_model_id = Some("us.amazon.nova-lite-v1:0".into());
    let svc = service(c, OfflineConfig::default()).await;
    // The primary (Nova Micro) is throttled on every attempt; the fallback is not.
    let r = svc
        .send(post_json(
            "/api/chat",
            &body("#fault=throttle@nova-micro hello", "c1"),
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    assert_eq!(
        v["model"], "us.amazon.nova-lite-v1:0",
        "the model that answered"
    );
    assert_eq!(v["variant"], "default", "the variant assigned");
    let d = &svc.wait_emf(1).await[0];
    emf::validate(d).unwrap();
    assert_eq!(d["fallback"], true);
    assert_eq!(d["Model"], "us.amazon.nova-lite-v1:0");
    assert_eq!(d["Throttles"], 3, "three throttled attempts on the primary");
    assert_eq!(d["Errors"], 0);

    // Streaming falls back too, before the stream opens.
    let r = svc
        .send(post_json(
            "/api/chat/stream",
            &body("#fault=throttle@nova-micro hi", "c2"),
        ))
        .await;
    let events = sse_events(std::str::from_utf8(&r.body).unwrap());
    assert_eq!(events[0].1["model"], "us.amazon.nova-lite-v1:0");
    assert_eq!(events.last().unwrap().0, "done");

    // Errors other than throttling/unavailability do not fall back.
    let r = svc
        .send(post_json(
            "/api/chat",
            &body("#fault=model-error@nova-micro hi", "c3"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    // Both throttled: one fallback attempt, then the client gets 429.
    let r = svc
        .send(post_json("/api/chat", &body("#fault=throttle hi", "c4")))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let docs = svc.emf_docs();
    let both = docs
        .iter()
        .find(|d| d["errorCode"] == "rate_limited")
        .unwrap();
    assert_eq!(both["fallback"], true);
    assert_eq!(both["Throttles"], 6);
}

#[tokio::test]
async fn choosing_a_variant_is_an_operator_decision() {
    let mut c = config();
    c.model_variants = Some(AB.into());
    let svc = service(c.clone(), OfflineConfig::default()).await;
    let chosen =
        json!({"messages": [{"role": "user", "content": "x"}], "variant": "lite"}).to_string();
    let r = svc.send(post_json("/api/chat", &chosen)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not enabled")
    );
    c.allow_variant_choice = true;
    let svc = service(c, OfflineConfig::default()).await;
    let r = svc.send(post_json("/api/chat", &chosen)).await;
    assert_eq!(r.json()["variant"], "lite");
    assert_eq!(r.json()["model"], "us.amazon.nova-lite-v1:0");
}

#[tokio::test]
async fn bad_variant_configuration_stops_start_up_with_a_clear_error() {
    for (spec, expected) in [
        (
            "a=us.amazon.nova-micro-v1:0:50,a=us.amazon.nova-lite-v1:0:50",
            "duplicate variant name",
        ),
        (
            "a=acme.secret-model-v1:0:50",
            "no price for acme.secret-model-v1:0",
        ),
        ("a=us.amazon.nova-micro-v1:0:-3", "weight"),
    ] {
        let mut c = config();
        c.model_variants = Some(spec.into());
        let err = chatbot_service::hosts::start(
            c,
            chatbot_service::hosts::ModelEndpoint::Local("http://127.0.0.1:9".into()),
            Default::default(),
        )
        .await
        .err()
        .expect("start-up must fail");
        assert!(err.contains(expected), "{err}");
    }
}
