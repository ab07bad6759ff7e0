//! A ConverseStream reply being received: text pieces in order, then the end with its stop
//! reason and token usage. Dropping it mid-way drops the connection to Bedrock (that is how a
//! client abort cancels generation) and is recorded as a cancelled call.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver;
use aws_sdk_bedrockruntime::types::ConverseStreamOutput as Event;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use tokio::time::Instant;

use super::attempts::AttemptStats;
use super::{ModelError, Usage, token_usage};
use crate::telemetry::model_span::ModelCallSpan;

pub struct ReplyStream {
    rx: EventReceiver<Event, ConverseStreamOutputError>,
    /// `Some` until the call is settled (ended, failed, or dropped).
    call: Option<ModelCallSpan>,
    stats: Arc<AttemptStats>,
    deadline: Instant,
    idle: Duration,
    seen_text: bool,
    stop_reason: Option<String>,
    usage: Option<Usage>,
}

/// What [`ReplyStream::next`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyEvent {
    Text(String),
    /// The reply is complete.
    End {
        stop_reason: String,
        usage: Option<Usage>,
    },
}

impl ReplyStream {
    pub(super) fn new(
        rx: EventReceiver<Event, ConverseStreamOutputError>,
        call: ModelCallSpan,
        stats: Arc<AttemptStats>,
        deadline: Duration,
        idle: Duration,
    ) -> Self {
        ReplyStream {
            rx,
            deadline: call.started() + deadline,
            call: Some(call),
            stats,
            idle,
            seen_text: false,
            stop_reason: None,
            usage: None,
        }
    }

    /// The next piece of reply text, or the end. An error ends the stream.
    pub async fn next(&mut self) -> Result<ReplyEvent, ModelError> {
        loop {
            let now = Instant::now();
            let wait = self.deadline.saturating_duration_since(now).min(self.idle);
            let received = match tokio::time::timeout(wait, self.rx.recv()).await {
                Err(_) => return Err(self.fail(ModelError::Timeout)),
                Ok(Err(e)) => return Err(self.fail(ModelError::from_stream(e))),
                Ok(Ok(received)) => received,
            };
            let Some(event) = received else {
                return Ok(self.end());
            };
            match event {
                Event::ContentBlockDelta(d) => {
                    let Some(text) = d.delta().and_then(|d| d.as_text().ok()) else {
                        continue;
                    };
                    if !self.seen_text {
                        self.seen_text = true;
                        if let Some(call) = &self.call {
                            call.first_token();
                        }
                    }
                    return Ok(ReplyEvent::Text(text.clone()));
                }
                Event::MessageStop(m) => {
                    self.stop_reason = Some(m.stop_reason().as_str().to_owned())
                }
                Event::Metadata(m) => self.usage = m.usage().map(token_usage),
                _ => {}
            }
        }
    }

    fn end(&mut self) -> ReplyEvent {
        let stop_reason = self.stop_reason.clone().unwrap_or_else(|| "unknown".into());
        if let Some(call) = self.call.take() {
            match self.usage {
                Some(usage) => call.succeeded(&self.stats, None, &stop_reason, usage),
                None => call.ended_without_usage(&self.stats, &stop_reason),
            }
        }
        ReplyEvent::End {
            stop_reason,
            usage: self.usage,
        }
    }

    fn fail(&mut self, e: ModelError) -> ModelError {
        if let Some(call) = self.call.take() {
            call.failed_mid_stream(&self.stats, &e);
        }
        e
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.cancelled(&self.stats);
        }
    }
}
