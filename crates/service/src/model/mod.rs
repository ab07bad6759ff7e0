//! Calling the model: Bedrock Converse (whole reply) and ConverseStream (reply as it is
//! generated) through the AWS SDK, each call wrapped in its telemetry span.

mod attempts;
pub mod client;
mod errors;
mod stream;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::operation::RequestId;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, InferenceConfiguration, Message as SdkMessage,
    SystemContentBlock,
};

pub use errors::ModelError;
pub use stream::{ReplyEvent, ReplyStream};
pub use usage::Usage;

use crate::config::ServiceConfig;
use crate::request::Role;
use crate::telemetry::model_span::{ModelCallSpan, Operation};
use crate::validation::ChatRequest;
use attempts::AttemptObserver;
pub use attempts::AttemptStats;

/// The same request for Converse and ConverseStream (their builders share no trait): model,
/// messages, system prompt, inference settings, and the attempt observer.
macro_rules! request {
    ($self:ident, $op:ident, $model_id:expr, $req:expr, $stats:expr) => {
        $self
            .client
            .$op()
            .model_id($model_id)
            .set_messages(Some(messages($req)?))
            .system($self.system())
            .inference_config($self.inference())
            .customize()
            .interceptor(AttemptObserver($stats.clone()))
    };
}

/// A finished reply.
#[derive(Debug, Clone)]
pub struct Completion {
    pub text: String,
    pub stop_reason: String,
    pub usage: Usage,
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
    /// Whole-stream deadline and the longest silence tolerated between stream events (the SDK's
    /// operation timeout covers a stream only until its first response).
    stream_deadline: Duration,
    stream_idle: Duration,
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
                stream_deadline: config.model_timeout(),
                stream_idle: config.attempt_timeout(),
            }),
        }
    }

    pub fn region(&self) -> &str {
        &self.settings.region
    }

    fn span(&self, op: Operation, model_id: &str) -> ModelCallSpan {
        let s = &self.settings;
        ModelCallSpan::start(op, model_id, &s.region, s.max_tokens, s.temperature)
    }

    fn inference(&self) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(self.settings.max_tokens)
            .temperature(self.settings.temperature)
            .build()
    }

    fn system(&self) -> SystemContentBlock {
        SystemContentBlock::Text(self.settings.system_prompt.clone())
    }

    /// The whole reply in one response.
    pub async fn converse(
        &self,
        model_id: &str,
        req: &ChatRequest,
    ) -> Result<Completion, ModelError> {
        let call = self.span(Operation::Converse, model_id);
        let stats = Arc::new(AttemptStats::default());
        let sent = request!(self, converse, model_id, req, stats).send();
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
                let usage = out.usage().map(token_usage).unwrap_or_default();
                let request_id = out.request_id().map(str::to_owned);
                Ok((
                    Completion {
                        text,
                        stop_reason: out.stop_reason().as_str().to_owned(),
                        usage,
                    },
                    request_id,
                ))
            }
            Err(e) => Err(ModelError::from_sdk(e)),
        };
        match outcome {
            Ok((completion, request_id)) => {
                call.succeeded(
                    &stats,
                    request_id.as_deref(),
                    &completion.stop_reason,
                    completion.usage,
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
    ) -> Result<ReplyStream, ModelError> {
        let call = self.span(Operation::ConverseStream, model_id);
        let stats = Arc::new(AttemptStats::default());
        let sent = request!(self, converse_stream, model_id, req, stats).send();
        match call.instrument(sent).await {
            Ok(out) => {
                let request_id = out.request_id().map(str::to_owned);
                call.opened(&stats, request_id.as_deref());
                Ok(ReplyStream::new(
                    out.stream,
                    call,
                    stats,
                    self.settings.stream_deadline,
                    self.settings.stream_idle,
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

fn token_usage(u: &aws_sdk_bedrockruntime::types::TokenUsage) -> Usage {
    Usage {
        input_tokens: u.input_tokens().max(0) as u64,
        output_tokens: u.output_tokens().max(0) as u64,
    }
}

fn messages(req: &ChatRequest) -> Result<Vec<SdkMessage>, ModelError> {
    req.messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => ConversationRole::User,
                Role::Assistant => ConversationRole::Assistant,
            };
            SdkMessage::builder()
                .role(role)
                .content(ContentBlock::Text(m.content.clone()))
                .build()
                .map_err(|e| ModelError::Internal(e.to_string()))
        })
        .collect()
}
