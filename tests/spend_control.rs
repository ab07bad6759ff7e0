//! No way around the protections: requests that skip CloudFront are refused; behind CloudFront
//! the client is the viewer address CloudFront reports, and in Lambda the source IP API Gateway
//! reports — never a header a client sets on a direct call; a client cannot steer its A/B
//! variant by choosing conversation ids. Router tests (`oneshot`) and the Lambda host through
//! the Runtime API emulator with the DynamoDB store on moto.

mod evidence;
mod lambda_emulator;
mod moto_rig;
mod service_rig;

use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bedrock_offline::{self as offline, OfflineConfig};
use chatbot_service::secrets::Secret;
use lambda_emulator::events::http_api_v2;
use lambda_emulator::{Emulator, InvokeOptions};
use moto_rig::moto::Moto;
use serde_json::{Value, json};
use service_rig::{TestService, chat_body, config, service};

const SECRET: &str = "origin-secret-for-tests";

fn chat_from(viewer: Option<&str>, secret: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/api/chat").header("content-type", "application/json");
    if let Some(v) = viewer {
        b = b.header("cloudfront-viewer-address", v);
    }
    if let Some(s) = secret {
        b = b.header("x-origin-verify", s);
    }
    b.body(Body::from(chat_body("hello"))).unwrap()
}

async fn behind_cloudfront(client_budget: Option<&str>) -> TestService {
    let mut c = config();
    c.origin_secrets = vec![
        Secret::parse("previous-secret-still-accepted").unwrap(),
        Secret::parse(SECRET).unwrap(),
    ];
    c.client_daily_budget_usd = client_budget.map(str::to_owned);
    service(c, OfflineConfig::default()).await
}

