//! The axum routes: `POST /model/{modelId}/converse` and `…/converse-stream`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::OfflineConfig;
use crate::errors::{BedrockError, ErrorType};
use crate::faults::{AttemptCounter, FaultKind, RandomFaults, parse_directive, request_key};
use crate::pace::Pace;
use crate::reply::canned_words;
use crate::request;
use crate::stats::{OfflineStats, StreamGuard};
use crate::stream::{FAULT_AFTER_TOKENS, Plan, RESET_GAP};
use crate::tokens::Reply;

const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

struct OfflineState {
    pace: Pace,
    hang_all: bool,
    stats: OfflineStats,
    attempts: AttemptCounter,
    random: RandomFaults,
    /// Turns `true` when the server shuts down: hanging requests and streams then end.
    shutdown: watch::Receiver<bool>,
    /// For a bare [`router`]: nobody signals shutdown, but the channel must stay open.
    _shutdown_sender: Option<watch::Sender<bool>>,
}

/// Builds the router. With `shutdown: None` the router never shuts down by itself.
pub fn build_router(
    config: &OfflineConfig,
    shutdown: Option<watch::Receiver<bool>>,
) -> (Router, OfflineStats) {
    let (shutdown, sender) = match shutdown {
        Some(rx) => (rx, None),
        None => {
            let (tx, rx) = watch::channel(false);
            (rx, Some(tx))
        }
    };
    let stats = OfflineStats::default();
    let state = Arc::new(OfflineState {
        pace: Pace::from_config(config),
        hang_all: config.hang,
        stats: stats.clone(),
        attempts: AttemptCounter::default(),
        random: RandomFaults::new(config.throttle_percent, config.error_percent, config.seed),
        shutdown,
        _shutdown_sender: sender,
    });
    let router = Router::new()
        .route("/model/{model_id}/converse", post(converse))
        .route("/model/{model_id}/converse-stream", post(converse_stream))
        .fallback(unknown_operation)
        .with_state(state);
    (router, stats)
}

/// A request that passed validation and drew no before-the-body fault.
struct Prepared {
    request_id: String,
    started: Instant,
    input_tokens: u64,
    reply: Reply,
    /// A fault acting after the request was accepted (slow, mid-stream, reset, malformed).
    fault: Option<FaultKind>,
    fault_message: String,
}

impl OfflineState {
    /// Parses the request and applies faults; `Err` is the complete response.
    async fn prepare(
        &self,
        model_id: &str,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Prepared, Response> {
        let started = Instant::now();
        self.stats.count_request();
        let request_id = uuid::Uuid::new_v4().to_string();
        let error = |kind, msg: String| BedrockError::new(kind, msg, &request_id).into_response();

        if self.hang_all {
            return Err(self.hang(&request_id).await);
        }
        let body = body.map_err(|e| error(ErrorType::Validation, e.body_text()))?;
        let req = request::parse(&body).map_err(|e| error(ErrorType::Validation, e.0))?;

        let mut fault = None;
        if let Some(d) = parse_directive(&req.last_user_text)
            .map_err(|msg| error(ErrorType::Validation, msg))?
            .filter(|d| d.applies_to(model_id))
        {
            let active = match d.fail_attempts {
                None => true,
                Some(n) => self.attempts.next_attempt(request_key(model_id, &body)) <= n,
            };
            if active {
                let msg = format!("fault injected by the offline model (#fault={})", d.name);
                fault = Some((d.kind, msg));
            }
        }
        if fault.is_none()
            && let Some(kind) = self.random.sample()
        {
            let msg = "random fault of the offline model (--offline-*-percent)".to_owned();
            fault = Some((FaultKind::Error(kind), msg));
        }

        let (fault, fault_message) = match fault {
            Some((FaultKind::Error(kind), msg)) => {
                return Err(error(kind, format!("{}: {msg}", kind.name())));
            }
            Some((FaultKind::Hang, _)) => return Err(self.hang(&request_id).await),
            Some((kind, msg)) => (Some(kind), msg),
            None => (None, String::new()),
        };
        Ok(Prepared {
            reply: Reply::new(
                canned_words(model_id, &req.last_user_text, req.user_messages),
                req.max_tokens,
            ),
            input_tokens: req.input_tokens,
            request_id,
            started,
            fault,
            fault_message,
        })
    }

    fn pace_for(&self, fault: Option<FaultKind>) -> Pace {
        match fault {
            Some(FaultKind::Slow) => self.pace.slow(),
            _ => self.pace,
        }
    }

    /// Never answers, until the server shuts down.
    async fn hang(&self, request_id: &str) -> Response {
        let mut shutdown = self.shutdown.clone();
        let _ = shutdown.wait_for(|stop| *stop).await;
        shutting_down(request_id)
    }

    /// Waits until `deadline`; `false` if the server began shutting down first.
    async fn pause_until(&self, deadline: Instant) -> bool {
        if deadline <= Instant::now() {
            return true;
        }
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        }
    }
}

fn shutting_down(request_id: &str) -> Response {
    BedrockError::new(
        ErrorType::ServiceUnavailable,
        "the offline model is shutting down",
        request_id,
    )
    .into_response()
}

