//! What one invocation sent and what the function answered.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use super::http_reply::{HttpReply, ReplyError};

/// Per-invocation settings for `Emulator::invoke_with`.
#[derive(Debug, Clone)]
pub struct InvokeOptions {
    /// Full `Lambda-Runtime-Trace-Id` value (`Root=1-…;Parent=…;Sampled=1`); `None` omits the header.
    pub trace_id: Option<String>,
    /// How long the test waits for the function's reply.
    pub timeout: Duration,
    /// Function deadline announced in `Lambda-Runtime-Deadline-Ms` (from the moment it is polled).
    pub deadline: Duration,
}

impl Default for InvokeOptions {
    fn default() -> Self {
        Self {
            trace_id: None,
            timeout: Duration::from_secs(15),
            deadline: Duration::from_secs(30),
        }
    }
}

/// What the function posted back for one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The JSON posted to `/invocation/{id}/response` (buffered mode).
    Buffered { body: Value },
    /// A streaming response: the prelude JSON before the 8 NUL bytes, the body bytes after it
    /// (one entry per chunk as received), and the mid-stream error type/body (body base64-decoded)
    /// if the function reported one. An in-band error chunk stays in `chunks` (it is body bytes
    /// on the wire). Types starting `Emulator.` are the emulator's own findings.
    Streamed {
        prelude: Value,
        chunks: Vec<(Instant, Bytes)>,
        error: Option<(String, String)>,
    },
    /// Posted to `/invocation/{id}/error`: the `Lambda-Runtime-Function-Error-Type` header
    /// (lambda_runtime sends `unhandled`) and the JSON body (`errorType`, `errorMessage`).
    Error { error_type: String, body: Value },
}

/// One completed invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub trace_id: Option<String>,
    pub outcome: Outcome,
    /// When the test queued the event.
    pub queued_at: Instant,
    /// When the function's `/next` poll received the event.
    pub polled_at: Option<Instant>,
    /// When the reply (for streams: its last byte) arrived.
    pub finished_at: Instant,
}

impl Invocation {
    /// The reply as an HTTP response (API Gateway v2 JSON or streamed prelude + body).
    pub fn http_response(&self) -> Result<HttpReply, ReplyError> {
        HttpReply::from_outcome(&self.outcome, self.finished_at)
    }

    /// When the first streamed body chunk arrived (`None` for other outcomes or an empty body).
    pub fn first_chunk_at(&self) -> Option<Instant> {
        match &self.outcome {
            Outcome::Streamed { chunks, .. } => chunks.first().map(|(at, _)| *at),
            _ => None,
        }
    }

    /// Time from queueing the event to the complete reply.
    pub fn duration(&self) -> Duration {
        self.finished_at.duration_since(self.queued_at)
    }
}

/// What a function posted to `/runtime/init/error`.
#[derive(Debug, Clone)]
pub struct InitError {
    pub at: Instant,
    /// The `Lambda-Runtime-Function-Error-Type` header.
    pub error_type: String,
    /// The JSON body (`errorType`, `errorMessage`), or the raw text as a JSON string.
    pub body: Value,
}
