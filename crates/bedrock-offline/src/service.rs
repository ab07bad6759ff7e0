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
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cache::{CacheUsage, PromptCache};
use crate::config::OfflineConfig;
use crate::errors::{BedrockError, ErrorType};
use crate::faults::{AttemptCounter, FaultKind, RandomFaults, parse_directive, request_key};
use crate::guardrail::{
    ASYNC_SCAN_LAG_TOKENS, Assessment, Guardrail, GuardrailRequest, GuardrailTrace, char_count,
};
use crate::pace::Pace;
use crate::reply::canned_words;
use crate::request;
use crate::stats::{OfflineStats, StreamGuard};
use crate::stream::{Ending, FAULT_AFTER_TOKENS, Plan, RESET_GAP};
use crate::tier::Served;
use crate::tokens::{Reply, StopReason};

const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

struct OfflineState {
    pace: Pace,
    hang_all: bool,
    stats: OfflineStats,
    attempts: AttemptCounter,
    random: RandomFaults,
    cache: PromptCache,
    guardrail: Guardrail,
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
        cache: PromptCache::new(config.cache_min_tokens),
        guardrail: Guardrail::from_config(config),
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

/// The input side of a request's token usage.
#[derive(Clone, Copy, Debug)]
struct InputUsage {
    /// `inputTokens`: input tokens neither read from nor written to the cache.
    input: u64,
    /// `Some` when the request has cache points (then the usage carries both cache fields).
    cache: Option<CacheUsage>,
}

impl InputUsage {
    /// The `usage` member, with `output` model tokens.
    fn json(&self, output: u64) -> Value {
        let c = self.cache.unwrap_or_default();
        let mut usage = json!({
            "inputTokens": self.input,
            "outputTokens": output,
            "totalTokens": self.input + c.read + c.write + output,
        });
        if self.cache.is_some() {
            usage["cacheReadInputTokens"] = json!(c.read);
            usage["cacheWriteInputTokens"] = json!(c.write);
        }
        usage
    }
}

/// The guardrail's decisions for a request with `guardrailConfig`.
struct Guarded {
    req: GuardrailRequest,
    /// The input assessment; `blocked` non-empty = input intervention (model not invoked).
    input: Assessment,
    /// The reply word completing a blocked word, and the words blocked (output intervention).
    output_block: Option<(usize, Vec<String>)>,
}

impl Guarded {
    fn input_blocked(&self) -> bool {
        !self.input.blocked.is_empty()
    }
}

/// A request that passed validation and drew no before-the-body fault.
struct Prepared {
    request_id: String,
    started: Instant,
    /// The model's reply (empty when the guardrail blocked the input).
    reply: Reply,
    usage: InputUsage,
    served: Served,
    guarded: Option<Guarded>,
    /// A fault acting after the request was accepted (slow, mid-stream, reset, malformed).
    fault: Option<FaultKind>,
    fault_message: String,
}

impl Prepared {
    /// `usage`, `trace`, `serviceTier`, `performanceConfig` for `output_tokens` billed tokens.
    fn members(&self, output_tokens: u64, trace: Option<&GuardrailTrace>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("usage".into(), self.usage.json(output_tokens));
        if let (Some(g), Some(trace)) = (&self.guarded, trace) {
            trace.add_to(&g.req, &mut m);
        }
        self.served.add_to(&mut m);
        m
    }
}

impl OfflineState {
    /// Parses the request and applies faults, the input guardrail and the prompt cache;
    /// `Err` is the complete response.
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
        let served = Served::resolve(req.service_tier, req.latency, &req.last_user_text)
            .map_err(|msg| error(ErrorType::Validation, msg))?;

