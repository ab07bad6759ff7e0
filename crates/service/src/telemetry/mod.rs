//! Logs, metrics and traces around every request and every model call.
//!
//! - [`layer`]: the tower layer that gives each request its [`context::RequestCtx`] and, when the
//!   response body ends (or the client drops it), writes the request's evidence via [`finish`].
//! - [`finish`]: one summary log line, one EMF document, the closed trace segment.
//! - [`emf`]: the per-request `metrics` recorder and the EMF renderer; [`catalog`] lists every metric.
//! - [`model_span`]: the client span and measurements around each Bedrock call.
//! - [`logging`] and [`xray`]: process set-up of the tracing subscriber and the X-Ray exporter.

pub mod catalog;
pub mod context;
pub mod emf;
pub mod finish;
pub mod layer;
pub mod logging;
pub mod model_span;
pub mod xray;

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::ServiceConfig;
use crate::pricing::PriceTable;

pub use layer::TelemetryLayer;

/// Where EMF documents go: stdout (CloudWatch Logs extracts them there), or memory for tests.
#[derive(Clone, Default)]
pub enum EmfSink {
    #[default]
    Stdout,
    Memory(Arc<Mutex<Vec<String>>>),
}

impl EmfSink {
    pub fn memory() -> (Self, Arc<Mutex<Vec<String>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (EmfSink::Memory(buf.clone()), buf)
    }

    fn write(&self, line: &str) {
        match self {
            EmfSink::Stdout => {
                // One write of the whole line, so concurrent log lines never split it.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(format!("{line}\n").as_bytes());
                let _ = out.flush();
            }
            EmfSink::Memory(buf) => buf.lock().unwrap().push(line.to_owned()),
        }
    }
}

/// Process-wide telemetry settings and state shared by every request.
pub struct Telemetry {
    pub service: String,
    pub namespace: String,
    pub pricing: Arc<PriceTable>,
    pub lambda_memory_mb: Option<u32>,
    pub log_content: bool,
    pub log_content_max_chars: usize,
    pub emf_sink: EmfSink,
    /// What each request's [`crate::deadline::Deadline`] is made of.
    pub model_timeout: std::time::Duration,
    pub answer_margin: std::time::Duration,
    /// A guardrail applies to every model call.
    pub guardrail_on: bool,
    cold: AtomicBool,
    warned_prices: Mutex<HashSet<String>>,
}

impl Telemetry {
    pub fn new(config: &ServiceConfig, pricing: Arc<PriceTable>, emf_sink: EmfSink) -> Self {
        emf::install();
        Telemetry {
            service: config.service_name.clone(),
            namespace: config.metrics_namespace.clone(),
            pricing,
            lambda_memory_mb: config.lambda_memory_mb,
            log_content: config.log_content,
            log_content_max_chars: config.log_content_max_chars,
            emf_sink,
            model_timeout: config.model_timeout(),
            answer_margin: config.answer_margin(),
            guardrail_on: config.guardrail().is_some(),
            cold: AtomicBool::new(true),
            warned_prices: Mutex::new(HashSet::new()),
        }
    }

    /// True for the first request this process serves.
    fn take_cold_start(&self) -> bool {
        self.cold.swap(false, Ordering::Relaxed)
    }

    /// Once per process per model id and tier: the table has no price for what served a call
    /// (or for its cache reads and writes).
    fn warn_unknown_price(&self, model_id: &str, served: &str) {
        let first = self
            .warned_prices
            .lock()
            .unwrap()
            .insert(format!("{model_id} {served}"));
        if first {
            tracing::warn!(
                modelId = model_id,
                servedTier = served,
                "no price for this model id and tier (or its cache tokens): cost is reported as null; add it with CHATBOT_PRICING_FILE"
            );
        }
    }

    fn warn_unknown_guardrail_price(&self) {
        if self
            .warned_prices
            .lock()
            .unwrap()
            .insert("guardrail".into())
        {
            tracing::warn!(
                "guardrail text units of a policy with no price: cost is reported as null; add it to `guardrails` with CHATBOT_PRICING_FILE"
            );
        }
    }
}

/// Cut text to at most `max` characters, for opt-in content logging.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
