//! Calling the model: Bedrock Converse (whole reply) and ConverseStream (reply as it is
//! generated) through the AWS SDK, each call wrapped in its telemetry span.
//!
//! The request carries, as configured: a prompt-cache checkpoint after the system prompt and
//! after the conversation's history (`CHATBOT_PROMPT_CACHE`), the service tier
//! (`CHATBOT_SERVICE_TIER`) and the latency mode (`CHATBOT_LATENCY_MODE`). What Bedrock reports
//! back — usage with cache reads and writes, its own latency, the tier and mode that served the
//! call — is the call's [`Report`].

mod attempts;
pub mod client;
mod errors;
mod guardrail;
mod stream;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::timeout::TimeoutConfig;
use tokio::time::Instant;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::operation::RequestId;
use aws_sdk_bedrockruntime::types::{
    CachePointBlock, CachePointType, ContentBlock, ConversationRole, InferenceConfiguration,
    Message as SdkMessage, PerformanceConfigLatency, PerformanceConfiguration, ServiceTier,
    ServiceTierType, SystemContentBlock,
};

pub use errors::ModelError;
pub use guardrail::{GuardrailAction, GuardrailReport, GuardrailSettings, GuardrailUnits};
pub use stream::{ReplyEvent, ReplyStream};
pub use usage::{Report, Served, Usage, estimate_tokens};

use crate::config::{LatencyMode, ServiceConfig, ServiceTierName, Switch};
use crate::request::Role;
use crate::telemetry::model_span::{ModelCallSpan, Operation};
use crate::validation::ChatRequest;
use attempts::AttemptObserver;
pub use attempts::AttemptStats;

/// The same request for Converse and ConverseStream (their builders share no trait): model,
/// messages, system prompt, inference settings, tier, latency mode, and the attempt observer.
macro_rules! request {
    ($self:ident, $op:ident, $guardrail:expr, $model_id:expr, $req:expr, $stats:expr, $left:expr) => {
        $self
            .client
            .$op()
            .model_id($model_id)
            .set_messages(Some($self.messages($req)?))
            .set_system(Some($self.system()?))
            .inference_config($self.inference())
            .set_service_tier($self.service_tier()?)
            .set_performance_config($self.performance())
            .set_guardrail_config($self.settings.guardrail.as_ref().map($guardrail))
            .customize()
            .config_override($self.timeouts($left))
            .interceptor(AttemptObserver($stats.clone()))
    };
}

/// A finished reply.
#[derive(Debug, Clone)]
pub struct Completion {
    pub text: String,
    pub stop_reason: String,
    pub usage: Usage,
    /// What the guardrail did (configured guardrails only).
    pub guardrail: Option<GuardrailReport>,
}

/// The Bedrock client with this deployment's inference settings. Cheap to clone.
#[derive(Clone)]
pub struct ModelClient {
    client: Client,
    settings: Arc<Settings>,
}

struct Settings {
    region: String,
    system_prompt: String,
    max_tokens: i32,
    temperature: f32,
    prompt_cache: bool,
    service_tier: Option<ServiceTierType>,
    latency: Option<PerformanceConfigLatency>,
    /// The longest one attempt may take, and the longest silence tolerated between stream
    /// events (the SDK's operation timeout covers a stream only until its first response).
    attempt_timeout: Duration,
    connect_timeout: Duration,
    guardrail: Option<GuardrailSettings>,
}

/// What remains until `deadline`; at least a millisecond, so that a call with nothing left
/// still goes through the SDK and fails as a timeout with its evidence (a zero timeout would
/// mean none at all).
fn time_left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn cache_point() -> Result<CachePointBlock, ModelError> {
    CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()
        .map_err(|e| ModelError::Internal(e.to_string()))
}

impl ModelClient {
    pub fn new(client: Client, region: String, config: &ServiceConfig) -> Self {
        ModelClient {
            client,
            settings: Arc::new(Settings {
                region,
                system_prompt: config.system_prompt.clone(),
                max_tokens: config.max_tokens,
                temperature: config.temperature,
                prompt_cache: config.prompt_cache == Switch::On,
                service_tier: config.service_tier.map(|t| match t {
                    ServiceTierName::Default => ServiceTierType::Default,
                    ServiceTierName::Priority => ServiceTierType::Priority,
                    ServiceTierName::Flex => ServiceTierType::Flex,
                    ServiceTierName::Reserved => ServiceTierType::Reserved,
                }),
                latency: config.latency_mode.map(|l| match l {
                    LatencyMode::Standard => PerformanceConfigLatency::Standard,
                    LatencyMode::Optimized => PerformanceConfigLatency::Optimized,
                }),
                attempt_timeout: config.attempt_timeout(),
                connect_timeout: config.connect_timeout(),
                guardrail: config.guardrail(),
            }),
        }
    }

    pub fn region(&self) -> &str {
        &self.settings.region
    }

    fn span(&self, op: Operation, model_id: &str, req: &ChatRequest) -> ModelCallSpan {
        let s = &self.settings;
        let chars = s.system_prompt.chars().count()
            + req
                .messages
                .iter()
                .map(|m| m.content.chars().count())
                .sum::<usize>();
        ModelCallSpan::start(op, model_id, &s.region, s.max_tokens, s.temperature, chars)
    }

