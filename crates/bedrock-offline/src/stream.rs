//! The ConverseStream body: a plan of timed frames, sent one by one as their time comes, so the
//! client sees a real time to first token and a reply that grows.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::eventstream::{FrameError, corrupt, event_frame, exception_frame};
use crate::faults::FaultKind;
use crate::pace::Pace;
use crate::stats::StreamGuard;
use crate::tokens::Reply;

/// Deltas sent before a mid-stream fault (`midstream*`, `reset`, `malformed`).
pub const FAULT_AFTER_TOKENS: usize = 3;

/// Pause before an injected connection reset. Without it, at zero latency the frames before
/// the reset would still sit in hyper's write buffer and never reach the client.
pub const RESET_GAP: Duration = Duration::from_millis(10);

enum Action {
    Send(Bytes),
    /// The `metadata` event, built when sent so `latencyMs` is the real elapsed time.
    Metadata {
        input_tokens: u64,
        output_tokens: u64,
    },
    /// Abort the body: hyper then drops the connection without finishing the response.
    Abort(&'static str),
}

struct Step {
    at: Duration,
    action: Action,
}

/// The frames of one stream, with the time after the request started at which each is due.
pub struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    /// Plans the stream of `reply` at `pace`; `fault` is `None` or a mid-stream fault
    /// (`Midstream`, `Reset`, `Malformed`; other kinds were handled before the stream).
    pub fn new(
        reply: &Reply,
        input_tokens: u64,
        pace: Pace,
        fault: Option<FaultKind>,
        fault_message: &str,
    ) -> Result<Self, FrameError> {
        let n = reply.output_tokens() as usize;
        let mut steps = Vec::with_capacity(n + 4);
        steps.push(Step {
            at: Duration::ZERO,
            action: Action::Send(event_frame("messageStart", &json!({"role": "assistant"}))?),
        });
        let delta = |i: usize| {
            event_frame(
                "contentBlockDelta",
                &json!({"delta": {"text": reply.delta(i)}, "contentBlockIndex": 0}),
            )
        };
        let sent = match fault {
            Some(FaultKind::Midstream(_) | FaultKind::Reset | FaultKind::Malformed) => {
                n.min(FAULT_AFTER_TOKENS)
            }
            _ => n,
        };
        for i in 0..sent {
            steps.push(Step {
                at: pace.token_at(i),
                action: Action::Send(delta(i)?),
            });
        }
        let fault_at = pace.token_at(sent);
        match fault {
            Some(FaultKind::Midstream(kind)) => {
                // Every `midstream*` kind names a streamable type; fall back to a 500 anyway.
                let exception = kind
                    .stream_exception_type()
                    .unwrap_or("internalServerException");
                steps.push(Step {
                    at: fault_at,
                    action: Action::Send(exception_frame(exception, fault_message)?),
                });
            }
            Some(FaultKind::Reset) => steps.push(Step {
                at: fault_at + RESET_GAP,
                action: Action::Abort("offline model: injected connection reset"),
            }),
            Some(FaultKind::Malformed) => steps.push(Step {
                at: fault_at,
                action: Action::Send(corrupt(&event_frame(
                    "contentBlockStop",
                    &json!({"contentBlockIndex": 0}),
                )?)),
            }),
            _ => {
                let end = pace.total(n);
                for (event, payload) in [
                    ("contentBlockStop", json!({"contentBlockIndex": 0})),
                    (
                        "messageStop",
                        json!({"stopReason": reply.stop_reason.as_str()}),
                    ),
                ] {
                    steps.push(Step {
                        at: end,
                        action: Action::Send(event_frame(event, &payload)?),
                    });
                }
                steps.push(Step {
                    at: end,
                    action: Action::Metadata {
                        input_tokens,
                        output_tokens: reply.output_tokens(),
                    },
                });
            }
        }
        Ok(Self { steps })
    }

    /// The response body: sends each frame when due. Holds `guard` until the body is dropped,
    /// which hyper does as soon as the client disconnects. On server shutdown it aborts.
    pub fn into_body(
        self,
        started: Instant,
        guard: StreamGuard,
        shutdown: watch::Receiver<bool>,
    ) -> Body {
        let state = BodyState {
            steps: self.steps.into_iter(),
            started,
            guard,
            shutdown,
            done: false,
        };
        Body::from_stream(futures_util::stream::unfold(state, next_chunk))
    }
}

struct BodyState {
    steps: std::vec::IntoIter<Step>,
    started: Instant,
    guard: StreamGuard,
    shutdown: watch::Receiver<bool>,
    done: bool,
}

async fn next_chunk(mut st: BodyState) -> Option<(io::Result<Bytes>, BodyState)> {
    if st.done {
        return None;
    }
    let step = st.steps.next()?;
    let due = st.started + step.at;
    if due > Instant::now() {
        let shutting_down = tokio::select! {
            _ = tokio::time::sleep_until(due) => false,
            _ = st.shutdown.wait_for(|stop| *stop) => true,
        };
        if shutting_down {
            st.guard.finish();
            st.done = true;
            return Some((Err(io::Error::other("offline model shutting down")), st));
        }
    }
    if st.steps.len() == 0 {
        // The last frame goes to hyper now: whatever happens next is not a cancellation.
        st.guard.finish();
    }
    let chunk = match step.action {
        Action::Send(frame) => Ok(frame),
        Action::Metadata {
            input_tokens,
            output_tokens,
        } => event_frame(
            "metadata",
            &json!({
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": st.started.elapsed().as_millis() as u64},
            }),
        )
        .map_err(io::Error::other),
        Action::Abort(why) => {
            st.done = true;
            Err(io::Error::new(io::ErrorKind::ConnectionReset, why))
        }
    };
    Some((chunk, st))
}
