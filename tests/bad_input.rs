//! Bad input, in two parts.
//!
//! Property tests (`proptest`) through the router with `oneshot`: arbitrary bytes, arbitrary JSON
//! values and near-valid chat bodies (valid shapes with mutations), plus arbitrary methods and
//! paths. Whatever arrives, the answer is never a 5xx: either a 200 of the success shape, or a
//! 4xx of the JSON error shape `{"error": {"code", "message", "requestId"}}`. Case counts are
//! small so the file runs in seconds; `PROPTEST_CASES=N` runs N cases per property instead.
//!
//! Against the real local host over TCP: oversized headers and bodies, wrong methods, a client
//! that connects and says nothing, one that sends its headers a byte at a time, and one that
//! dribbles its body. Each is answered or cut off within its bound.

mod service_rig;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, Uri};
use bedrock_offline::OfflineConfig;
use chatbot_service::config::ServiceConfig;
use chatbot_service::error::MAX_MESSAGE_CHARS;
use chatbot_service::hosts::local::{LocalLimits, MAX_HEADER_BYTES, frontend_dir, with_frontend};
use chatbot_service::request::MAX_BODY_BYTES;
use chatbot_service::validation::validate;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use service_rig::local::LocalServer;
use service_rig::status_for_code;
use service_rig::{Reply, TestService, config, default_service, service, sse_events};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// The contract every answer must keep.

const ERROR_CODES: &[&str] = &[
    "invalid_request",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "unsupported_media_type",
    "rate_limited",
    "model_error",
    "model_unavailable",
    "model_timeout",
    "internal",
];

/// Never a 5xx; a 200 of the route's success shape or a 4xx of the JSON error shape; every
/// answer with the API's security headers.
fn check_contract(method: &Method, path: &str, r: &Reply) -> Result<(), TestCaseError> {
    let status = r.status.as_u16();
    let body = String::from_utf8_lossy(&r.body);
    prop_assert!(status < 500, "{method} {path}: {status} {body}");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        prop_assert_eq!(
            r.headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{} {}: {}",
            method,
            path,
            name
        );
    }
    let request_id = r
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    prop_assert!(
        uuid::Uuid::parse_str(request_id).is_ok(),
        "request id {request_id:?}"
    );
    if method == Method::HEAD {
        prop_assert!(r.body.is_empty());
        return Ok(());
    }
    if method == Method::OPTIONS && status == 200 {
        // The CORS layer answers every OPTIONS as a preflight: empty, and with no
        // `access-control-allow-origin` since no origin is configured here.
        prop_assert!(r.body.is_empty(), "{body}");
        prop_assert!(r.headers.get("access-control-allow-origin").is_none());
        return Ok(());
    }
    if status == 200 {
        return check_success(path, r, request_id);
    }
    prop_assert!((400..500).contains(&status), "{status}");
    let v: Value = serde_json::from_slice(&r.body)
        .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {body}")))?;
    let top = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>());
    prop_assert_eq!(top, Some(vec!["error"]), "{}", body);
    let e = v["error"].as_object().unwrap();
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    prop_assert_eq!(keys, vec!["code", "message", "requestId"], "{}", body);
    let code = e["code"].as_str().unwrap_or_default();
    prop_assert!(ERROR_CODES.contains(&code), "code {code}");
    prop_assert_eq!(status_for_code(code), status, "{}", body);
    prop_assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    // Messages quote input (a value, a path): never more than the cap, plus its `…`.
    let chars = e["message"].as_str().unwrap().chars().count();
    prop_assert!(chars <= MAX_MESSAGE_CHARS + 1, "{chars} characters: {body}");
    prop_assert_eq!(e["requestId"].as_str(), Some(request_id));
    Ok(())
}

