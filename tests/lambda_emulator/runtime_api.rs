//! The Lambda Runtime API (2018-06-01) over loopback HTTP: hands queued events to the function's
//! `/next` long-poll and collects what it posts back.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use super::invocation::{InitError, Outcome};
use super::lock::lock;
use super::streamed_body::StreamedBody;

const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";
const RESPONSE_MODE_HEADER: &str = "lambda-runtime-function-response-mode";

/// An event waiting for the function's next poll.
pub struct Queued {
    pub request_id: String,
    pub event: Value,
    pub trace_id: Option<String>,
    pub deadline: Duration,
    pub reply: oneshot::Sender<Reply>,
}

/// What the function posted for one event.
pub struct Reply {
    pub polled_at: Instant,
    pub finished_at: Instant,
    pub outcome: Outcome,
}

/// An event the function has polled but not yet answered.
struct InFlight {
    polled_at: Instant,
    reply: oneshot::Sender<Reply>,
}

struct ApiState {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: Mutex<Option<InitError>>,
}

/// The running server. Dropping it stops the server and drops its open connections.
///
/// It runs on its own thread and runtime, so it answers the function (and timestamps stream
/// chunks) even while the test's runtime is busy or blocked.
pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<ApiState>,
    queue: mpsc::UnboundedSender<Queued>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl RuntimeApi {
    pub fn start(function_arn: String) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            function_arn,
            queue: tokio::sync::Mutex::new(queue_rx),
            in_flight: Mutex::new(HashMap::new()),
            first_poll: watch::Sender::new(None),
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("runtime-api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // Not graceful: a long-polling `/next` would hold a graceful shutdown open.
                    tokio::select! {
                        _ = axum::serve(listener, app).into_future() => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here cancels every open connection.
            })?;
        Ok(Self {
            addr,
            state,
            queue,
            stop: Mutex::new(Some(stop)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn enqueue(&self, queued: Queued) {
        // The receiver lives in `state`, which `self` keeps alive, so sending cannot fail.
        let _ = self.queue.send(queued);
    }

    /// Gives up on an invocation; returns whether the function had polled it.
    pub fn forget(&self, request_id: &str) -> bool {
        lock(&self.state.in_flight).remove(request_id).is_some()
    }

    pub fn first_poll_at(&self) -> Option<Instant> {
        *self.state.first_poll.borrow()
    }

    pub async fn wait_for_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let mut rx = self.state.first_poll.subscribe();
        let polled = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        polled.ok().and_then(|r| r.ok()).and_then(|v| *v)
    }

    pub fn init_error(&self) -> Option<InitError> {
        lock(&self.state.init_error).clone()
    }

    pub fn stop(&self) {
        if let Some(stop) = lock(&self.stop).take() {
            // Err only if the server thread already ended.
            let _ = stop.send(());
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn next_event(State(state): State<Arc<ApiState>>) -> Response {
    let arrived = Instant::now();
    state.first_poll.send_if_modified(|first| {
        let unset = first.is_none();
        if unset {
            *first = Some(arrived);
        }
        unset
    });
    // Long-poll: one poller at a time takes the next queued event, skipping events whose test
    // stopped waiting before the function got to them.
    let queued = {
        let mut queue = state.queue.lock().await;
        loop {
            match queue.recv().await {
                Some(queued) if queued.reply.is_closed() => continue,
                other => break other,
            }
        }
    };
    let Some(queued) = queued else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "emulator shutting down").into_response();
    };
    let polled_at = Instant::now();
    let deadline_ms = (SystemTime::now() + queued.deadline)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &queued.request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &state.function_arn);
    if let Some(trace_id) = &queued.trace_id {
        response = response.header("lambda-runtime-trace-id", trace_id);
    }
    let in_flight = InFlight {
        polled_at,
        reply: queued.reply,
    };
    lock(&state.in_flight).insert(queued.request_id, in_flight);
    response
        .body(Body::from(queued.event.to_string()))
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn invocation_response(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let Some(in_flight) = lock(&state.in_flight).remove(&id) else {
        return invalid_request_id(&id);
    };
    let streaming = request
        .headers()
        .get(RESPONSE_MODE_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
    let mut body = request.into_body();
    let outcome = if streaming {
        let mut streamed = StreamedBody::default();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => streamed.push(Instant::now(), data),
                    Err(frame) => {
                        if let Some(trailers) = frame.trailers_ref() {
                            streamed.trailers(trailers);
                        }
                    }
                },
                Err(e) => {
                    streamed.transport_error(e.to_string());
                    break;
                }
            }
        }
        streamed.finish()
    } else {
        Outcome::Buffered {
            body: read_json(body).await,
        }
    };
    finish(in_flight, outcome)
}

async fn invocation_error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let Some(in_flight) = lock(&state.in_flight).remove(&id) else {
        return invalid_request_id(&id);
    };
    let outcome = Outcome::Error {
        error_type: error_type(&headers),
        body: read_json(request.into_body()).await,
    };
    finish(in_flight, outcome)
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let error = InitError {
        at: Instant::now(),
        error_type: error_type(&headers),
        body: read_json(request.into_body()).await,
    };
    *lock(&state.init_error) = Some(error);
    accepted()
}

fn finish(in_flight: InFlight, outcome: Outcome) -> Response {
    let reply = Reply {
        polled_at: in_flight.polled_at,
        finished_at: Instant::now(),
        outcome,
    };
    // The test may have stopped waiting (timeout); the reply is then simply dropped.
    let _ = in_flight.reply.send(reply);
    accepted()
}

/// The body as JSON, or as a JSON string when it is not JSON.
async fn read_json(body: Body) -> Value {
    match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        }
        Err(e) => Value::String(format!("emulator could not read the body: {e}")),
    }
}

fn error_type(headers: &HeaderMap) -> String {
    headers
        .get(ERROR_TYPE_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// The Runtime API answers accepted posts with 202 and this body.
fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn invalid_request_id(id: &str) -> Response {
    let body = json!({
        "errorType": "InvalidRequestID",
        "errorMessage": format!("no invocation in flight with request id {id}"),
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}