    /// This call's timeouts: whatever remains of the request's deadline for the whole call,
    /// and at most that for each attempt.
    fn timeouts(&self, left: Duration) -> aws_sdk_bedrockruntime::config::Builder {
        let s = &self.settings;
        aws_sdk_bedrockruntime::config::Builder::default().timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(s.connect_timeout.min(left))
                .operation_attempt_timeout(s.attempt_timeout.min(left))
                .operation_timeout(left)
                .build(),
        )
    }

    fn inference(&self) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(self.settings.max_tokens)
            .temperature(self.settings.temperature)
            .build()
    }

    /// The system prompt, followed by a cache checkpoint when prompt caching is on.
    fn system(&self) -> Result<Vec<SystemContentBlock>, ModelError> {
        let mut blocks = vec![SystemContentBlock::Text(
            self.settings.system_prompt.clone(),
        )];
        if self.settings.prompt_cache {
            blocks.push(SystemContentBlock::CachePoint(cache_point()?));
        }
        Ok(blocks)
    }

    fn service_tier(&self) -> Result<Option<ServiceTier>, ModelError> {
        self.settings
            .service_tier
            .clone()
            .map(|t| ServiceTier::builder().r#type(t).build())
            .transpose()
            .map_err(|e| ModelError::Internal(e.to_string()))
    }

    fn performance(&self) -> Option<PerformanceConfiguration> {
        self.settings
            .latency
            .clone()
            .map(|l| PerformanceConfiguration::builder().latency(l).build())
    }

    /// The conversation; with prompt caching on, a cache checkpoint closes its history (the
    /// last reply before the new message), so the next turn reads what this one wrote.
    fn messages(&self, req: &ChatRequest) -> Result<Vec<SdkMessage>, ModelError> {
        let history_end = req.messages.len().checked_sub(2);
        req.messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let role = match m.role {
                    Role::User => ConversationRole::User,
                    Role::Assistant => ConversationRole::Assistant,
                };
                let mut message = SdkMessage::builder()
                    .role(role)
                    .content(ContentBlock::Text(m.content.clone()));
                if self.settings.prompt_cache && Some(i) == history_end {
                    message = message.content(ContentBlock::CachePoint(cache_point()?));
                }
                message
                    .build()
                    .map_err(|e| ModelError::Internal(e.to_string()))
            })
            .collect()
    }

    /// The whole reply in one response.
    pub async fn converse(
        &self,
        model_id: &str,
        req: &ChatRequest,
        deadline: Instant,
    ) -> Result<Completion, ModelError> {
        let call = self.span(Operation::Converse, model_id, req);
        let stats = Arc::new(AttemptStats::default());
        let left = time_left(deadline);
        let sent = request!(
            self,
            converse,
            GuardrailSettings::converse,
            model_id,
            req,
            stats,
            left
        )
        .send();
        let result = call.instrument(sent).await;
        let outcome = match result {
            Ok(out) => {
                let text = out
                    .output()
                    .and_then(|o| o.as_message().ok())
                    .map(|m| {
                        m.content()
                            .iter()
                            .filter_map(|b| b.as_text().ok())
                            .map(String::as_str)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                let stop_reason = out.stop_reason().as_str().to_owned();
                let report = Report {
                    guardrail: out
                        .trace()
                        .and_then(|t| t.guardrail())
                        .map(|g| GuardrailReport::from_trace(&stop_reason, g)),
                    usage: out.usage().map(Usage::from).unwrap_or_default(),
                    latency: out
                        .metrics()
                        .map(|m| Duration::from_millis(m.latency_ms().max(0) as u64)),
                    served: Served {
                        tier: out.service_tier().map(|t| t.r#type().as_str().to_owned()),
                        latency: out
                            .performance_config()
                            .map(|p| p.latency().as_str().to_owned()),
                    },
                };
                let request_id = out.request_id().map(str::to_owned);
                Ok((
                    Completion {
                        text,
                        stop_reason,
                        usage: report.usage,
                        guardrail: report.guardrail.clone(),
                    },
                    report,
                    request_id,
                ))
            }
            Err(e) => Err(ModelError::from_sdk(e)),
        };
        match outcome {
            Ok((completion, report, request_id)) => {
                call.succeeded(
                    &stats,
                    request_id.as_deref(),
                    &completion.stop_reason,
                    &report,
                );
                Ok(completion)
            }
            Err(e) => {
                call.failed(&stats, &e);
                Err(e)
            }
        }
    }

    /// The reply as it is generated. Errors before the stream opens come back here; errors
    /// inside it come as the stream's items.
    pub async fn converse_stream(
        &self,
        model_id: &str,
        req: &ChatRequest,
        deadline: Instant,
    ) -> Result<ReplyStream, ModelError> {
        let call = self.span(Operation::ConverseStream, model_id, req);
        let stats = Arc::new(AttemptStats::default());
        let left = time_left(deadline);
        let sent = request!(
            self,
            converse_stream,
            GuardrailSettings::stream,
            model_id,
            req,
            stats,
            left
        )
        .send();
        match call.instrument(sent).await {
            Ok(out) => {
                let request_id = out.request_id().map(str::to_owned);
                call.opened(&stats, request_id.as_deref());
                Ok(ReplyStream::new(
                    out.stream,
                    call,
                    stats,
                    deadline,
                    self.settings.attempt_timeout,
                ))
            }
            Err(e) => {
                let e = ModelError::from_sdk(e);
                call.failed(&stats, &e);
                Err(e)
            }
        }
    }
}