fn check_success(path: &str, r: &Reply, request_id: &str) -> Result<(), TestCaseError> {
    let body = String::from_utf8_lossy(&r.body);
    match path {
        "/api/health" => {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            prop_assert_eq!(&v["status"], "ok", "{}", body);
        }
        "/api/chat" => {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            prop_assert!(v["reply"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
            prop_assert_eq!(v["requestId"].as_str(), Some(request_id));
            prop_assert!(v["usage"]["outputTokens"].as_u64().is_some(), "{body}");
            prop_assert!(v["stopReason"].as_str().is_some(), "{body}");
        }
        "/api/chat/stream" => {
            let events = sse_events(&body);
            let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
            prop_assert_eq!(names.first(), Some(&"meta"), "{}", body);
            prop_assert_eq!(names.last(), Some(&"done"), "{}", body);
            prop_assert_eq!(events[0].1["requestId"].as_str(), Some(request_id));
        }
        other => prop_assert!(false, "200 from {other}: {body}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running properties against one service (one runtime, one offline model) for all cases.

struct Harness {
    rt: tokio::runtime::Runtime,
    svc: TestService,
}

impl Harness {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let svc = rt.block_on(default_service());
        Harness { rt, svc }
    }

    fn send(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        self.rt
            .block_on(self.svc.send(req.body(Body::from(body)).unwrap()))
    }

    fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Reply, TestCaseError> {
        let r = self.send(Method::POST, path, Some("application/json"), body);
        check_contract(&Method::POST, path, &r)?;
        Ok(r)
    }
}

/// `default` cases per property unless `PROPTEST_CASES` says otherwise. Failures are not
/// persisted to files: proptest prints the shrunk input, which is what a regression test needs.
/// A seeded runner: the same cases every run, so what a test saw (e.g. every status class
/// reached) does not depend on luck. `PROPTEST_CASES` raises the count for a longer search.
fn runner(default: u32) -> TestRunner {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default;
    }
    TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    )
}

fn chat_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("/api/chat"), Just("/api/chat/stream")]
}

#[test]
fn arbitrary_bytes_are_answered_within_the_contract() {
    let h = Harness::new();
    let content_types = prop_oneof![
        3 => Just(Some("application/json".to_owned())),
        1 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,30}".prop_map(Some),
    ];
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        // Mostly-JSON punctuation finds more parser paths than uniform bytes.
        "[\\[\\]{}\":,0-9a-z \\\\nulltrue-]{0,200}".prop_map(String::into_bytes),
    ];
    runner(200)
        .run(&(chat_path(), content_types, bytes), |(path, ct, bytes)| {
            if ct
                .as_deref()
                .is_some_and(|c| http::HeaderValue::from_str(c).is_err())
            {
                return Ok(());
            }
            let r = h.send(Method::POST, path, ct.as_deref(), bytes);
            check_contract(&Method::POST, path, &r)
        })
        .unwrap();
}

/// Keys that sometimes hit the real field names.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop_oneof![
            Just("messages"),
            Just("role"),
            Just("content"),
            Just("conversationId"),
            Just("variant"),
        ]
        .prop_map(str::to_owned),
        1 => "[a-zA-Z_]{0,10}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![Just("user"), Just("assistant"), Just("system")].prop_map(|s| json!(s)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn arbitrary_json_is_answered_within_the_contract() {
    let h = Harness::new();
    // Half the time inside `{"messages": …}`, to get past the first field.
    let body = prop_oneof![
        json_value(),
        json_value().prop_map(|v| json!({ "messages": v })),
        prop::collection::vec(json_value(), 0..4).prop_map(|v| json!({ "messages": v })),
    ];
    runner(200)
        .run(&(chat_path(), body), |(path, body)| {
            h.post_json(path, body.to_string().into_bytes()).map(drop)
        })
        .unwrap();
}

