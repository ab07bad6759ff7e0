//! Opening the AWS connections at start-up, so that a fresh process's first request pays no
//! TCP + TLS set-up and no credential resolution ("the cold path is the normal path": at a few
//! thousand requests a month nearly every request lands on a new Lambda sandbox).
//!
//! **What is sent.** Each target is warmed by one operation of its *own* SDK client — so the
//! connection lands in the very pool (the [`SharedHttpClient`](aws_smithy_runtime_api::client::http::SharedHttpClient)
//! connector, chosen by the client's timeout settings) that the client's later calls use, and the
//! client's identity cache resolves and keeps the credentials — but an interceptor, [`BareGet`],
//! replaces the signed request just before it is sent with a bare `GET /`: no body, no headers
//! (hyper adds `Host`), no signature. An unsigned `GET /` names no API operation, so the endpoint
//! rejects it at its front door: nothing is invoked, billed, written or logged as an API call.
//! (Bedrock Runtime answers it with an error; DynamoDB answers `GET /` with a short health text.
//! Neither answer was observed here — there is no AWS access — and any HTTP answer counts: it
//! proves the connection is open.) Retries are off for the warm-up call, so it is one attempt.
//! Its timeouts are *not* overridden: the SDK's HTTP client keeps one pool per (connect
//! timeout, read timeout) pair, and a warm-up with other timeouts would warm a pool no request
//! uses (`tests/cold_path.rs` counts the connections, so that mistake fails a test).
//!
//! **Bounded.** The targets are warmed concurrently; start-up waits for them at most
//! `CHATBOT_PREWARM_TIMEOUT_MS` (0 = off) and never fails because of them: a warm-up still
//! running at the bound is left to finish in the background (a connection it opens is still
//! pooled), and a failure is only logged — the first request then connects as it would have
//! anyway. One log line says what happened.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Headers;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

type Warm = Pin<Box<dyn Future<Output = Result<u16, String>> + Send>>;

/// One endpoint to warm: a name for the log line and the warm-up call.
pub struct Target {
    name: &'static str,
    warm: Warm,
}

/// Bedrock Runtime, through the client the model calls use.
pub fn bedrock(client: &aws_sdk_bedrockruntime::Client) -> Target {
    let get = BareGet::default();
    let status = get.status.clone();
    // Converse, because its client is the one to warm; the request never leaves the process as
    // a Converse call (and if the interceptor were lost, a signed Converse with no messages
    // and the model id "prewarm" is a ValidationException, not an invocation).
    let call = client
        .converse()
        .model_id("prewarm")
        .customize()
        .config_override(
            aws_sdk_bedrockruntime::config::Builder::default()
                .retry_config(RetryConfig::disabled()),
        )
        .interceptor(get)
        .send();
    Target {
        name: "bedrock-runtime",
        warm: Box::pin(async move { answered(call.await.err(), &status) }),
    }
}

/// DynamoDB, through the state store's client.
pub fn dynamodb(client: &aws_sdk_dynamodb::Client) -> Target {
    let get = BareGet::default();
    let status = get.status.clone();
    let call = client
        .list_tables()
        .limit(1)
        .customize()
        .config_override(
            aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()),
        )
        .interceptor(get)
        .send();
    Target {
        name: "dynamodb",
        warm: Box::pin(async move { answered(call.await.err(), &status) }),
    }
}

/// Any HTTP answer means the connection was opened (and, read to its end, went back to the
/// pool); no answer means the call failed before one, and the error says why.
fn answered<E: std::error::Error + 'static>(
    error: Option<E>,
    status: &AtomicU16,
) -> Result<u16, String> {
    match status.load(Ordering::Relaxed) {
        0 => Err(error.map_or_else(|| "no answer".to_owned(), |e| causes(&e))),
        answered => Ok(answered),
    }
}

/// An error and its sources on one line (`DisplayErrorContext` would append the whole `Debug`
/// form too, several hundred characters for a refused connection).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}

