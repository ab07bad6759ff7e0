//! The HTTP contract through the router with `oneshot` (no socket for the API), backed by the
//! real AWS SDK talking to the offline model over loopback.

mod evidence;
mod service_rig;

use std::str::FromStr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bedrock_offline::OfflineConfig;
use evidence::emf;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use service_rig::{chat_body, config, default_service, post_json, service, sse_events};

#[tokio::test]
async fn emf_validator_catches_each_broken_rule() {
    emf::self_check();
}

#[tokio::test]
async fn health_reports_model_and_limits() {
    let svc = default_service().await;
    let r = svc
        .send(Request::get("/api/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["model"], "us.amazon.nova-micro-v1:0");
    assert_eq!(
        v["limits"],
        json!({"maxMessages": 40, "maxMessageChars": 4000, "maxTotalChars": 24000})
    );
    assert!(!r.request_id().is_empty());
}

#[tokio::test]
async fn chat_returns_the_contract_shape_with_exact_cost() {
    let svc = default_service().await;
    let body = json!({
        "messages": [
            {"role": "user", "content": "What is Rust?"},
            {"role": "assistant", "content": "A language."},
            {"role": "user", "content": "Tell me more about it"}
        ],
        "conversationId": "conv-1"
    });
    let r = svc.send(post_json("/api/chat", &body.to_string())).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    assert_eq!(v["requestId"], r.request_id());
    assert_eq!(v["conversationId"], "conv-1");
    assert_eq!(v["model"], "us.amazon.nova-micro-v1:0");
    assert_eq!(v["stopReason"], "end_turn");
    let reply = v["reply"].as_str().unwrap();
    assert!(
        reply.to_lowercase().contains("offline") && reply.contains("Tell me more about it"),
        "{reply}"
    );

    // The offline token model: one token per word; input = system prompt + all messages.
    let words = |s: &str| s.split_whitespace().count() as u64;
    let system = chatbot_service::config::DEFAULT_SYSTEM_PROMPT;
    let input = words(system)
        + words("What is Rust?")
        + words("A language.")
        + words("Tell me more about it");
    let output = words(reply);
    assert_eq!(
        v["usage"],
        json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output})
    );

    // Nova Micro: $0.000035 / $0.00014 per 1K tokens; locally there is no Lambda or API Gateway part.
    let expected = (Decimal::from(input) * Decimal::from_str("0.000035").unwrap()
        + Decimal::from(output) * Decimal::from_str("0.00014").unwrap())
        / Decimal::from(1000);
    let got = Decimal::from_str(&v["cost"]["totalUsd"].to_string()).unwrap();
    assert_eq!(got, expected.normalize());
    assert_eq!(v["cost"]["modelUsd"], v["cost"]["totalUsd"]);
    assert!(v["cost"]["computeUsd"].is_null() && v["cost"]["apiUsd"].is_null());
    assert!(v["latencyMs"]["total"].as_u64().unwrap() >= v["latencyMs"]["model"].as_u64().unwrap());

    let docs = svc.wait_emf(1).await;
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    emf::validate(d).unwrap();
    assert_eq!(d["requestId"], r.request_id());
    assert_eq!(d["InputTokens"], input);
    assert_eq!(d["OutputTokens"], output);
    assert_eq!(d["CostUSD"], v["cost"]["totalUsd"]);
    assert_eq!(d["conversationId"], "conv-1");
    assert_eq!(d["statusCode"], 200);
    assert_eq!(d["stopReason"], "end_turn");
    assert_eq!(d["Model"], "us.amazon.nova-micro-v1:0");
    assert_eq!(d["coldStart"], true);
    assert_eq!(d["Variant"], "default");
    assert_eq!(v["variant"], "default");
    assert_eq!(
        emf::dimension_sets(d, "Latency"),
        vec![vec!["Service"], vec!["Service", "Model", "Variant"]]
    );
    assert_eq!(
        emf::dimension_sets(d, "InputTokens"),
        vec![vec!["Service", "Model", "Variant"]]
    );
}

#[tokio::test]
async fn max_tokens_cuts_the_reply() {
    let mut c = config();
    c.max_tokens = 5;
    let svc = service(c, OfflineConfig::default()).await;
    let r = svc.chat("hello").await;
    let v = r.json();
    assert_eq!(v["stopReason"], "max_tokens");
    assert_eq!(v["usage"]["outputTokens"], 5);
    assert_eq!(v["reply"].as_str().unwrap().split_whitespace().count(), 5);
}