/// One change to an otherwise valid body.
#[derive(Debug, Clone)]
enum Mutation {
    Role(usize, Value),
    Content(usize, Value),
    /// A string of this many characters (over the per-message limit, the total, or the body).
    Huge(usize, usize, char),
    ControlChars(usize, String),
    Unicode(usize, String),
    DropField(usize, &'static str),
    DropMessages,
    ExtraField(Option<usize>, String, Value),
    MessagesValue(Value),
    ConversationId(Value),
    TooMany(usize),
    /// `{"messages": [[[[…]]]]}` this deep (as text: a `Value` that deep is itself a hazard).
    DeepNesting(usize),
    /// The body's text cut short.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = 0..4usize;
    prop_oneof![
        (index.clone(), json_value()).prop_map(|(i, v)| Mutation::Role(i, v)),
        (
            index.clone(),
            prop_oneof![
                Just(json!("User")),
                Just(json!("system")),
                Just(json!("")),
                // Echoed back by the decoder's "unknown variant" message.
                "\\PC{150,600}".prop_map(Value::String),
            ]
        )
            .prop_map(|(i, v)| Mutation::Role(i, v)),
        (index.clone(), json_value()).prop_map(|(i, v)| Mutation::Content(i, v)),
        (
            index.clone(),
            prop_oneof![3990..4010usize, 23_990..24_010usize, 65_000..70_000usize],
            prop_oneof![Just('x'), Just('é'), Just('😀'), Just(' ')]
        )
            .prop_map(|(i, n, c)| Mutation::Huge(i, n, c)),
        (
            index.clone(),
            prop::collection::vec(
                prop_oneof![0u32..0x20, 0x7f..0xa0u32, Just(0x2028), Just(0xfeff)],
                1..20
            )
        )
            .prop_map(|(i, cs)| Mutation::ControlChars(
                i,
                cs.into_iter().filter_map(char::from_u32).collect()
            )),
        (index.clone(), any::<String>()).prop_map(|(i, s)| Mutation::Unicode(i, s)),
        (index.clone(), prop_oneof![Just("role"), Just("content")])
            .prop_map(|(i, f)| Mutation::DropField(i, f)),
        Just(Mutation::DropMessages),
        (prop::option::of(index.clone()), key(), json_value())
            .prop_map(|(i, k, v)| Mutation::ExtraField(i, k, v)),
        json_value().prop_map(Mutation::MessagesValue),
        prop_oneof![json_value(), "[a-zA-Z0-9_-]{0,70}".prop_map(Value::String)]
            .prop_map(Mutation::ConversationId),
        (38..60usize).prop_map(Mutation::TooMany),
        (1..3000usize).prop_map(Mutation::DeepNesting),
        (0..200usize).prop_map(Mutation::Truncate),
    ]
}

fn valid_body() -> impl Strategy<Value = Value> {
    let turns =
        prop::collection::vec("[a-zA-Z0-9 ,.?!]{0,30}[a-zA-Z0-9]", 1..4).prop_map(|mut t| {
            if t.len() % 2 == 0 {
                t.pop();
            }
            t
        });
    (turns, prop::option::of("[a-zA-Z0-9_-]{1,64}")).prop_map(|(turns, conversation)| {
        let messages: Vec<Value> = turns
            .iter()
            .enumerate()
            .map(|(i, text)| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": text}))
            .collect();
        let mut body = json!({ "messages": messages });
        if let Some(c) = conversation {
            body["conversationId"] = json!(c);
        }
        body
    })
}

/// The body as text after the mutations.
fn mutate(mut body: Value, mutations: &[Mutation]) -> String {
    let mut text_edits = Vec::new();
    // Applies `f` to message `i` (modulo their number), if there is such an object.
    let with_message = |body: &mut Value, i: usize, f: &mut dyn FnMut(&mut Map<String, Value>)| {
        if let Some(list) = body.get_mut("messages").and_then(Value::as_array_mut)
            && !list.is_empty()
        {
            let n = list.len();
            if let Some(obj) = list[i % n].as_object_mut() {
                f(obj);
            }
        }
    };
    for m in mutations {
        match m {
            Mutation::Role(i, v) => with_message(&mut body, *i, &mut |o| {
                o.insert("role".into(), v.clone());
            }),
            Mutation::Content(i, v) => with_message(&mut body, *i, &mut |o| {
                o.insert("content".into(), v.clone());
            }),
            Mutation::Huge(i, n, c) => with_message(&mut body, *i, &mut |o| {
                o.insert("content".into(), json!(c.to_string().repeat(*n)));
            }),
            Mutation::ControlChars(i, cs) => with_message(&mut body, *i, &mut |o| {
                let text = o
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let mid = text
                    .char_indices()
                    .nth(text.chars().count() / 2)
                    .map_or(0, |(b, _)| b);
                o.insert(
                    "content".into(),
                    json!(format!("{}{cs}{}", &text[..mid], &text[mid..])),
                );
            }),
            Mutation::Unicode(i, s) => with_message(&mut body, *i, &mut |o| {
                o.insert("content".into(), json!(s));
            }),
            Mutation::DropField(i, f) => with_message(&mut body, *i, &mut |o| {
                o.remove(*f);
            }),
            Mutation::DropMessages => {
                if let Some(o) = body.as_object_mut() {
                    o.remove("messages");
                }
            }
            Mutation::ExtraField(None, k, v) => {
                if let Some(o) = body.as_object_mut() {
                    o.insert(k.clone(), v.clone());
                }
            }
            Mutation::ExtraField(Some(i), k, v) => with_message(&mut body, *i, &mut |o| {
                o.insert(k.clone(), v.clone());
            }),
            Mutation::MessagesValue(v) => body["messages"] = v.clone(),
            Mutation::ConversationId(v) => body["conversationId"] = v.clone(),
            Mutation::TooMany(n) => {
                body["messages"] = (0..*n)
                    .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "x"}))
                    .collect();
            }
            Mutation::DeepNesting(_) | Mutation::Truncate(_) => text_edits.push(m.clone()),
        }
    }
    let mut text = body.to_string();
    for m in text_edits {
        match m {
            Mutation::DeepNesting(depth) => {
                text = format!(
                    "{{\"messages\": {}{}}}",
                    "[".repeat(depth),
                    "]".repeat(depth)
                );
            }
            Mutation::Truncate(cut) => {
                let keep = text.len().saturating_sub(cut + 1);
                let keep = (0..=keep)
                    .rev()
                    .find(|k| text.is_char_boundary(*k))
                    .unwrap_or(0);
                text.truncate(keep);
            }
            _ => unreachable!(),
        }
    }
    text
}