/// What became of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered (with this HTTP status) over a connection now in the pool.
    Warmed { elapsed: Duration, status: u16 },
    /// Still under way at the bound; left to finish in the background.
    TimedOut { bound: Duration },
    /// No answer: the first request will connect itself.
    Failed { elapsed: Duration, reason: String },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Warmed { elapsed, status } => {
                write!(f, "warmed in {} ms (HTTP {status})", elapsed.as_millis())
            }
            Outcome::TimedOut { bound } => write!(
                f,
                "timed out after {} ms (left to finish in the background)",
                bound.as_millis()
            ),
            Outcome::Failed { elapsed, reason } => {
                write!(f, "failed after {} ms: {reason}", elapsed.as_millis())
            }
        }
    }
}

/// Warms `targets` concurrently, waiting at most `bound` (zero: nothing is done), and logs one
/// line with the outcome. Never fails.
pub async fn warm(bound: Duration, targets: Vec<Target>) -> Vec<(&'static str, Outcome)> {
    if bound.is_zero() {
        tracing::info!(
            prewarm = "skipped",
            "prewarm skipped (CHATBOT_PREWARM_TIMEOUT_MS=0)"
        );
        return Vec::new();
    }
    if targets.is_empty() {
        tracing::info!(
            prewarm = "skipped",
            "prewarm skipped: no remote endpoint to open"
        );
        return Vec::new();
    }
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + bound;
    let running: Vec<_> = targets
        .into_iter()
        .map(|t| {
            let warm = t.warm;
            let task = tokio::spawn(async move {
                let began = Instant::now();
                (warm.await, began.elapsed())
            });
            (t.name, task)
        })
        .collect();
    let mut outcomes = Vec::with_capacity(running.len());
    for (name, mut task) in running {
        let outcome = match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok((Ok(status), elapsed))) => Outcome::Warmed { elapsed, status },
            Ok(Ok((Err(reason), elapsed))) => Outcome::Failed { elapsed, reason },
            Ok(Err(join)) => Outcome::Failed {
                elapsed: started.elapsed(),
                reason: join.to_string(),
            },
            // Dropping the handle detaches the task: it finishes (or fails) by itself, bounded
            // by the client's own connect and operation timeouts.
            Err(_) => Outcome::TimedOut { bound },
        };
        outcomes.push((name, outcome));
    }
    let summary = outcomes
        .iter()
        .map(|(name, outcome)| format!("{name} {outcome}"))
        .collect::<Vec<_>>()
        .join("; ");
    let prewarm_ms = started.elapsed().as_secs_f64() * 1e3;
    let any = |f: fn(&Outcome) -> bool| outcomes.iter().any(|(_, o)| f(o));
    if any(|o| matches!(o, Outcome::Failed { .. })) {
        tracing::warn!(
            prewarm = "failed",
            prewarmMs = prewarm_ms,
            "prewarm: {summary}"
        );
    } else if any(|o| matches!(o, Outcome::TimedOut { .. })) {
        tracing::warn!(
            prewarm = "timed out",
            prewarmMs = prewarm_ms,
            "prewarm: {summary}"
        );
    } else {
        tracing::info!(
            prewarm = "warmed",
            prewarmMs = prewarm_ms,
            "prewarm: {summary}"
        );
    }
    outcomes
}

/// Turns the operation's signed request, just before it is sent, into a bare `GET /` on the
/// same endpoint, and notes the status of the answer.
#[derive(Debug, Clone, Default)]
pub struct BareGet {
    status: Arc<AtomicU16>,
}

impl Intercept for BareGet {
    fn name(&self) -> &'static str {
        "PrewarmBareGet"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let uri: http::Uri = request.uri().parse()?;
        let root = http::Uri::builder()
            .scheme(uri.scheme().cloned().ok_or("endpoint without a scheme")?)
            .authority(uri.authority().cloned().ok_or("endpoint without a host")?)
            .path_and_query("/")
            .build()?;
        request.set_method("GET")?;
        request.set_uri(root.to_string())?;
        *request.headers_mut() = Headers::new();
        *request.body_mut() = SdkBody::empty();
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().status().as_u16();
        self.status.store(status, Ordering::Relaxed);
        Ok(())
    }
}