/// Each row of the error table, with its status, code and request id.
#[tokio::test]
async fn every_error_row_is_reachable() {
    let mut c = config();
    c.diagnostic_routes = true;
    let svc = service(c, OfflineConfig::default()).await;
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post_json("/api/chat", "{"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Request::get("/api/nope").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Request::get("/elsewhere").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Request::get("/api/chat").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::delete("/api/health").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::post("/api/chat")
                .header("content-type", "text/plain")
                .body(Body::from(chat_body("x")))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Request::post("/api/chat")
                .body(Body::from(chat_body("x")))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=throttle")),
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=not-ready")),
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=quota")),
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=model-error")),
            StatusCode::BAD_GATEWAY,
            "model_error",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=error")),
            StatusCode::BAD_GATEWAY,
            "model_error",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=malformed")),
            StatusCode::BAD_GATEWAY,
            "model_error",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=unavailable")),
            StatusCode::SERVICE_UNAVAILABLE,
            "model_unavailable",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=access-denied")),
            StatusCode::SERVICE_UNAVAILABLE,
            "model_unavailable",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=not-found")),
            StatusCode::SERVICE_UNAVAILABLE,
            "model_unavailable",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=model-timeout")),
            StatusCode::GATEWAY_TIMEOUT,
            "model_timeout",
        ),
        (
            post_json("/api/chat", &chat_body("#fault=validation")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            post_json("/api/_diag/panic", "{}"),
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
        ),
    ];
    let n = cases.len();
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let r = svc.send(req).await;
        assert_eq!(
            r.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), code, "{what}");
    }
    // Every one of them left its EMF document, valid, with the right error classification.
    let docs = svc.wait_emf(n).await;
    for d in &docs {
        emf::validate(d).unwrap();
        assert!(
            d["Latency"].is_number(),
            "every request is a Latency sample"
        );
        assert!(d["errorCode"].is_string(), "{d}");
    }
    // Client mistakes are not Errors (the alarm would page for someone else's typo); their
    // code is still on the document for Logs Insights.
    let server_failures = docs.iter().filter(|d| d["Errors"] == 1).count();
    let client_errors = docs
        .iter()
        .filter(|d| d["Errors"] == 0 && d["statusCode"].as_u64().unwrap() < 500)
        .count();
    assert_eq!(client_errors, 8, "400×2, 404×2, 405×2, 415×2");
    assert_eq!(server_failures, n - 8);
    let timeout = docs
        .iter()
        .find(|d| d["errorCode"] == "model_timeout")
        .unwrap();
    assert!(timeout.get("ErrorCode").is_none(), "no per-code dimension");
    assert_eq!(
        emf::dimension_sets(timeout, "Errors"),
        vec![vec!["Service"], vec!["Service", "Model", "Variant"]]
    );
}

#[tokio::test]
async fn payload_too_large_is_checked_before_parsing() {
    let svc = default_service().await;
    let big = format!(
        "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}]}}",
        "x".repeat(70_000)
    );
    // Declared length over the limit.
    let r = svc.send(post_json("/api/chat", &big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "payload_too_large");
    // No declared length (chunked): stopped while reading.
    let chunks = futures_util::stream::iter(
        big.into_bytes()
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let req = Request::post("/api/chat")
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let r = svc.send(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "payload_too_large");
}

#[tokio::test]
async fn validation_messages_name_the_field() {
    let svc = default_service().await;
    let cases = [
        (json!({"messages": []}), "messages: must hold 1 to 40"),
        (
            json!({"messages": [{"role": "assistant", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": "   "}]}),
            "messages[0].content: must not be empty",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x".repeat(4001)}]}),
            "messages[0].content: 4001 characters",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "conversationId": "bad id"}),
            "conversationId",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "stream": true}),
            "unknown field `stream`",
        ),
        (
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
        ),
        (json!({"messages": "hi"}), "messages:"),
    ];
    for (body, expected) in cases {
        let r = svc.send(post_json("/api/chat", &body.to_string())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.error_code(), "invalid_request");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(expected),
            "{message:?} should mention {expected:?}"
        );
    }
    let r = svc
        .send(post_json("/api/chat", "{\n\"messages\": [}"))
        .await;
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("malformed JSON") && message.contains("line 2"),
        "{message}"
    );
}

