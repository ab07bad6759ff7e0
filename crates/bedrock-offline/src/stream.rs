//! The ConverseStream body: a plan of timed frames, sent one by one as their time comes, so the
//! client sees a real time to first token and a reply that grows.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::eventstream::{FrameError, corrupt, event_frame, exception_frame};
use crate::faults::FaultKind;
use crate::pace::Pace;
use crate::stats::StreamGuard;
use crate::tokens::{Reply, StopReason};

/// Deltas sent before a mid-stream fault (`midstream*`, `reset`, `malformed`, `stall`).
pub const FAULT_AFTER_TOKENS: usize = 3;

/// How long a stalled stream stays silent: longer than any test or client waits.
const STALL: Duration = Duration::from_secs(24 * 3600);

/// Pause before an injected connection reset. Without it, at zero latency the frames before
/// the reset would still sit in hyper's write buffer and never reach the client.
pub const RESET_GAP: Duration = Duration::from_millis(10);

enum Action {
    Send(Bytes),
    /// The `metadata` event: these members plus `metrics.latencyMs`, which is only known when
    /// the last token has gone out.
    Metadata(Map<String, Value>),
    /// Abort the body: hyper then drops the connection without finishing the response.
    Abort(&'static str),
}

struct Step {
    at: Duration,
    action: Action,
    /// The model's last token (or the guardrail's message replacing it): its send time is
    /// the `latencyMs` reported in `metadata`.
    last_token: bool,
}

impl Step {
    fn send(at: Duration, frame: Bytes) -> Self {
        Self {
            at,
            action: Action::Send(frame),
            last_token: false,
        }
    }
}

/// How the reply ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending<'a> {
    /// Every token of the reply is sent; stop reason `end_turn` or `max_tokens`.
    Complete,
    /// The guardrail blocked the output: reply tokens `0..sent` go out, then `message` at the
    /// time of token `at` (the last one the model generated); `guardrail_intervened`.
    OutputBlocked {
        sent: usize,
        at: usize,
        message: &'a str,
    },
    /// The guardrail blocked the input: the model never ran; `message` is the only delta
    /// (at once); `guardrail_intervened`.
    InputBlocked { message: &'a str },
}

/// The frames of one stream, with the time after the request started at which each is due.
pub struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    /// Plans the stream of `reply` at `pace`, ending as `ending` says, with `metadata` (the
    /// metadata event's members other than `metrics`). `fault` is `None` or a mid-stream fault
    /// (`Midstream`, `Reset`, `Malformed`; other kinds were handled before the stream); a
    /// mid-stream fault takes precedence over an output intervention.
    pub fn new(
        reply: &Reply,
        pace: Pace,
        fault: Option<FaultKind>,
        fault_message: &str,
        ending: Ending<'_>,
        metadata: Map<String, Value>,
    ) -> Result<Self, FrameError> {
        let n = reply.output_tokens() as usize;
        let mut steps = Vec::with_capacity(n + 4);
        steps.push(Step::send(
            Duration::ZERO,
            event_frame("messageStart", &json!({"role": "assistant"}))?,
        ));
        let text_delta = |text: &str| {
            event_frame(
                "contentBlockDelta",
                &json!({"delta": {"text": text}, "contentBlockIndex": 0}),
            )
        };
        let faulted = matches!(
            fault,
            Some(
                FaultKind::Midstream(_)
                    | FaultKind::Reset
                    | FaultKind::Malformed
                    | FaultKind::Stall
            )
        );
        let sent = match ending {
            _ if faulted => n.min(FAULT_AFTER_TOKENS),
            Ending::Complete => n,
            Ending::OutputBlocked { sent, .. } => sent.min(n),
            Ending::InputBlocked { .. } => 0,
        };
        for i in 0..sent {
            steps.push(Step::send(pace.token_at(i), text_delta(&reply.delta(i))?));
        }
        if let Some(last) = steps.last_mut().filter(|_| sent > 0) {
            last.last_token = matches!(ending, Ending::Complete) && !faulted;
        }
        let fault_at = pace.token_at(sent);
        match fault {
            Some(FaultKind::Midstream(kind)) => {
                // Every `midstream*` kind names a streamable type; fall back to a 500 anyway.
                let exception = kind
                    .stream_exception_type()
                    .unwrap_or("internalServerException");
                steps.push(Step::send(
                    fault_at,
                    exception_frame(exception, fault_message)?,
                ));
            }
            Some(FaultKind::Reset) => steps.push(Step {
                at: fault_at + RESET_GAP,
                action: Action::Abort("offline model: injected connection reset"),
                last_token: false,
            }),
            // Nothing more until the client gives up or the server shuts down.
            Some(FaultKind::Stall) => steps.push(Step {
                at: fault_at + STALL,
                action: Action::Abort("offline model: stalled stream given up"),
                last_token: false,
            }),
            Some(FaultKind::Malformed) => steps.push(Step::send(
                fault_at,
                corrupt(&event_frame(
                    "contentBlockStop",
                    &json!({"contentBlockIndex": 0}),
                )?),
            )),
            _ => {
                let (end, stop_reason) = match ending {
                    Ending::Complete => (pace.total(n), reply.stop_reason),
                    Ending::OutputBlocked { at, message, .. } => {
                        let end = pace.token_at(at);
                        // After the reply's last word (no trailing space), keep words apart.
                        let sep = if sent == n && sent > 0 { " " } else { "" };
                        steps.push(Step {
                            at: end,
                            action: Action::Send(text_delta(&format!("{sep}{message}"))?),
                            last_token: true,
                        });
                        (end, StopReason::GuardrailIntervened)
                    }
                    Ending::InputBlocked { message } => {
                        steps.push(Step {
                            at: Duration::ZERO,
                            action: Action::Send(text_delta(message)?),
                            last_token: true,
                        });
                        (Duration::ZERO, StopReason::GuardrailIntervened)
                    }
                };
                for (event, payload) in [
                    ("contentBlockStop", json!({"contentBlockIndex": 0})),
                    ("messageStop", json!({"stopReason": stop_reason.as_str()})),
                ] {
                    steps.push(Step::send(end, event_frame(event, &payload)?));
                }
                steps.push(Step {
                    at: end,
                    action: Action::Metadata(metadata),
                    last_token: false,
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
            model_done: None,
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
    /// When the model's last token went out (the `latencyMs` of `metadata`).
    model_done: Option<Duration>,
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
    if step.last_token {
        st.model_done = Some(st.started.elapsed());
    }
    let chunk = match step.action {
        Action::Send(frame) => Ok(frame),
        Action::Metadata(mut members) => {
            let latency = st.model_done.unwrap_or_else(|| st.started.elapsed());
            members.insert(
                "metrics".into(),
                json!({"latencyMs": latency.as_millis() as u64}),
            );
            event_frame("metadata", &Value::Object(members)).map_err(io::Error::other)
        }
        Action::Abort(why) => {
            st.done = true;
            Err(io::Error::new(io::ErrorKind::ConnectionReset, why))
        }
    };
    Some((chunk, st))
}
