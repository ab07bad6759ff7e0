//! The service as the hosts build it, in process, on the real offline model over loopback:
//! request builders, reply readers, and [`local`], the real local host on an ephemeral port.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod local;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use bedrock_offline::OfflineConfig;
use bedrock_offline::OfflineServer;
use chatbot_service::AppState;
use chatbot_service::config::ServiceConfig;
use chatbot_service::hosts::{self, ModelEndpoint};
use chatbot_service::telemetry::EmfSink;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The service as the hosts build it, backed by a real offline model on loopback, with its EMF
/// documents captured in memory.
pub struct TestService {
    pub router: Router,
    pub state: AppState,
    /// The offline model the service calls; stopped with the service.
    pub offline: Option<OfflineServer>,
    pub emf: Arc<Mutex<Vec<String>>>,
}

/// Test defaults: short deadlines and backoff so failure paths finish quickly.
pub fn config() -> ServiceConfig {
    let mut c = ServiceConfig::defaults();
    c.connect_timeout_ms = 1_000;
    c.attempt_timeout_ms = 2_000;
    c.model_timeout_ms = 4_000;
    c
}

pub async fn service(config: ServiceConfig, offline: OfflineConfig) -> TestService {
    let (sink, emf) = EmfSink::memory();
    let model = bedrock_offline::spawn(offline, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("offline model starts");
    let endpoint = ModelEndpoint::Local(model.endpoint_url());
    let state = hosts::start(config, endpoint, sink)
        .await
        .expect("service starts");
    TestService {
        router: chatbot_service::app(state.clone()),
        state,
        offline: Some(model),
        emf,
    }
}

pub async fn default_service() -> TestService {
    service(config(), OfflineConfig::default()).await
}

impl TestService {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn chat(&self, text: &str) -> Reply {
        self.send(post_json("/api/chat", &chat_body(text))).await
    }

    /// EMF documents written so far, parsed.
    pub fn emf_docs(&self) -> Vec<Value> {
        self.emf
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).expect("EMF is JSON"))
            .collect()
    }

    /// Wait for `n` EMF documents (a streamed reply finishes its telemetry as its body ends).
    pub async fn wait_emf(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let docs = self.emf_docs();
            if docs.len() >= n {
                return docs;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} EMF documents, got {}", self.emf_docs().len());
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn request_id(&self) -> &str {
        self.headers["x-request-id"].to_str().unwrap()
    }

    /// Assert the contract's error shape and return the code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        let e = &v["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(e["requestId"], self.request_id(), "{v}");
        assert_eq!(
            v.as_object().unwrap().len(),
            1,
            "only `error` at the top: {v}"
        );
        e["code"].as_str().expect("code").to_owned()
    }
}

pub fn chat_body(text: &str) -> String {
    json!({"messages": [{"role": "user", "content": text}]}).to_string()
}

pub fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// Parse an SSE body into (event, data) pairs.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut event = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            (!data.is_empty()).then(|| {
                (
                    event,
                    serde_json::from_str(&data).expect("event data is JSON"),
                )
            })
        })
        .collect()
}

/// The HTTP status the service sends an error code with (wire name → `ErrorCode` table).
pub fn status_for_code(code: &str) -> u16 {
    chatbot_service::error::ErrorCode::ALL
        .iter()
        .find(|c| c.as_str() == code)
        .map_or(500, |c| c.status().as_u16())
}
