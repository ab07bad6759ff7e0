//! The cold path (`CHATBOT_PREWARM_TIMEOUT_MS`, `crates/service/src/aws/prewarm.rs`): a fresh
//! process opens its Bedrock connection during init, in the pool the model client uses, so its
//! first invocation opens none; the warm-up is an unsigned `GET /`, never a model call; the
//! credentials are resolved once, at init; and a slow or dead endpoint never fails init.
//!
//! The Lambda tests drive the compiled `bootstrap` under the Runtime API emulator against the
//! offline model behind a TLS front (`tests/tls_rig/`) that counts TCP accepts and TLS
//! handshakes; the binary trusts the run's test CA through `SSL_CERT_FILE`. Connections are
//! counted, never timed.

mod lambda_emulator;
mod tls_rig;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, future};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::serve::ListenerExt;
use bedrock_offline::{self as offline, OfflineConfig};
use chatbot_service::aws::prewarm::{self, Outcome};
use lambda_emulator::events::http_api_v2;
use lambda_emulator::{Emulator, Invocation};
use serde_json::Value;
use tls_rig::{TestCa, TlsFront};

const PATIENCE: Duration = Duration::from_secs(20);

fn chat() -> Value {
    http_api_v2(
        "POST",
        "/api/chat",
        &[("content-type", "application/json")],
        Some(r#"{"messages":[{"role":"user","content":"hello"}]}"#),
    )
}

struct Rig {
    emulator: Emulator,
    front: TlsFront,
    model: offline::OfflineServer,
    _ca: TestCa,
}

/// The offline model behind the TLS front (no added delay), and `bootstrap` started against it
/// with `CHATBOT_PREWARM_TIMEOUT_MS=prewarm_ms`.
async fn cold_start(prewarm_ms: &str) -> Rig {
    let model = offline::spawn(OfflineConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ca = TestCa::generate();
    let front = TlsFront::start(model.addr(), &ca, Duration::ZERO).await;
    let endpoint = front.endpoint_url();
    let ca_file = ca.ca_file().display().to_string();
    let emulator = Emulator::start(
        env!("CARGO_BIN_EXE_bootstrap"),
        &[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
            ("SSL_CERT_FILE", ca_file.as_str()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("CHATBOT_PREWARM_TIMEOUT_MS", prewarm_ms),
        ],
    )
    .await;
    Rig {
        emulator,
        front,
        model,
        _ca: ca,
    }
}

/// The init log line of the warm-up.
async fn prewarm_line(emulator: &Emulator) -> Value {
    emulator
        .wait_for_stdout(
            |l| l.json.as_ref().is_some_and(|j| j.get("prewarm").is_some()),
            PATIENCE,
        )
        .await
        .and_then(|l| l.json)
        .expect("a prewarm log line at init")
}

/// Connections the front saw during one invocation (TCP accepts, TLS handshakes).
fn opened_during(front: &TlsFront, inv: &Invocation) -> (usize, usize) {
    let from = inv.polled_at.expect("polled");
    let to = inv.finished_at;
    (
        front.accepts_between(from, to),
        front.handshakes_between(from, to),
    )
}

/// Connections the front saw before the function's first `/next` poll: during init.
fn opened_during_init(rig: &Rig) -> (usize, usize) {
    let spawned = rig.emulator.spawned_at();
    let polled = rig.emulator.first_poll_at().expect("init finished");
    (
        rig.front.accepts_between(spawned, polled),
        rig.front.handshakes_between(spawned, polled),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prewarm_the_first_invocation_opens_no_connection() {
    let rig = cold_start("5000").await;
    let first = rig.emulator.invoke(chat()).await;
    assert_eq!(first.http_response().unwrap().status, 200);

    let line = prewarm_line(&rig.emulator).await;
    assert_eq!(line["prewarm"], "warmed", "{line}");
    let message = line["message"].as_str().unwrap();
    assert!(message.contains("bedrock-runtime warmed in"), "{message}");
    // The offline model answers a `GET /` with its unknown-operation error.
    assert!(message.contains("(HTTP 404)"), "{message}");

    assert_eq!(
        opened_during_init(&rig),
        (1, 1),
        "init opens one TCP connection and completes one TLS handshake"
    );
    assert_eq!(
        opened_during(&rig.front, &first),
        (0, 0),
        "the first invocation reuses the connection opened at init"
    );
    let second = rig.emulator.invoke(chat()).await;
    assert_eq!(second.http_response().unwrap().status, 200);
    assert_eq!(opened_during(&rig.front, &second), (0, 0));
    assert_eq!((rig.front.accepts(), rig.front.handshakes()), (1, 1));
    // The warm-up was no model call: the model saw exactly the two invocations' Converse calls.
    assert_eq!(rig.model.stats().requests(), 2);
    rig.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prewarm_the_first_invocation_opens_the_connection() {
    let rig = cold_start("0").await;
    let first = rig.emulator.invoke(chat()).await;
    assert_eq!(first.http_response().unwrap().status, 200);

    let line = prewarm_line(&rig.emulator).await;
    assert_eq!(line["prewarm"], "skipped", "{line}");
    assert_eq!(opened_during_init(&rig), (0, 0), "init opens nothing");
    assert_eq!(
        opened_during(&rig.front, &first),
        (1, 1),
        "the first invocation opens the connection itself"
    );
    let second = rig.emulator.invoke(chat()).await;
    assert_eq!(
        opened_during(&rig.front, &second),
        (0, 0),
        "then it is pooled"
    );
    assert_eq!(rig.model.stats().requests(), 2);
    rig.emulator.shutdown().await;
}

/// `bootstrap` against an endpoint that never completes a warm-up: init still finishes (the
/// function polls for events, nothing is posted to `/init/error`), and the log line says why.
async fn init_survives(endpoint: &str, prewarm_ms: &str) -> Value {
    let emulator = Emulator::start(
        env!("CARGO_BIN_EXE_bootstrap"),
        &[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("CHATBOT_PREWARM_TIMEOUT_MS", prewarm_ms),
        ],
    )
    .await;
    assert!(
        emulator.wait_for_first_poll(PATIENCE).await.is_some(),
        "init finished: the function polls for events"
    );
    assert!(emulator.init_error().is_none());
    assert!(emulator.child_exited().is_none());
    let line = prewarm_line(&emulator).await;
    emulator.shutdown().await;
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_never_fails_init() {
    // A port nobody listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let line = init_survives(&endpoint, "1000").await;
    assert_eq!(line["prewarm"], "failed", "{line}");
    assert_eq!(line["level"], "WARN", "{line}");
    let message = line["message"].as_str().unwrap();
    assert!(
        message.contains("bedrock-runtime failed after"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_endpoint_delays_init_only_until_the_bound() {
    // Accepts connections and never answers: the warm-up is still waiting at the bound.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let line = init_survives(&endpoint, "200").await;
    assert_eq!(line["prewarm"], "timed out", "{line}");
    let message = line["message"].as_str().unwrap();
    assert!(
        message.contains("bedrock-runtime timed out after 200 ms"),
        "{message}"
    );
    held.abort();
}

/// A credentials provider that counts how often it is asked.
#[derive(Debug, Clone, Default)]
struct CountingCredentials(Arc<AtomicUsize>);

impl ProvideCredentials for CountingCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(Credentials::new(
            "AKIDPREWARMTEST",
            "secret",
            None,
            None,
            "counting",
        )))
    }
}

/// One request as the endpoint received it: method, path, headers, body.
type Received = (Method, String, HeaderMap, Bytes);

/// What an endpoint received, and how many TCP connections it accepted.
#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
}

async fn record(
    State(rec): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    rec.requests
        .lock()
        .unwrap()
        .push((method, uri.path().to_owned(), headers, body));
    (
        StatusCode::NOT_FOUND,
        [("x-amzn-errortype", "UnknownOperationException")],
        r#"{"message":"recorded"}"#,
    )
}

async fn recording_endpoint() -> (SocketAddr, Recorder) {
    let rec = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = rec.connections.clone();
    let listener = listener.tap_io(move |_| {
        connections.fetch_add(1, Ordering::SeqCst);
    });
    let app = axum::Router::new().fallback(record).with_state(rec.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rec)
}

/// In process, on the SDK client itself: the warm-up sends one bare, unsigned `GET /`, resolves
/// the credentials once through the client's cache, and leaves its connection in the pool the
/// next real call uses.
#[tokio::test]
async fn the_warm_up_is_an_unsigned_get_and_resolves_credentials_once() {
    let (addr, rec) = recording_endpoint().await;
    let credentials = CountingCredentials::default();
    let conf = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-2"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(credentials.clone())
        .http_client(chatbot_service::aws::https_client())
        .build();
    let client = aws_sdk_bedrockruntime::Client::from_conf(conf);

    let outcomes = prewarm::warm(Duration::from_secs(5), vec![prewarm::bedrock(&client)]).await;
    assert!(
        matches!(
            outcomes.as_slice(),
            [("bedrock-runtime", Outcome::Warmed { status: 404, .. })]
        ),
        "{outcomes:?}"
    );
    assert_eq!(credentials.0.load(Ordering::SeqCst), 1, "resolved at init");
    {
        let requests = rec.requests.lock().unwrap();
        let [(method, path, headers, body)] = requests.as_slice() else {
            panic!("one request expected, got {}", requests.len());
        };
        assert_eq!((method, path.as_str()), (&Method::GET, "/"));
        assert!(body.is_empty());
        let names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host"], "a bare GET: no signature, no AWS headers");
    }

    // The first real call: signed with the cached credentials, over the warm connection.
    let _ = client
        .converse()
        .model_id("m")
        .messages(
            aws_sdk_bedrockruntime::types::Message::builder()
                .role(aws_sdk_bedrockruntime::types::ConversationRole::User)
                .content(aws_sdk_bedrockruntime::types::ContentBlock::Text(
                    "hi".into(),
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await;
    let requests = rec.requests.lock().unwrap();
    assert_eq!(requests.len(), 2);
    let (method, path, headers, _) = &requests[1];
    assert_eq!(
        (method, path.as_str()),
        (&Method::POST, "/model/m/converse")
    );
    assert!(headers.contains_key("authorization"));
    assert_eq!(
        credentials.0.load(Ordering::SeqCst),
        1,
        "the call used the credentials resolved at init"
    );
    assert_eq!(
        rec.connections.load(Ordering::SeqCst),
        1,
        "the call reused the warm connection"
    );
}
