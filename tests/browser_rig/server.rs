//! The local host in-process: the API on the real offline model plus the chat page, on loopback.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use bedrock_offline::{OfflineConfig, OfflineStats};
use chatbot_service::config::ServiceConfig;
use chatbot_service::hosts::local;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::service_rig::{self, TestService};

/// Tokens per second of the offline model: slow enough to watch a reply grow.
pub const TOKENS_PER_SEC: f64 = 40.0;

pub struct ChatServer {
    pub url: String,
    pub svc: TestService,
    task: JoinHandle<()>,
}

impl ChatServer {
    /// What `chatbot serve` runs, with the default service configuration and an offline model
    /// that paces its reply like a real one.
    pub async fn start() -> Self {
        Self::start_with(ServiceConfig::defaults()).await
    }

    /// The same with another service configuration (e.g. a budget).
    pub async fn start_with(config: ServiceConfig) -> Self {
        Self::start_with_offline(config, OfflineConfig::default()).await
    }

    /// The same with the offline model configured too (e.g. its simulated guardrail); its pace
    /// is always the one above.
    pub async fn start_with_offline(config: ServiceConfig, offline: OfflineConfig) -> Self {
        let offline = OfflineConfig {
            ttft_ms: 200,
            tokens_per_sec: TOKENS_PER_SEC,
            ..offline
        };
        let svc = service_rig::service(config, offline).await;
        let frontend = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("frontend");
        let router = local::with_frontend(svc.router.clone(), frontend);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self { url, svc, task }
    }

    pub fn offline_stats(&self) -> OfflineStats {
        self.svc.offline.as_ref().expect("offline backend").stats()
    }

    /// `GET /api/conversations/{id}` asked of the service directly (not through the page):
    /// the status and the body.
    pub async fn conversation(&self, id: &str) -> (u16, Value) {
        let reply = self.conversation_request(Method::GET, id).await;
        let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status.as_u16(), body)
    }

    /// `DELETE /api/conversations/{id}` asked of the service directly: the status.
    pub async fn delete_conversation(&self, id: &str) -> u16 {
        self.conversation_request(Method::DELETE, id)
            .await
            .status
            .as_u16()
    }

    async fn conversation_request(&self, method: Method, id: &str) -> service_rig::Reply {
        let req = Request::builder()
            .method(method)
            .uri(format!("/api/conversations/{id}"))
            .body(Body::empty())
            .unwrap();
        self.svc.send(req).await
    }

    /// The EMF document of one request, waiting up to 5 s (telemetry is written as the
    /// response body ends, which can be just after the browser saw the last event).
    pub async fn emf_for(&self, request_id: &str) -> Value {
        for _ in 0..100 {
            if let Some(d) = self
                .svc
                .emf_docs()
                .into_iter()
                .find(|d| d["requestId"] == request_id)
            {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no EMF document for request {request_id} within 5 s");
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
