//! Routes that panic on purpose (only with `CHATBOT_DIAGNOSTIC_ROUTES=true`), for tests and
//! drills proving a panic still yields an answer, a log line, an EMF document and a trace:
//!
//! - `POST /api/_diag/panic`: the handler panics, before any response (→ 500 JSON error);
//! - `POST /api/_diag/panic-midstream`: an SSE reply panics after `meta` and a `delta` went
//!   out (→ an `error` event, `internal`). A route of its own rather than a marker in a chat
//!   message, so nothing on the chat path reads diagnostic input.

use std::convert::Infallible;
use std::task::Poll;

use axum::extract::Extension;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream;
use serde_json::json;

use crate::error::ApiError;
use crate::telemetry::layer::Ctx;

pub async fn panic() -> ApiError {
    panic!("diagnostic panic requested")
}

pub async fn panic_midstream(Extension(Ctx(ctx)): Extension<Ctx>) -> Response {
    let began = [
        ("meta", json!({"requestId": ctx.request_id})),
        ("delta", json!({"text": "this reply will panic"})),
    ]
    .map(|(name, data)| {
        Ok::<_, Infallible>(
            Event::default()
                .event(name)
                .json_data(data)
                .expect("serialises"),
        )
    });
    let panics = stream::poll_fn(|_| -> Poll<Option<Result<Event, Infallible>>> {
        panic!("diagnostic panic requested mid-stream")
    });
    Sse::new(stream::iter(began).chain(panics)).into_response()
}