#[test]
fn near_valid_chat_bodies_are_answered_within_the_contract() {
    let h = Harness::new();
    let cases = (
        chat_path(),
        valid_body(),
        prop::collection::vec(mutation(), 0..3),
    );
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
    runner(300)
        .run(&cases, |(path, body, mutations)| {
            let text = mutate(body, &mutations);
            let r = h.post_json(path, text.into_bytes())?;
            *seen.borrow_mut().entry(r.status.as_u16()).or_default() += 1;
            if mutations.is_empty() {
                prop_assert_eq!(r.status.as_u16(), 200, "a valid body is accepted");
            }
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner();
    eprintln!("near-valid bodies, answers by status: {seen:?}");
    // The mix reaches both sides: accepted bodies, rejected ones, and oversized ones.
    for status in [200, 400, 413] {
        assert!(seen.contains_key(&status), "no {status} among {seen:?}");
    }
}

#[test]
fn decode_and_validate_never_panic_and_accept_only_valid_requests() {
    let limits = chatbot_service::config::ServiceConfig::defaults().limits();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (valid_body(), prop::collection::vec(mutation(), 0..3))
            .prop_map(|(b, m)| mutate(b, &m).into_bytes()),
    ];
    runner(1000)
        .run(&bytes, |bytes| {
            let Ok(body) = chatbot_service::request::decode(&bytes) else {
                return Ok(());
            };
            if let Ok(req) = validate(body, &limits) {
                let n = req.messages.len();
                prop_assert!(n % 2 == 1 && n <= limits.max_messages);
                let mut total = 0;
                for (i, m) in req.messages.iter().enumerate() {
                    let chars = m.content.chars().count();
                    prop_assert!(chars > 0 && chars <= limits.max_message_chars);
                    prop_assert_eq!(m.content.trim(), m.content.as_str());
                    prop_assert!(
                        !m.content
                            .chars()
                            .any(|c| c.is_control() && c != '\n' && c != '\t')
                    );
                    prop_assert_eq!(
                        m.role.as_str(),
                        if i % 2 == 0 { "user" } else { "assistant" }
                    );
                    total += chars;
                }
                prop_assert!(total <= limits.max_total_chars);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_methods_and_paths_are_answered_within_the_contract() {
    let h = Harness::new();
    let method = prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        Just(Method::TRACE),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ];
    let path = prop_oneof![
        Just("/api/chat".to_owned()),
        Just("/api/chat/stream".to_owned()),
        Just("/api/health".to_owned()),
        Just("/api".to_owned()),
        "/api/[a-zA-Z0-9%._~/-]{0,30}",
        "/[a-zA-Z0-9%._~/-]{0,30}",
    ];
    runner(150)
        .run(&(method, path), |(method, path)| {
            if path.parse::<Uri>().is_err() {
                return Ok(());
            }
            let r = h.send(
                method.clone(),
                &path,
                Some("application/json"),
                b"{}".to_vec(),
            );
            check_contract(&method, &path, &r)
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The real local host over TCP.

async fn local_host() -> (TestService, LocalServer) {
    let svc = default_service().await;
    // What `chatbot serve` serves: the API plus the page.
    let router = match frontend_dir(None) {
        Some(dir) => with_frontend(svc.router.clone(), dir),
        None => svc.router.clone(),
    };
    let server = LocalServer::start(router).await;
    (svc, server)
}

/// Everything the server sends until it closes the connection (or `limit` passes), and when
/// the connection closed.
async fn read_until_closed(
    stream: &mut tokio::net::tcp::OwnedReadHalf,
    limit: Duration,
) -> (Vec<u8>, Option<Duration>) {
    let t = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(t.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (got, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(t.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn an_oversized_header_is_refused_quickly() {
    let (_svc, server) = local_host().await;
    for (size, expect_ok) in [(MAX_HEADER_BYTES / 2, true), (100_000, false)] {
        let (mut rx, mut tx) = TcpStream::connect(server.addr).await.unwrap().into_split();
        let head = format!(
            "GET /api/health HTTP/1.1\r\nhost: localhost\r\nx-big: {}\r\nconnection: close\r\n\r\n",
            "a".repeat(size)
        );
        // The server may stop reading (and close) before all of it is written.
        let writer = tokio::spawn(async move {
            let _ = tx.write_all(head.as_bytes()).await;
            tx
        });
        let (raw, closed) = read_until_closed(&mut rx, Duration::from_secs(3)).await;
        let line = status_line(&raw);
        let took = closed.expect("the server closed the connection");
        eprintln!("{size}-byte header: {line:?} after {took:?}");
        if expect_ok {
            assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        } else {
            assert!(
                line.starts_with("HTTP/1.1 431") || raw.is_empty(),
                "431 or closed: {line}"
            );
            assert!(took < Duration::from_secs(2), "{took:?}");
        }
        drop(writer.await);
    }
    assert!(server.stop(Duration::from_secs(3)).await.is_some());
}

#[tokio::test]
async fn a_body_over_64_kib_gets_413() {
    let (svc, server) = local_host().await;
    let http = reqwest::Client::new();
    let big = format!(
        "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}]}}",
        "x".repeat(MAX_BODY_BYTES)
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    for (label, body) in [
        ("with Content-Length", reqwest::Body::from(big.clone())),
        (
            "chunked",
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
        ),
    ] {
        let t = Instant::now();
        let res = http
            .post(server.url("/api/chat"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{label}");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "payload_too_large", "{label}");
        assert_eq!(v["error"]["requestId"], id.as_str());
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{label}: {:?}",
            t.elapsed()
        );
    }
    drop(http);
    assert!(server.stop(Duration::from_secs(3)).await.is_some());
    let docs = svc.emf_docs();
    assert_eq!(docs.len(), 2);
    assert!(docs.iter().all(|d| d["statusCode"] == 413
        && d["errorCode"] == "payload_too_large"
        && d["Errors"] == 0));
}

#[tokio::test]
async fn wrong_methods_get_405_in_the_error_shape() {
    let (_svc, server) = local_host().await;
    let http = reqwest::Client::new();
    let cases = [
        ("GET", "/api/chat"),
        ("PUT", "/api/chat"),
        ("PATCH", "/api/chat"),
        ("DELETE", "/api/chat/stream"),
        ("GET", "/api/chat/stream"),
        ("POST", "/api/health"),
        ("PUT", "/api/health"),
        ("TRACE", "/api/health"),
        ("BREW", "/api/chat"),
    ];
    for (method, path) in cases {
        let res = http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                server.url(path),
            )
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let v: Value = res.json().await.unwrap();
        assert_eq!(
            v["error"]["code"], "method_not_allowed",
            "{method} {path}: {v}"
        );
        assert_eq!(v["error"]["requestId"], id.as_str());
        assert!(
            v["error"]["message"].as_str().unwrap().contains(method),
            "{v}"
        );
    }
    let res = http.head(server.url("/api/chat")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.bytes().await.unwrap().is_empty(), "HEAD: no body");
    drop(http);
    assert!(server.stop(Duration::from_secs(3)).await.is_some());
}

/// Writes `bytes` one every `every` until the server closes the connection; returns what the
/// server sent and when it closed (from the first byte).
async fn dribble(
    addr: std::net::SocketAddr,
    head: Option<&str>,
    bytes: &'static [u8],
    every: Duration,
    limit: Duration,
) -> (Vec<u8>, Option<Duration>) {
    let (mut rx, mut tx) = TcpStream::connect(addr).await.unwrap().into_split();
    if let Some(head) = head {
        tx.write_all(head.as_bytes()).await.unwrap();
    }
    let writer = tokio::spawn(async move {
        for b in bytes.iter().cycle() {
            if tx.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
    });
    let got = read_until_closed(&mut rx, limit).await;
    writer.abort();
    got
}

/// Slow clients, all at once against one server run with 1 s read timeouts (the defaults are
/// 10 s: the same code, ten times the wait):
/// - one that connects and sends nothing,
/// - one that sends its request head a byte every 250 ms (slowloris),
/// - one whose head is complete but whose body comes a byte every 250 ms.
///
/// The trickling clients are never silent for as long as the timeout, so only a deadline on the
/// whole head or body can cut them off.
#[tokio::test]
async fn slow_clients_are_cut_off_by_the_read_timeouts() {
    let defaults = ServiceConfig::defaults().body_read_timeout();
    assert_eq!(defaults, Duration::from_secs(10), "default body timeout");
    let header_default = LocalLimits::default().header_read_timeout();
    assert_eq!(
        header_default,
        Duration::from_secs(10),
        "default header timeout"
    );

    let timeout = Duration::from_secs(1);
    let every = Duration::from_millis(250);
    let mut c = config();
    c.body_read_timeout_ms = timeout.as_millis() as u64;
    let svc = service(c, OfflineConfig::default()).await;
    let limits = LocalLimits {
        header_read_timeout_ms: timeout.as_millis() as u64,
    };
    let server = LocalServer::start_with("127.0.0.1:0", svc.router.clone(), limits).await;
    let limit = timeout + Duration::from_secs(5);
    let idle = async {
        let (mut rx, tx) = TcpStream::connect(server.addr).await.unwrap().into_split();
        let got = read_until_closed(&mut rx, limit).await;
        drop(tx);
        got
    };
    let slow_head = dribble(
        server.addr,
        None,
        b"POST /api/chat HTTP/1.1\r\nhost: localhost\r\nx-slow: ",
        every,
        limit,
    );
    let body_head = "POST /api/chat HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"messages\":";
    let slow_body = dribble(server.addr, Some(body_head), b" ", every, limit);
    let ((idle_raw, idle_closed), (head_raw, head_closed), (body_raw, body_closed)) =
        tokio::join!(idle, slow_head, slow_body);

    for (what, raw, closed) in [
        ("idle connection", &idle_raw, idle_closed),
        ("slow request head", &head_raw, head_closed),
        ("slow body", &body_raw, body_closed),
    ] {
        eprintln!(
            "{what}: closed after {closed:?}, answer {:?}",
            status_line(raw)
        );
    }
    // Timers do not fire early; the slow head's starts at its second byte (hyper's timer
    // starts once it has told HTTP/1 from HTTP/2), so it may take one `every` more.
    let bound = |what: &str, closed: Option<Duration>| {
        let took = closed.unwrap_or_else(|| panic!("{what}: still open after {limit:?}"));
        assert!(
            took >= timeout - Duration::from_millis(100)
                && took <= timeout + every + Duration::from_millis(750),
            "{what}: closed after {took:?}, the bound is {timeout:?}"
        );
    };
    bound("idle connection", idle_closed);
    let line = status_line(&idle_raw);
    assert!(
        idle_raw.is_empty() || line.starts_with("HTTP/1.1 408"),
        "{line}"
    );
    bound("slow request head", head_closed);
    let line = status_line(&head_raw);
    assert!(
        head_raw.is_empty() || line.starts_with("HTTP/1.1 408"),
        "{line}"
    );

    bound("slow body", body_closed);
    let text = String::from_utf8_lossy(&body_raw);
    assert!(status_line(&body_raw).starts_with("HTTP/1.1 400"), "{text}");
    let json = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    assert_eq!(
        v["error"]["message"], "the body did not arrive within 1 s",
        "{v}"
    );
    // The body's request reached the API: it left its evidence, as a client error.
    let docs = svc.emf_docs();
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(
        (docs[0]["statusCode"].as_u64(), docs[0]["Errors"].as_u64()),
        (Some(400), Some(0))
    );
    assert!(server.stop(Duration::from_secs(3)).await.is_some());
}

/// Error messages that quote the client's input — a path, a method, a JSON value, a field
/// name, a variant name — are cut to the cap, on a character boundary, with `…`.
#[tokio::test]
async fn messages_that_echo_input_are_capped() {
    let mut c = config();
    c.allow_variant_choice = true;
    let svc = service(c, OfflineConfig::default()).await;
    let long = "é".repeat(5_000);
    let send = |method: &str, path: String, body: String| {
        Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let role = json!({"messages": [{"role": long, "content": "hi"}]}).to_string();
    let field = format!("{{\"messages\": [], \"{}\": 1}}", "f".repeat(5_000));
    let variant =
        json!({"messages": [{"role": "user", "content": "hi"}], "variant": long}).to_string();
    let messages = json!({ "messages": long }).to_string();
    let cases = [
        (
            send("GET", format!("/api/{}", "p".repeat(5_000)), String::new()),
            404,
            "no route for /api/ppp",
        ),
        (
            send(&"M".repeat(5_000), "/api/chat".into(), String::new()),
            405,
            "method MMM",
        ),
        (
            send("POST", "/api/chat".into(), role),
            400,
            "messages[0].role: unknown variant `ééé",
        ),
        (
            send("POST", "/api/chat".into(), field),
            400,
            // The path names the unknown key, then the message does again.
            "fffff",
        ),
        (
            send("POST", "/api/chat/stream".into(), variant),
            400,
            "variant: unknown variant \"ééé",
        ),
        (
            send("POST", "/api/chat".into(), messages),
            400,
            "messages: invalid type: string \"ééé",
        ),
    ];
    for (req, status, starts) in cases {
        let r = svc.send(req).await;
        assert_eq!(r.status.as_u16(), status, "{starts}");
        r.error_code();
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(starts), "{message}");
        assert_eq!(
            message.chars().count(),
            MAX_MESSAGE_CHARS + 1,
            "cut to the cap: {message}"
        );
        assert!(message.ends_with('…'), "{message}");
    }
}
