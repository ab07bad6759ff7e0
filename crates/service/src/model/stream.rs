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
use super::{GuardrailReport, ModelError, Report, Served, Usage};
use crate::telemetry::context::RequestCtx;
use crate::telemetry::model_span::ModelCallSpan;

pub struct ReplyStream {
    rx: EventReceiver<Event, ConverseStreamOutputError>,
    /// `Some` until the call is settled (ended, failed, or dropped).
    call: Option<ModelCallSpan>,
    stats: Arc<AttemptStats>,
    deadline: Instant,
    idle: Duration,
    seen_text: bool,
    /// When the last piece of text arrived, and the longest wait between two.
    last_text: Option<Instant>,
    longest_gap: Duration,
    stop_reason: Option<String>,
    /// The `metadata` event: usage, Bedrock's latency, the tier that served.
    report: Option<Report>,
}

/// What [`ReplyStream::next`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyEvent {
    Text(String),
    /// The reply is complete.
    End {
        stop_reason: String,
        usage: Option<Usage>,
        /// What the guardrail did (configured guardrails only).
        guardrail: Option<GuardrailReport>,
    },
}

impl ReplyStream {
    pub(super) fn new(
        rx: EventReceiver<Event, ConverseStreamOutputError>,
        call: ModelCallSpan,
        stats: Arc<AttemptStats>,
        deadline: Instant,
        idle: Duration,
    ) -> Self {
        ReplyStream {
            rx,
            deadline,
            call: Some(call),
            stats,
            idle,
            seen_text: false,
            last_text: None,
            longest_gap: Duration::ZERO,
            stop_reason: None,
            report: None,
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
                    self.text_arrived(text.chars().count());
                    return Ok(ReplyEvent::Text(text.clone()));
                }
                Event::MessageStop(m) => {
                    self.stop_reason = Some(m.stop_reason().as_str().to_owned())
                }
                Event::Metadata(m) => {
                    let stop_reason = self.stop_reason.clone().unwrap_or_default();
                    let guardrail = m
                        .trace()
                        .and_then(|t| t.guardrail())
                        .map(|g| GuardrailReport::from_trace(&stop_reason, g));
                    self.report = m.usage().map(|u| Report {
                        guardrail,
                        usage: Usage::from(u),
                        latency: m
                            .metrics()
                            .map(|x| Duration::from_millis(x.latency_ms().max(0) as u64)),
                        served: Served {
                            tier: m.service_tier().map(|t| t.r#type().as_str().to_owned()),
                            latency: m
                                .performance_config()
                                .map(|p| p.latency().as_str().to_owned()),
                        },
                    })
                }
                _ => {}
            }
        }
    }

    /// Note `chars` more characters of reply text (a cost estimate's output, if usage never
    /// comes) and the wait since the previous piece.
    fn text_arrived(&mut self, chars: usize) {
        let now = Instant::now();
        if let Some(last) = self.last_text {
            self.longest_gap = self.longest_gap.max(now - last);
        }
        self.last_text = Some(now);
        let gap = self.longest_gap;
        RequestCtx::with_current(|ctx| {
            let mut r = ctx.record();
            r.streamed_chars += chars;
            r.longest_gap = Some(gap);
        });
    }

    fn end(&mut self) -> ReplyEvent {
        let stop_reason = self.stop_reason.clone().unwrap_or_else(|| "unknown".into());
        if let Some(call) = self.call.take() {
            match &self.report {
                Some(report) => call.succeeded(&self.stats, None, &stop_reason, report),
                None => call.ended_without_usage(&self.stats, &stop_reason),
            }
        }
        ReplyEvent::End {
            stop_reason,
            usage: self.report.as_ref().map(|r| r.usage),
            guardrail: self.report.as_ref().and_then(|r| r.guardrail.clone()),
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