#[tokio::test]
async fn control_characters_are_stripped_before_the_model_sees_them() {
    let svc = default_service().await;
    let r = svc.chat("line one\r\nline\u{0007} two").await;
    assert_eq!(r.status, StatusCode::OK);
    let reply = r.json()["reply"].as_str().unwrap().to_owned();
    assert!(
        reply.contains("line one\nline two") || reply.contains("line one line two"),
        "{reply}"
    );
    assert!(!reply.contains('\u{0007}') && !reply.contains('\r'));
}

#[tokio::test]
async fn throttling_that_clears_within_the_retries_succeeds() {
    let svc = default_service().await;
    let r = svc.chat("#fault=throttle:2 hello").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let d = &svc.wait_emf(1).await[0];
    assert_eq!(d["Throttles"], 2);
    assert_eq!(d["retries"], 2);
    assert_eq!(d["Errors"], 0);
    // One attempt too many: the client gets 429.
    let r = svc.chat("#fault=throttle:3 hello").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_hung_model_times_out_within_the_deadline() {
    let mut c = config();
    c.attempt_timeout_ms = 300;
    c.model_timeout_ms = 800;
    let svc = service(c, OfflineConfig::default()).await;
    let t = Instant::now();
    let r = svc.chat("#fault=hang").await;
    let took = t.elapsed();
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.error_code(), "model_timeout");
    assert!(
        took >= Duration::from_millis(300),
        "gave up before an attempt timed out: {took:?}"
    );
    assert!(
        took < Duration::from_millis(800 + 700),
        "deadline 800 ms not kept: {took:?}"
    );
}

#[tokio::test]
async fn cors_preflight_is_answered_for_configured_origins_only() {
    let mut c = config();
    c.cors_origins = vec!["https://chat.example.com".into()];
    let svc = service(c, OfflineConfig::default()).await;
    let preflight = |origin: &str| {
        Request::options("/api/chat")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let r = svc.send(preflight("https://chat.example.com")).await;
    assert!(r.status.is_success());
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://chat.example.com"
    );
    let methods = r.headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    assert!(!r.request_id().is_empty());
    let r = svc.send(preflight("https://evil.example.net")).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // Default: nothing cross-origin.
    let svc = default_service().await;
    let r = svc.send(preflight("https://chat.example.com")).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn stream_sends_meta_deltas_done_with_totals_equal_to_usage() {
    let svc = default_service().await;
    let body =
        json!({"messages": [{"role": "user", "content": "stream me"}], "conversationId": "s-1"});
    let r = svc
        .send(post_json("/api/chat/stream", &body.to_string()))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(std::str::from_utf8(&r.body).unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"meta"));
    assert_eq!(names.last(), Some(&"done"));
    assert!(names[1..names.len() - 1].iter().all(|n| *n == "delta"));
    assert!(names.len() > 10, "{names:?}");
    let meta = &events[0].1;
    assert_eq!(meta["requestId"], r.request_id());
    assert_eq!(meta["conversationId"], "s-1");
    assert_eq!(meta["model"], "us.amazon.nova-micro-v1:0");
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    let done = &events.last().unwrap().1;
    let deltas = events.iter().filter(|(e, _)| e == "delta").count() as u64;
    assert_eq!(done["usage"]["outputTokens"], deltas, "one delta per token");
    assert_eq!(
        done["usage"]["outputTokens"],
        text.split_whitespace().count() as u64
    );
    assert_eq!(done["stopReason"], "end_turn");
    assert!(done["latencyMs"]["firstToken"].as_u64().is_some());

    // Same text as the buffered reply to the same conversation.
    let buffered = svc
        .send(post_json("/api/chat", &body.to_string()))
        .await
        .json();
    assert_eq!(buffered["reply"].as_str().unwrap(), text);
    assert_eq!(buffered["usage"], done["usage"]);

    let docs = svc.wait_emf(2).await;
    let d = docs
        .iter()
        .find(|d| d["requestId"] == r.request_id())
        .unwrap();
    emf::validate(d).unwrap();
    assert_eq!(d["OutputTokens"], done["usage"]["outputTokens"]);
    assert_eq!(d["CostUSD"], done["cost"]["totalUsd"]);
    assert!(d["TimeToFirstToken"].as_f64().unwrap() <= d["Latency"].as_f64().unwrap());
    assert!(d.get("clientAborted").is_none());
    assert!(d.get("costEstimated").is_none(), "usage came: exact");
}