        let mut fault = None;
        let mut fault_delay = None;
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
                fault_delay = d.delay;
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
                if let Some(delay) = fault_delay
                    && !self.pause_until(started + delay).await
                {
                    return Err(shutting_down(&request_id));
                }
                return Err(error(kind, format!("{}: {msg}", kind.name())));
            }
            Some((FaultKind::Hang, _)) => return Err(self.hang(&request_id).await),
            Some((kind, msg)) => (Some(kind), msg),
            None => (None, String::new()),
        };

        let mut guarded = req.guardrail.clone().map(|g| Guarded {
            req: g,
            input: Assessment {
                chars: req.input_chars,
                blocked: self.guardrail.input_matches(&req.input_text),
            },
            output_block: None,
        });
        if guarded.as_ref().is_some_and(Guarded::input_blocked) {
            // The model is not invoked: no tokens, no cache, no mid-stream fault.
            self.stats.count_guardrail_block(true);
            let cache = (!req.cache_points.is_empty()).then(CacheUsage::default);
            return Ok(Prepared {
                request_id,
                started,
                reply: Reply::new(Vec::new(), None),
                usage: InputUsage { input: 0, cache },
                served,
                guarded,
                fault: None,
                fault_message: String::new(),
            });
        }

        let cache = self
            .cache
            .apply(model_id, &req.cache_points, Instant::now());
        let c = cache.unwrap_or_default();
        self.stats.count_cache(c.read > 0, c.write > 0);
        let usage = InputUsage {
            input: req.input_tokens.saturating_sub(c.read + c.write),
            cache,
        };
        let reply = Reply::new(
            canned_words(model_id, &req.last_user_text, req.user_messages),
            req.max_tokens,
        );
        // A mid-stream fault takes precedence over an output intervention.
        let fault_ends_reply = matches!(
            fault,
            Some(
                FaultKind::Midstream(_)
                    | FaultKind::Reset
                    | FaultKind::Malformed
                    | FaultKind::Stall
            )
        );
        if let Some(g) = guarded.as_mut().filter(|_| !fault_ends_reply) {
            g.output_block = self.guardrail.output_match(reply.words());
            if g.output_block.is_some() {
                self.stats.count_guardrail_block(false);
            }
        }
        Ok(Prepared {
            reply,
            usage,
            served,
            guarded,
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

    if p.fault == Some(FaultKind::Stall) {
        return state.hang(&p.request_id).await;
    }
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
    let input_blocked = p.guarded.as_ref().is_some_and(Guarded::input_blocked);
    if !input_blocked && !state.pause_until(p.started + pace.total(n)).await {
        return shutting_down(&p.request_id);
    }
    // The model's own time: request arrival to its last token (or to the guardrail's answer).
    let latency_ms = p.started.elapsed().as_millis() as u64;

    let (text, stop_reason, output_tokens, trace) = match &p.guarded {
        None => (p.reply.text(), p.reply.stop_reason, n as u64, None),
        Some(g) if g.input_blocked() => {
            let trace = GuardrailTrace {
                input: g.input.clone(),
                output: None,
                blocked_model_output: None,
            };
            let text = state.guardrail.blocked_input_message.clone();
            (text, StopReason::GuardrailIntervened, 0, Some(trace))
        }
        Some(g) => {
            // Buffered: the model generated the whole reply, then the guardrail assessed it.
            let reply_text = p.reply.text();
            let blocked = g.output_block.as_ref().map(|(_, w)| w.clone());
            let trace = GuardrailTrace {
                input: g.input.clone(),
                output: Some(Assessment {
                    chars: char_count(&reply_text),
                    blocked: blocked.clone().unwrap_or_default(),
                }),
                blocked_model_output: blocked.is_some().then(|| reply_text.clone()),
            };
            if blocked.is_some() {
                let text = state.guardrail.blocked_output_message.clone();
                (text, StopReason::GuardrailIntervened, n as u64, Some(trace))
            } else {
                (reply_text, p.reply.stop_reason, n as u64, Some(trace))
            }
        }
    };
    let mut response = Map::new();
    response.insert(
        "output".into(),
        json!({"message": {"role": "assistant", "content": [{"text": text}]}}),
    );
    response.insert("stopReason".into(), json!(stop_reason.as_str()));
    response.insert("metrics".into(), json!({ "latencyMs": latency_ms }));
    response.extend(p.members(output_tokens, trace.as_ref()));
    let json = Value::Object(response).to_string();

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
    let n = p.reply.output_tokens() as usize;
    let (ending, output_tokens, trace) = match &p.guarded {
        None => (Ending::Complete, n, None),
        Some(g) if g.input_blocked() => {
            let trace = GuardrailTrace {
                input: g.input.clone(),
                output: None,
                blocked_model_output: None,
            };
            let message = state.guardrail.blocked_input_message.as_str();
            (Ending::InputBlocked { message }, 0, Some(trace))
        }
        Some(g) => match &g.output_block {
            None => {
                let trace = GuardrailTrace {
                    input: g.input.clone(),
                    output: Some(Assessment {
                        chars: char_count(&p.reply.text()),
                        blocked: Vec::new(),
                    }),
                    blocked_model_output: None,
                };
                (Ending::Complete, n, Some(trace))
            }
            Some((k, words)) => {
                // sync: nothing from the blocked token on reaches the client; async: the scan
                // lags, so the blocked token and a few more do.
                let (last, sent) = if g.req.async_mode {
                    let last = (k + ASYNC_SCAN_LAG_TOKENS).min(n - 1);
                    (last, last + 1)
                } else {
                    (*k, *k)
                };
                let generated = p.reply.text_through(last);
                let trace = GuardrailTrace {
                    input: g.input.clone(),
                    output: Some(Assessment {
                        chars: char_count(&generated),
                        blocked: words.clone(),
                    }),
                    blocked_model_output: Some(generated),
                };
                let message = state.guardrail.blocked_output_message.as_str();
                let ending = Ending::OutputBlocked {
                    sent,
                    at: last,
                    message,
                };
                (ending, last + 1, Some(trace))
            }
        },
    };
    let metadata = p.members(output_tokens as u64, trace.as_ref());
    let plan = match Plan::new(&p.reply, pace, p.fault, &p.fault_message, ending, metadata) {
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

    /// A ConverseStream call, decoded: `(event type, payload)` per frame.
    async fn stream_call(router: &Router, path: &str, body: &str) -> Vec<(String, Value)> {
        use aws_smithy_eventstream::frame::read_message_from;
        use bytes::Buf;
        let req = Request::post(path)
            .body(Body::from(body.to_owned()))
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let mut events = Vec::new();
        while bytes.has_remaining() {
            let msg = read_message_from(&mut bytes).unwrap();
            let kind = msg
                .headers()
                .iter()
                .find(|h| h.name().as_str() == ":event-type")
                .map(|h| h.value().as_string().unwrap().as_str().to_owned())
                .unwrap_or_default();
            events.push((kind, serde_json::from_slice(msg.payload()).unwrap()));
        }
        events
    }

    fn converse_json(body: &str) -> Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    fn metadata(events: &[(String, Value)]) -> &Value {
        let (kind, v) = events.last().unwrap();
        assert_eq!(kind, "metadata");
        v
    }

    fn deltas(events: &[(String, Value)]) -> Vec<String> {
        events
            .iter()
            .filter(|(k, _)| k == "contentBlockDelta")
            .map(|(_, v)| v["delta"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    fn stop_reason(events: &[(String, Value)]) -> String {
        let (_, v) = events.iter().find(|(k, _)| k == "messageStop").unwrap();
        v["stopReason"].as_str().unwrap().to_owned()
    }

    /// A system prompt of `system_words` words with a cache point after it, and a question.
    fn cached_body(system_words: usize, question: &str) -> String {
        json!({
            "system": [{"text": vec!["word"; system_words].join(" ")}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [{"text": question}]}]
        })
        .to_string()
    }

    #[tokio::test]
    async fn cache_points_write_then_read_in_both_apis() {
        let (router, stats) = build_router(&OfflineConfig::default(), None);
        let body = cached_body(25, "what now?");

        let (status, _, b) = call(&router, "/model/m/converse", &body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let v = converse_json(&b);
        let out = v["usage"]["outputTokens"].as_u64().unwrap();
        assert_eq!(
            v["usage"],
            json!({"inputTokens": 2, "outputTokens": out, "totalTokens": 27 + out,
                   "cacheReadInputTokens": 0, "cacheWriteInputTokens": 25})
        );

        // A repeat, by the stream API, reads the same prefix.
        let events = stream_call(&router, "/model/m/converse-stream", &body).await;
        let u = &metadata(&events)["usage"];
        assert_eq!(
            (
                &u["inputTokens"],
                &u["cacheReadInputTokens"],
                &u["cacheWriteInputTokens"]
            ),
            (&json!(2), &json!(25), &json!(0))
        );
        assert_eq!(u["totalTokens"], 27 + u["outputTokens"].as_u64().unwrap());

        // Another model has its own cache; a different question shares the prefix.
        let v = converse_json(&call(&router, "/model/other/converse", &body).await.2);
        assert_eq!(v["usage"]["cacheWriteInputTokens"], 25);
        let other = cached_body(25, "a different question");
        let v = converse_json(&call(&router, "/model/m/converse", &other).await.2);
        assert_eq!(v["usage"]["cacheReadInputTokens"], 25);
        assert_eq!(v["usage"]["inputTokens"], 3);

        // Below the 20-token minimum nothing is cached, however often it is sent.
        let small = cached_body(10, "what now?");
        for _ in 0..2 {
            let v = converse_json(&call(&router, "/model/m/converse", &small).await.2);
            assert_eq!(v["usage"]["inputTokens"], 12);
            assert_eq!(v["usage"]["cacheReadInputTokens"], 0);
            assert_eq!(v["usage"]["cacheWriteInputTokens"], 0);
        }
        // Without cache points the usage has no cache fields.
        let v = converse_json(&call(&router, "/model/m/converse", &user("plain")).await.2);
        assert!(v["usage"].get("cacheReadInputTokens").is_none(), "{v}");
        assert!(v["usage"].get("cacheWriteInputTokens").is_none(), "{v}");

        assert_eq!((stats.cache_writes(), stats.cache_reads()), (2, 2));
    }

    #[tokio::test]
    async fn served_tier_and_latency_are_echoed_or_overridden() {
        let (router, _) = build_router(&OfflineConfig::default(), None);
        let body = |text: &str| {
            json!({
                "messages": [{"role": "user", "content": [{"text": text}]}],
                "serviceTier": {"type": "priority"},
                "performanceConfig": {"latency": "optimized"}
            })
            .to_string()
        };
        let v = converse_json(&call(&router, "/model/m/converse", &body("hi")).await.2);
        assert_eq!(v["serviceTier"], json!({"type": "priority"}));
        assert_eq!(v["performanceConfig"], json!({"latency": "optimized"}));

        let fallback = body("hi #served-tier=default #served-latency=standard");
        let events = stream_call(&router, "/model/m/converse-stream", &fallback).await;
        let meta = metadata(&events);
        assert_eq!(meta["serviceTier"], json!({"type": "default"}));
        assert_eq!(meta["performanceConfig"], json!({"latency": "standard"}));
        assert!(!deltas(&events).concat().contains("#served"));

        let v = converse_json(&call(&router, "/model/m/converse", &user("hi")).await.2);
        assert!(v.get("serviceTier").is_none() && v.get("performanceConfig").is_none());
        let v = converse_json(
            &call(&router, "/model/m/converse", &user("hi #served-tier=flex"))
                .await
                .2,
        );
        assert_eq!(v["serviceTier"], json!({"type": "flex"}));
        assert!(v.get("performanceConfig").is_none());

        let (status, kind, _) =
            call(&router, "/model/m/converse", &user("hi #served-tier=gold")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(kind.as_deref(), Some("ValidationException"));
    }

    fn guarded_config() -> OfflineConfig {
        OfflineConfig {
            guardrail_blocked_words: vec!["kraken".into()],
            guardrail_blocked_output_words: vec!["squid".into()],
            guardrail_blocked_output_message: "Output blocked.".into(),
            ..OfflineConfig::default()
        }
    }

    fn guarded_body(text: &str, trace: &str, mode: &str) -> String {
        json!({
            "system": [{"text": "Be kind."}],
            "messages": [{"role": "user", "content": [{"text": text}]}],
            "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "1",
                                "trace": trace, "streamProcessingMode": mode}
        })
        .to_string()
    }

    #[tokio::test]
    async fn guardrail_blocks_input_without_model_tokens() {
        let (router, stats) = build_router(&guarded_config(), None);
        let text = "Tell me of the Kraken.";
        let body = guarded_body(text, "enabled", "sync");
        let v = converse_json(&call(&router, "/model/m/converse", &body).await.2);
        assert_eq!(v["stopReason"], "guardrail_intervened");
        assert_eq!(
            v["output"]["message"]["content"][0]["text"],
            crate::config::DEFAULT_GUARDRAIL_BLOCKED_MESSAGE
        );
        assert_eq!(
            v["usage"],
            json!({"inputTokens": 0, "outputTokens": 0, "totalTokens": 0})
        );
        let g = &v["trace"]["guardrail"];
        assert_eq!(g["actionReason"], "Guardrail blocked.");
        assert!(g.get("outputAssessments").is_none());
        let a = &g["inputAssessment"]["gr1"];
        assert_eq!(
            a["wordPolicy"]["customWords"],
            json!([{"match": "kraken", "action": "BLOCKED", "detected": true}])
        );
        let chars = ("Be kind.".len() + text.len()) as u64;
        assert_eq!(
            a["invocationMetrics"]["guardrailCoverage"]["textCharacters"],
            json!({"guarded": chars, "total": chars})
        );
        assert_eq!(a["invocationMetrics"]["usage"]["wordPolicyUnits"], 1);
        assert_eq!(a["invocationMetrics"]["usage"]["contentPolicyUnits"], 1);

        let events = stream_call(&router, "/model/m/converse-stream", &body).await;
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        assert_eq!(
            deltas(&events),
            [crate::config::DEFAULT_GUARDRAIL_BLOCKED_MESSAGE]
        );
        assert_eq!(stop_reason(&events), "guardrail_intervened");
        assert_eq!(metadata(&events)["usage"]["totalTokens"], 0);
        assert!(metadata(&events)["trace"]["guardrail"]["inputAssessment"]["gr1"].is_object());

        // trace disabled: the same intervention, no trace. Without guardrailConfig: no check.
        let v = converse_json(
            &call(
                &router,
                "/model/m/converse",
                &guarded_body(text, "disabled", "sync"),
            )
            .await
            .2,
        );
        assert_eq!(v["stopReason"], "guardrail_intervened");
        assert!(v.get("trace").is_none());
        let v = converse_json(&call(&router, "/model/m/converse", &user(text)).await.2);
        assert_eq!(v["stopReason"], "end_turn");
        assert_eq!(stats.guardrail_input_blocks(), 3);
    }

    #[tokio::test]
    async fn guardrail_blocks_output_mid_stream() {
        let (router, stats) = build_router(&guarded_config(), None);
        // The reply quotes the message; "squid" is its word 19 (0-based).
        let text = "Tell me about the squid please";
        let full = canned_words("m", text, 1);
        let k = full.iter().position(|w| w == "squid").unwrap();
        assert_eq!(k, 19);
        let n = full.len();

        // Converse: the whole reply was generated, then replaced; all its tokens billed.
        let body = guarded_body(text, "enabled_full", "sync");
        let v = converse_json(&call(&router, "/model/m/converse", &body).await.2);
        assert_eq!(v["stopReason"], "guardrail_intervened");
        assert_eq!(
            v["output"]["message"]["content"][0]["text"],
            "Output blocked."
        );
        assert_eq!(v["usage"]["inputTokens"], 2 + 6);
        assert_eq!(v["usage"]["outputTokens"], n);
        let g = &v["trace"]["guardrail"];
        assert_eq!(g["modelOutput"], json!([full.join(" ")]));
        assert!(g["inputAssessment"]["gr1"].get("wordPolicy").is_none());
        let out = &g["outputAssessments"]["gr1"][0];
        assert_eq!(out["wordPolicy"]["customWords"][0]["match"], "squid");
        let chars = full.join(" ").chars().count() as u64;
        assert_eq!(
            out["invocationMetrics"]["guardrailCoverage"]["textCharacters"]["total"],
            chars
        );

        // Stream, sync: the words before "squid", then the message; tokens through "squid".
        let events = stream_call(&router, "/model/m/converse-stream", &body).await;
        let d = deltas(&events);
        assert_eq!(d.len(), k + 1);
        assert_eq!(d[..k].concat(), format!("{} ", full[..k].join(" ")));
        assert_eq!(d[k], "Output blocked.");
        assert_eq!(stop_reason(&events), "guardrail_intervened");
        let meta = metadata(&events);
        assert_eq!(meta["usage"]["outputTokens"], k + 1);
        assert_eq!(meta["usage"]["totalTokens"], 8 + k + 1);
        let seen = full[..=k].join(" ");
        assert_eq!(meta["trace"]["guardrail"]["modelOutput"], json!([seen]));

        // Stream, async: "squid" and two more words reach the client first.
        let body = guarded_body(text, "enabled", "async");
        let events = stream_call(&router, "/model/m/converse-stream", &body).await;
        let d = deltas(&events);
        let last = k + ASYNC_SCAN_LAG_TOKENS;
        assert_eq!(d.len(), last + 2);
        assert!(d[k].starts_with("squid"));
        assert_eq!(d[last + 1], "Output blocked.");
        let meta = metadata(&events);
        assert_eq!(meta["usage"]["outputTokens"], last + 1);
        let g = &meta["trace"]["guardrail"];
        assert!(g.get("modelOutput").is_none(), "only with enabled_full");
        let out = &g["outputAssessments"]["gr1"][0];
        assert_eq!(
            out["invocationMetrics"]["guardrailCoverage"]["textCharacters"]["guarded"],
            full[..=last].join(" ").chars().count()
        );

        // A reply cut by maxTokens before "squid" passes, with a clean trace.
        let cut = json!({
            "messages": [{"role": "user", "content": [{"text": text}]}],
            "inferenceConfig": {"maxTokens": 10},
            "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "DRAFT", "trace": "enabled"}
        })
        .to_string();
        let v = converse_json(&call(&router, "/model/m/converse", &cut).await.2);
        assert_eq!(v["stopReason"], "max_tokens");
        let g = &v["trace"]["guardrail"];
        assert_eq!(g["actionReason"], "No action.");
        assert_eq!(
            g["outputAssessments"]["gr1"][0]["invocationMetrics"]["usage"]["wordPolicyUnits"],
            1
        );
        assert_eq!(stats.guardrail_output_blocks(), 3);
        assert_eq!(stats.guardrail_input_blocks(), 0);
    }

    #[tokio::test]
    async fn latency_ms_is_the_models_own_time() {
        let config = OfflineConfig {
            ttft_ms: 30,
            tokens_per_sec: 1000.0,
            ..OfflineConfig::default()
        };
        let (router, _) = build_router(&config, None);
        let n = canned_words("m", "time me", 1).len() as u64;
        let planned = 30 + (n - 1);

        let started = std::time::Instant::now();
        let v = converse_json(&call(&router, "/model/m/converse", &user("time me")).await.2);
        let wall = started.elapsed().as_millis() as u64;
        let latency = v["metrics"]["latencyMs"].as_u64().unwrap();
        assert!(
            (planned..=wall).contains(&latency),
            "{planned} <= {latency} <= {wall}"
        );

        let started = std::time::Instant::now();
        let events = stream_call(&router, "/model/m/converse-stream", &user("time me")).await;
        let wall = started.elapsed().as_millis() as u64;
        let latency = metadata(&events)["metrics"]["latencyMs"].as_u64().unwrap();
        assert!(
            (planned..=wall).contains(&latency),
            "{planned} <= {latency} <= {wall}"
        );
    }
}