#[tokio::test]
async fn requests_without_the_origin_secret_are_refused_with_evidence() {
    let svc = behind_cloudfront(None).await;
    for (label, secret) in [
        ("none", None),
        ("wrong", Some("guess")),
        ("prefix", Some("origin")),
    ] {
        let r = svc.send(chat_from(Some("198.51.100.7:1"), secret)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{label}");
        assert_eq!(r.error_code(), "forbidden");
    }
    let health = svc
        .send(Request::get("/api/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        health.status,
        StatusCode::FORBIDDEN,
        "every route is guarded"
    );
    // Both accepted values work (a rotation in progress).
    for secret in [SECRET, "previous-secret-still-accepted"] {
        let r = svc
            .send(chat_from(Some("198.51.100.7:1"), Some(secret)))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let docs = svc.wait_emf(6).await;
    let refused: Vec<&Value> = docs.iter().filter(|d| d["statusCode"] == 403).collect();
    assert_eq!(refused.len(), 4);
    for d in refused {
        evidence::emf::validate(d).unwrap();
        assert_eq!(d["errorCode"], "forbidden");
        assert_eq!(d["Errors"], 0, "a refusal is not a service failure");
    }
}

#[tokio::test]
async fn behind_cloudfront_the_client_is_the_viewer_address() {
    // Room for one request's worst case, then refused.
    let svc = behind_cloudfront(Some("0.0001")).await;
    let first = |port: u16| format!("198.51.100.7:{port}");
    let mut served = 0;
    loop {
        let r = svc
            .send(chat_from(Some(&first(1000 + served)), Some(SECRET)))
            .await;
        if r.status != StatusCode::OK {
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(r.error_code(), "budget_exhausted");
            assert!(r.headers.contains_key("retry-after"));
            break;
        }
        served += 1;
        assert!(served < 100, "never refused");
    }
    assert!(served >= 1);
    // Another port of the same address is the same client; another address is served.
    let again = svc.send(chat_from(Some(&first(9999)), Some(SECRET))).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    let other = svc
        .send(chat_from(Some("203.0.113.9:1000"), Some(SECRET)))
        .await;
    assert_eq!(other.status, StatusCode::OK);
    // IPv6: one /64 is one client.
    let mut v6_served = 0;
    while svc
        .send(chat_from(
            Some(&format!("2001:db8:1:2::{v6_served:x}:443")),
            Some(SECRET),
        ))
        .await
        .status
        == StatusCode::OK
    {
        v6_served += 1;
        assert!(v6_served < 100, "each IPv6 address would be a new client");
    }
    assert_eq!(v6_served, served, "the /64 got one client's budget");
}

#[tokio::test]
async fn a_keyed_assignment_is_not_the_public_hash() {
    // With a hash key, which variant a conversation id lands on cannot be computed from the
    // public (unkeyed) hash: over 400 ids the two assignments disagree about as often as chance.
    let variants = "a=us.amazon.nova-micro-v1:0:50,b=us.amazon.nova-lite-v1:0:50";
    let mut keyed = config();
    keyed.model_variants = Some(variants.into());
    keyed.hash_key = Some(Secret::parse("deploy-secret-key-0001").unwrap());
    let keyed = service(keyed, OfflineConfig::default()).await;
    let mut other_key = config();
    other_key.model_variants = Some(variants.into());
    other_key.hash_key = Some(Secret::parse("deploy-secret-key-0002").unwrap());
    let other_key = service(other_key, OfflineConfig::default()).await;
    let assign = |svc: &TestService, id: &str| {
        svc.state
            .variants()
            .assign(Some(id), None)
            .unwrap()
            .name
            .clone()
    };
    let n = 400;
    let differ = (0..n)
        .filter(|i| {
            let id = format!("conv-{i}");
            let public = chatbot_service::variants::bucket(&id, 100) < 50;
            (assign(&keyed, &id) == "a") != public
        })
        .count();
    assert!(
        (120..=280).contains(&differ),
        "keyed vs public hash differ on {differ} of {n}"
    );
    let between_keys = (0..n)
        .filter(|i| {
            let id = format!("conv-{i}");
            assign(&keyed, &id) != assign(&other_key, &id)
        })
        .count();
    assert!((120..=280).contains(&between_keys), "{between_keys}");
    // Still sticky, and still weighted.
    for i in 0..50 {
        let id = format!("c{i}");
        assert_eq!(assign(&keyed, &id), assign(&keyed, &id));
    }
    let a = (0..2000)
        .filter(|i| assign(&keyed, &format!("w{i}")) == "a")
        .count();
    assert!((900..=1100).contains(&a), "{a} of 2000 on a 50/50 split");
}

/// The Lambda host with the DynamoDB store: the client is API Gateway's source IP, not a
/// header; a refused client gets 429 with Retry-After in the HTTP API response, another source
/// is served.
#[tokio::test]
async fn in_lambda_the_client_is_the_source_ip_api_gateway_reports() {
    let moto = Moto::start_serialized();
    let model = offline::spawn(OfflineConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let endpoint = model.endpoint_url();
    let out = Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .args(["create-table", "--table", "lambda-state"])
        .env("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = [
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint.as_str()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("CHATBOT_STATE_TABLE", "lambda-state"),
        ("CHATBOT_HASH_KEY", "lambda-test-hash-key-01"),
        ("CHATBOT_CLIENT_DAILY_BUDGET_USD", "0.0002"),
    ];
    let emulator = Emulator::start(env!("CARGO_BIN_EXE_bootstrap"), &env).await;
    let invoke = |source: &'static str, forged: &'static str| {
        let mut event = http_api_v2(
            "POST",
            "/api/chat",
            &[
                ("content-type", "application/json"),
                // A client may send these on a direct call; they must not change who it is.
                ("x-forwarded-for", forged),
                ("cloudfront-viewer-address", forged),
            ],
            Some(&json!({"messages": [{"role": "user", "content": "hi"}]}).to_string()),
        );
        event["requestContext"]["http"]["sourceIp"] = json!(source);
        let emulator = &emulator;
        async move {
            emulator
                .invoke_with(event, InvokeOptions::default())
                .await
                .http_response()
                .unwrap()
        }
    };
    let mut served = 0;
    let refusal = loop {
        // A different forged address each time: ignored.
        let forged: &'static str = Box::leak(format!("10.0.0.{served}:1").into_boxed_str());
        let r = invoke("198.51.100.20", forged).await;
        if r.status != 200 {
            break r;
        }
        served += 1;
        assert!(served < 100, "never refused");
    };
    assert!(served >= 1);
    assert_eq!(refusal.status, 429);
    assert_eq!(refusal.json().unwrap()["error"]["code"], "budget_exhausted");
    let retry: u64 = refusal.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry));
    let other = invoke("198.51.100.21", "10.0.0.1:1").await;
    assert_eq!(other.status, 200);
    drop(moto);
}