#[tokio::test]
async fn stream_failure_before_the_first_byte_is_a_json_error() {
    let svc = default_service().await;
    let r = svc
        .send(post_json("/api/chat/stream", &chat_body("#fault=throttle")))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    let r = svc.send(post_json("/api/chat/stream", "{}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_midstream_exception_becomes_an_error_event() {
    let svc = default_service().await;
    for (fault, code) in [
        ("midstream", "model_error"),
        ("midstream-throttle", "rate_limited"),
        ("midstream-unavailable", "model_unavailable"),
        ("malformed", "model_error"),
    ] {
        let r = svc
            .send(post_json(
                "/api/chat/stream",
                &chat_body(&format!("#fault={fault}")),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{fault}");
        let events = sse_events(std::str::from_utf8(&r.body).unwrap());
        let (last, data) = events.last().unwrap();
        assert_eq!(last, "error", "{fault}: {events:?}");
        assert_eq!(data["code"], code, "{fault}");
        assert_eq!(data["requestId"], r.request_id());
        assert!(
            events.iter().any(|(e, _)| e == "delta"),
            "{fault}: the stream had begun"
        );
        assert!(!events.iter().any(|(e, _)| e == "done"));
    }
    let docs = svc.wait_emf(4).await;
    for d in &docs {
        emf::validate(d).unwrap();
        assert_eq!(d["Errors"], 1, "{d}");
        assert!(
            d["statusCode"].as_u64().unwrap() >= 429,
            "effective status: {d}"
        );
        // Tokens were generated but never reported: Bedrock may still bill them, so the
        // cost is estimated from what was sent and streamed, and flagged as such.
        assert_eq!(d["costEstimated"], true, "{d}");
        assert!(d["CostUSD"].as_f64().unwrap() > 0.0, "{d}");
    }
    let throttled = docs
        .iter()
        .find(|d| d["errorCode"] == "rate_limited")
        .unwrap();
    assert_eq!(throttled["Throttles"], 1);
}

#[tokio::test]
async fn every_response_carries_its_request_id() {
    let svc = default_service().await;
    let mut ids = std::collections::HashSet::new();
    for req in [
        Request::get("/api/health").body(Body::empty()).unwrap(),
        post_json("/api/chat", &chat_body("hi")),
        post_json("/api/chat", "nope"),
        Request::get("/missing").body(Body::empty()).unwrap(),
    ] {
        let r = svc.send(req).await;
        assert!(uuid::Uuid::parse_str(r.request_id()).is_ok());
        ids.insert(r.request_id().to_owned());
    }
    assert_eq!(ids.len(), 4, "fresh per request");
    let docs: Vec<Value> = svc.wait_emf(4).await;
    for d in docs {
        assert!(ids.contains(d["requestId"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn unknown_model_price_means_null_cost_and_a_cost_unknown_flag() {
    let mut c = config();
    c.model_id = "acme.mystery-model-v1:0".into();
    let svc = service(c, OfflineConfig::default()).await;
    let r = svc.chat("hi").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["cost"].is_null());
    let d = &svc.wait_emf(1).await[0];
    assert_eq!(d["costUnknown"], true);
    assert!(d.get("CostUSD").is_none(), "no price, no invented figure");
}

/// A second model, priced from its own row of the table: exact to the last digit.
#[tokio::test]
async fn nova_lite_cost_is_exact_too() {
    let mut c = config();
    c.model_id = "us.amazon.nova-lite-v1:0".into();
    let svc = service(c, OfflineConfig::default()).await;
    let v = svc.chat("price this answer for me").await.json();
    let tokens = |k: &str| Decimal::from(v["usage"][k].as_u64().unwrap());
    // Nova Lite: $0.00006 / $0.00024 per 1K tokens.
    let expected = (tokens("inputTokens") * Decimal::from_str("0.00006").unwrap()
        + tokens("outputTokens") * Decimal::from_str("0.00024").unwrap())
        / Decimal::from(1000);
    let got = Decimal::from_str(&v["cost"]["totalUsd"].to_string()).unwrap();
    assert_eq!(got, expected.normalize());
    let d = &svc.wait_emf(1).await[0];
    assert_eq!(
        Decimal::from_str(&d["CostUSD"].to_string()).unwrap(),
        expected.normalize()
    );
}

/// Every answer of the API router — success, error, stream, preflight, HEAD, panic — tells
/// browsers not to sniff its type and not to store it.
#[tokio::test]
async fn every_api_answer_carries_nosniff_and_no_store() {
    let mut c = config();
    c.diagnostic_routes = true;
    c.cors_origins = vec!["https://chat.example.com".into()];
    let svc = service(c, OfflineConfig::default()).await;
    let requests = [
        Request::get("/api/health").body(Body::empty()).unwrap(),
        Request::head("/api/health").body(Body::empty()).unwrap(),
        post_json("/api/chat", &chat_body("hi")),
        post_json("/api/chat/stream", &chat_body("hi")),
        post_json("/api/chat", "{"),
        post_json("/api/chat", &chat_body("#fault=throttle")),
        Request::get("/api/nope").body(Body::empty()).unwrap(),
        Request::get("/elsewhere").body(Body::empty()).unwrap(),
        Request::put("/api/chat").body(Body::empty()).unwrap(),
        Request::get("/api/conversations/unknown")
            .body(Body::empty())
            .unwrap(),
        Request::options("/api/chat")
            .header("origin", "https://chat.example.com")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap(),
        post_json("/api/_diag/panic", "{}"),
        post_json("/api/_diag/panic-midstream", "{}"),
    ];
    for req in requests {
        let what = format!("{} {}", req.method(), req.uri());
        let r = svc.send(req).await;
        assert_eq!(
            r.headers.get_all("x-content-type-options").iter().count(),
            1,
            "{what}"
        );
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(
            r.headers.get_all("cache-control").iter().count(),
            1,
            "{what}"
        );
        assert_eq!(r.headers["cache-control"], "no-store", "{what}");
    }
}

/// A panic inside a streamed body, after `meta` and a `delta` went out: the stream ends with an
/// `error` event (`internal`, with the request id), and the request is recorded as the
/// service's failure — `Errors` 1, an ERROR summary line, a fault in its trace — not as a
/// client that went away.
#[tokio::test]
async fn a_panic_mid_stream_ends_with_an_error_event_and_counts_as_a_fault() {
    let ev = evidence::capture::evidence();
    let mut c = config();
    c.diagnostic_routes = true;
    let svc = service(c, OfflineConfig::default()).await;
    let r = svc
        .send(post_json("/api/_diag/panic-midstream", "{}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "the stream had begun");
    let rid = r.request_id().to_owned();
    let events = sse_events(std::str::from_utf8(&r.body).unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["meta", "delta", "error"]);
    assert_eq!(
        events[2].1,
        json!({"code": "internal", "message": "internal error", "requestId": rid})
    );

    let d = &svc.wait_emf(1).await[0];
    emf::validate(d).unwrap();
    assert_eq!(d["requestId"], rid.as_str());
    assert_eq!(d["Errors"], 1, "{d}");
    assert_eq!(d["statusCode"], 500, "{d}");
    assert_eq!(d["errorCode"], "internal", "{d}");
    assert!(d.get("clientAborted").is_none(), "not a client abort: {d}");

    let summaries = ev.summaries(&rid);
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(
        (&s["level"], &s["errorCode"], &s["effectiveStatus"]),
        (&json!("ERROR"), &json!("internal"), &json!(500)),
        "{s}"
    );
    assert_eq!(s["clientAborted"], false, "{s}");
    let panics: Vec<Value> = ev
        .log_lines()
        .into_iter()
        .filter(|l| l["message"] == "panic" && l["requestId"] == rid.as_str())
        .collect();
    assert_eq!(panics.len(), 1, "the panic line, with the request id");

    let nodes = ev.trace(d["xrayTraceId"].as_str().unwrap()).await;
    let segment = nodes.iter().find(|n| n.get("parent_id").is_none()).unwrap();
    assert_eq!(segment["fault"], true, "{segment}");
    assert_eq!(segment["annotations"]["error_code"], "internal");
    assert_eq!(segment["http"]["response"]["status"], 500);
}