fn with_headers(mut resp: Response, content_type: &'static str, request_id: &str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

async fn converse(
    State(state): State<Arc<OfflineState>>,
    Path(model_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let p = match state.prepare(&model_id, body).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let pace = state.pace_for(p.fault);
    let n = p.reply.output_tokens() as usize;

    if let Some(FaultKind::Midstream(kind)) = p.fault {
        // A buffered call cannot fail "mid-stream": it fails after the same few tokens' time.
        if !state
            .pause_until(p.started + pace.token_at(n.min(FAULT_AFTER_TOKENS)))
            .await
        {
            return shutting_down(&p.request_id);
        }
        let kind = kind.buffered_equivalent();
        let msg = format!("{}: {}", kind.name(), p.fault_message);
        return BedrockError::new(kind, msg, &p.request_id).into_response();
    }
    if !state.pause_until(p.started + pace.total(n)).await {
        return shutting_down(&p.request_id);
    }

    let output_tokens = p.reply.output_tokens();
    let json = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": p.reply.text()}]}},
        "stopReason": p.reply.stop_reason.as_str(),
        "usage": {
            "inputTokens": p.input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": p.input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": p.started.elapsed().as_millis() as u64},
    })
    .to_string();

    let body = match p.fault {
        Some(FaultKind::Malformed) => Body::from(json[..json.len() / 2].to_owned()),
        Some(FaultKind::Reset) => {
            // Headers and half the body, then a body error: hyper drops the connection.
            let half = Bytes::from(json[..json.len() / 2].to_owned());
            let first = futures_util::stream::once(async move { Ok(half) });
            let then_fail = futures_util::stream::once(async {
                tokio::time::sleep(RESET_GAP).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "offline model: injected connection reset",
                ))
            });
            Body::from_stream(first.chain(then_fail))
        }
        _ => Body::from(json),
    };
    with_headers(body.into_response(), "application/json", &p.request_id)
}

async fn converse_stream(
    State(state): State<Arc<OfflineState>>,
    Path(model_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let p = match state.prepare(&model_id, body).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let pace = state.pace_for(p.fault);
    let plan = match Plan::new(&p.reply, p.input_tokens, pace, p.fault, &p.fault_message) {
        Ok(plan) => plan,
        Err(e) => {
            let msg = format!("offline model could not encode a frame: {e}");
            return BedrockError::new(ErrorType::InternalServer, msg, &p.request_id)
                .into_response();
        }
    };
    let guard = StreamGuard::new(state.stats.clone());
    let body = plan.into_body(p.started, guard, state.shutdown.clone());
    let resp = (StatusCode::OK, body).into_response();
    with_headers(resp, EVENT_STREAM_CONTENT_TYPE, &p.request_id)
}

async fn unknown_operation() -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    BedrockError::new(
        ErrorType::UnknownOperation,
        "the offline model serves only POST /model/{modelId}/converse and /converse-stream",
        &request_id,
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(router: &Router, path: &str, body: &str) -> (StatusCode, Option<String>, String) {
        let req = Request::post(path)
            .body(Body::from(body.to_owned()))
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let kind = resp
            .headers()
            .get("x-amzn-errortype")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, kind, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn user(text: &str) -> String {
        json!({"messages": [{"role": "user", "content": [{"text": text}]}]}).to_string()
    }

    #[tokio::test]
    async fn converse_in_process_with_raw_and_encoded_model_ids() {
        let (router, stats) = build_router(&OfflineConfig::default(), None);
        for path in [
            "/model/us.amazon.nova-micro-v1:0/converse",
            "/model/us.amazon.nova-micro-v1%3A0/converse",
        ] {
            let (status, kind, body) = call(&router, path, &user("hi there")).await;
            assert_eq!((status, kind), (StatusCode::OK, None), "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let text = v["output"]["message"]["content"][0]["text"]
                .as_str()
                .unwrap();
            assert!(
                text.starts_with("Offline model (us.amazon.nova-micro-v1:0):"),
                "{text}"
            );
            assert_eq!(v["usage"]["inputTokens"], 2);
        }
        assert_eq!(stats.requests(), 2);
    }

    #[tokio::test]
    async fn errors_have_bedrock_shape() {
        let (router, _) = build_router(&OfflineConfig::default(), None);
        let (status, kind, body) = call(&router, "/model/m/converse", "{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(kind.as_deref(), Some("ValidationException"));
        assert!(body.contains("\"message\""), "{body}");

        let (status, kind, _) = call(&router, "/model/m/converse", &user("x #fault=quota")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(kind.as_deref(), Some("ServiceQuotaExceededException"));

        let (status, kind, _) = call(&router, "/model/m/invoke", "{}").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(kind.as_deref(), Some("UnknownOperationException"));

        let (status, kind, body) =
            call(&router, "/model/m/converse", &user("x #fault=bogus")).await;
        assert_eq!(kind.as_deref(), Some("ValidationException"));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("unknown offline fault directive"), "{body}");
    }

    #[tokio::test]
    async fn malformed_converse_is_truncated_json() {
        let (router, _) = build_router(&OfflineConfig::default(), None);
        let (status, _, body) =
            call(&router, "/model/m/converse", &user("x #fault=malformed")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
        assert!(body.starts_with("{\"")); // a JSON start, cut off
    }
}
