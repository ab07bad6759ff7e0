//! Service configuration: one definition, read from flags and environment variables by clap, used
//! unchanged by the local server and the Lambda host (which has only the environment).

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, FromArgMatches};
use rust_decimal::Decimal;
use std::time::Duration;

use crate::secrets::Secret;
use crate::validation::Limits;

pub const DEFAULT_MODEL_ID: &str = "us.amazon.nova-micro-v1:0";
pub const DEFAULT_REGION: &str = "us-east-2";
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful, concise assistant. Answer in plain text \
with short paragraphs; put code in fenced code blocks. If you do not know, say so.";

#[derive(Debug, Clone, Args)]
pub struct ServiceConfig {
    /// Model or inference-profile id sent to Bedrock.
    #[arg(long, env = "CHATBOT_MODEL_ID", default_value = DEFAULT_MODEL_ID)]
    pub model_id: String,

    /// A/B variants: `name=modelId:weight,…` (e.g. `micro=us.amazon.nova-micro-v1:0:90,lite=us.amazon.nova-lite-v1:0:10`).
    /// Unset: one variant, `default`, serving --model-id.
    #[arg(long, env = "CHATBOT_MODEL_VARIANTS")]
    pub model_variants: Option<String>,

    /// Model tried once when the assigned one is throttled or unavailable after its retries.
    #[arg(long, env = "CHATBOT_FALLBACK_MODEL_ID")]
    pub fallback_model_id: Option<String>,

    /// Let a request pick its variant (`"variant": "lite"` in the body). Off: assignment only.
    #[arg(long, env = "CHATBOT_ALLOW_VARIANT_CHOICE", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_variant_choice: bool,

    /// System prompt sent with every conversation.
    #[arg(long, env = "CHATBOT_SYSTEM_PROMPT", default_value = DEFAULT_SYSTEM_PROMPT)]
    pub system_prompt: String,

    /// Upper bound on reply tokens (Bedrock reserves it against the tokens-per-minute quota).
    #[arg(long, env = "CHATBOT_MAX_TOKENS", default_value_t = 512, value_parser = clap::value_parser!(i32).range(1..))]
    pub max_tokens: i32,

    /// Sampling temperature, 0 to 1.
    #[arg(long, env = "CHATBOT_TEMPERATURE", default_value_t = 0.7)]
    pub temperature: f32,

    /// Most messages accepted in one request.
    #[arg(long, env = "CHATBOT_MAX_MESSAGES", default_value_t = 40)]
    pub max_messages: usize,

    /// Most characters in one message.
    #[arg(long, env = "CHATBOT_MAX_MESSAGE_CHARS", default_value_t = 4_000)]
    pub max_message_chars: usize,

    /// Most characters in all messages of a request.
    #[arg(long, env = "CHATBOT_MAX_TOTAL_CHARS", default_value_t = 24_000)]
    pub max_total_chars: usize,

    /// Origins allowed to call the API cross-origin (comma-separated; `*` for any). Default: none.
    #[arg(long, env = "CHATBOT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Longest a client may take to send a whole chat request body (then 400). Matters on the
    /// local server; in Lambda the body arrives inside the invocation event.
    #[arg(long, env = "CHATBOT_BODY_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_ms: u64,

    /// TCP connect timeout to Bedrock.
    #[arg(long, env = "CHATBOT_CONNECT_TIMEOUT_MS", default_value_t = 3_000)]
    pub connect_timeout_ms: u64,

    /// Longest start-up waits to open the Bedrock (and DynamoDB) connections and resolve the
    /// credentials before the first request; 0 = don't. Never fails start-up.
    #[arg(long, env = "CHATBOT_PREWARM_TIMEOUT_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(0..=5_000))]
    pub prewarm_timeout_ms: u64,

    /// Timeout of one Bedrock attempt (and the longest silence tolerated inside a stream).
    #[arg(long, env = "CHATBOT_ATTEMPT_TIMEOUT_MS", default_value_t = 20_000)]
    pub attempt_timeout_ms: u64,

    /// Deadline of a whole model call, retries included; keep it under API Gateway's 30 s.
    #[arg(long, env = "CHATBOT_MODEL_TIMEOUT_MS", default_value_t = 25_000)]
    pub model_timeout_ms: u64,

    /// Time kept back at the end of a Lambda invocation for everything after the model: storing
    /// the turn, settling the budget, the answer and its telemetry. The request's model deadline
    /// is the earlier of CHATBOT_MODEL_TIMEOUT_MS and the invocation's deadline minus this.
    #[arg(long, env = "CHATBOT_ANSWER_MARGIN_MS", default_value_t = 2_000)]
    pub answer_margin_ms: u64,

    /// Attempts per model call (the SDK's standard retry mode, with backoff).
    #[arg(long, env = "CHATBOT_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// `service` in logs and the `Service` metric dimension.
    #[arg(long, env = "CHATBOT_SERVICE_NAME", default_value = "chatbot")]
    pub service_name: String,

    /// CloudWatch namespace of the EMF metrics.
    #[arg(
        long,
        env = "CHATBOT_METRICS_NAMESPACE",
        default_value = "ServerlessChatbot"
    )]
    pub metrics_namespace: String,

    /// Log prompt and reply text (truncated). Off by default: content is private.
    #[arg(long, env = "CHATBOT_LOG_CONTENT", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_content: bool,

    /// Characters of prompt/reply kept when content logging is on.
    #[arg(long, env = "CHATBOT_LOG_CONTENT_MAX_CHARS", default_value_t = 200)]
    pub log_content_max_chars: usize,

    /// A pricing table (JSON, the shape of crates/service/src/prices.json) replacing the built-in one.
    #[arg(long, env = "CHATBOT_PRICING_FILE")]
    pub pricing_file: Option<PathBuf>,

    /// Send X-Ray segments to this UDP address (Lambda sets it when tracing is active).
    /// Unset: no trace export.
    #[arg(long, env = "AWS_XRAY_DAEMON_ADDRESS")]
    pub xray_daemon_address: Option<String>,

    /// Add `POST /api/_diag/panic`, a handler that panics: for tests and drills proving a panic
    /// still yields a 500, a log line, an EMF document and a trace. Never enable in production.
    #[arg(long, env = "CHATBOT_DIAGNOSTIC_ROUTES", default_value_t = false, action = clap::ArgAction::Set)]
    pub diagnostic_routes: bool,

    /// Lambda memory size in MB, for the per-request compute cost (Lambda sets it).
    #[arg(long, env = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")]
    pub lambda_memory_mb: Option<u32>,

    /// DynamoDB table for state (budgets). Unset: an in-process store (local runs). The
    /// standard `AWS_ENDPOINT_URL_DYNAMODB` points the SDK elsewhere (tests: moto).
    #[arg(long, env = "CHATBOT_STATE_TABLE")]
    pub state_table: Option<String>,

    /// Deadline of one state-store call, retries included.
    #[arg(long, env = "CHATBOT_STORE_TIMEOUT_MS", default_value_t = 2_000)]
    pub store_timeout_ms: u64,

    /// The whole service's spend per UTC day, in USD: a hard stop. Unset: no service budget.
    #[arg(long, env = "CHATBOT_DAILY_BUDGET_USD")]
    pub daily_budget_usd: Option<String>,

    /// Each client's spend per UTC day, in USD (a client = its address as the platform reports
    /// it). Unset: no client budget.
    #[arg(long, env = "CHATBOT_CLIENT_DAILY_BUDGET_USD")]
    pub client_daily_budget_usd: Option<String>,

    /// Serve requests unbudgeted when the state store cannot be reached (counted and alarmed).
    /// Off: refuse them with 503 `budget_unavailable`.
    #[arg(long, env = "CHATBOT_BUDGET_FAIL_OPEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub budget_fail_open: bool,

    /// Values of the `x-origin-verify` header that prove a request came through the site's
    /// CloudFront distribution (comma-separated; two during a rotation). Set: every other
    /// request is refused with 403. Unset: no check (local runs).
    #[arg(long, env = "CHATBOT_ORIGIN_SECRETS", value_delimiter = ',', value_parser = Secret::parse)]
    pub origin_secrets: Vec<Secret>,

    /// Prompt caching: a cache checkpoint after the system prompt and after the conversation's
    /// history, so a repeat reads them from Bedrock's cache (priced apart; see docs/cost.md).
    #[arg(long, env = "CHATBOT_PROMPT_CACHE", value_enum, default_value = "off")]
    pub prompt_cache: Switch,

    /// Bedrock service tier to request (`default`, `priority`, `flex`, `reserved`). Unset: none
    /// requested. Calls are priced by the tier the response says served them.
    #[arg(long, env = "CHATBOT_SERVICE_TIER", value_enum)]
    pub service_tier: Option<ServiceTierName>,

    /// Bedrock latency mode to request (`standard`, `optimized`). Unset: none requested.
    #[arg(long, env = "CHATBOT_LATENCY_MODE", value_enum)]
    pub latency_mode: Option<LatencyMode>,

    /// Bedrock guardrail (ID or ARN) applied to every model call, with its trace on. Unset or
    /// empty: no guardrail.
    #[arg(long, env = "CHATBOT_GUARDRAIL_ID")]
    pub guardrail_id: Option<String>,

    /// The guardrail's version: a number, or `DRAFT`.
    #[arg(long, env = "CHATBOT_GUARDRAIL_VERSION", default_value = "DRAFT")]
    pub guardrail_version: String,

    /// How the guardrail assesses a streamed reply: `sync` (each chunk before it is sent) or
    /// `async` (chunks are sent at once and assessed alongside; see docs/deploy.md).
    #[arg(
        long,
        env = "CHATBOT_GUARDRAIL_STREAM_MODE",
        value_enum,
        default_value = "sync"
    )]
    pub guardrail_stream_mode: GuardrailStreamMode,

    /// Conversation memory on the server (`message` + `conversationId` requests, the
    /// conversations endpoints): `on` or `off`. Off: only the stateless `messages` form.
    #[arg(long, env = "CHATBOT_MEMORY", value_enum, default_value = "on")]
    pub memory: Switch,

    /// Hours a conversation is kept after its last turn (fractions allowed, at least a second).
    #[arg(long, env = "CHATBOT_MEMORY_TTL_HOURS", default_value_t = 24.0, value_parser = parse_hours)]
    pub memory_ttl_hours: f64,

    /// Most turns a conversation can hold (then `409 conversation_full`).
    #[arg(long, env = "CHATBOT_MEMORY_MAX_TURNS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub memory_max_turns: u64,

    /// Most bytes of text a conversation can hold (then `409 conversation_full`).
    #[arg(long, env = "CHATBOT_MEMORY_MAX_BYTES", default_value_t = 262_144, value_parser = clap::value_parser!(u64).range(1024..))]
    pub memory_max_bytes: u64,

    /// Key of the keyed hashes: client addresses (budgets) and conversation ids (A/B variant
    /// assignment). Unset: a random key per process, and unkeyed variant assignment.
    #[arg(long, env = "CHATBOT_HASH_KEY", value_parser = Secret::parse)]
    pub hash_key: Option<Secret>,
}

impl ServiceConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_messages: self.max_messages,
            max_message_chars: self.max_message_chars,
            max_total_chars: self.max_total_chars,
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// How long start-up may wait for the connections to open (zero: not opened at start-up).
    pub fn prewarm_timeout(&self) -> Duration {
        Duration::from_millis(self.prewarm_timeout_ms)
    }

    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }

    pub fn model_timeout(&self) -> Duration {
        Duration::from_millis(self.model_timeout_ms)
    }

    /// The configured guardrail, if any (an empty id is none: a deploy template's way of
    /// leaving it unset).
    pub fn guardrail(&self) -> Option<crate::model::GuardrailSettings> {
        let id = self
            .guardrail_id
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())?;
        Some(crate::model::GuardrailSettings {
            id: id.to_owned(),
            version: self.guardrail_version.trim().to_owned(),
            stream_mode: self.guardrail_stream_mode,
        })
    }

    pub fn answer_margin(&self) -> Duration {
        Duration::from_millis(self.answer_margin_ms)
    }

    /// Start-up checks with messages that say what to change.
    pub fn check(&self) -> Result<(), String> {
        if let Some(g) = self.guardrail() {
            let v = g.version.as_str();
            let numbered = !v.is_empty()
                && v.len() <= 8
                && v.bytes().all(|b| b.is_ascii_digit())
                && !v.starts_with('0');
            if v != "DRAFT" && !numbered {
                return Err(format!(
                    "CHATBOT_GUARDRAIL_VERSION must be DRAFT or a version number 1-99999999, got {v:?}"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.temperature) {
            return Err(format!(
                "CHATBOT_TEMPERATURE must be between 0 and 1, got {}",
                self.temperature
            ));
        }
        if self.max_messages == 0 || self.max_message_chars == 0 || self.max_total_chars == 0 {
            return Err(
                "CHATBOT_MAX_MESSAGES / _MAX_MESSAGE_CHARS / _MAX_TOTAL_CHARS must be positive"
                    .into(),
            );
        }
        if self.attempt_timeout_ms == 0
            || self.model_timeout_ms == 0
            || self.connect_timeout_ms == 0
        {
            return Err("CHATBOT_CONNECT_/ATTEMPT_/MODEL_TIMEOUT_MS must be positive".into());
        }
        if self.service_name.is_empty() || self.service_name.len() > 256 {
            return Err("CHATBOT_SERVICE_NAME must be 1 to 256 characters".into());
        }
        if self.metrics_namespace.is_empty() || self.metrics_namespace.len() > 255 {
            return Err("CHATBOT_METRICS_NAMESPACE must be 1 to 255 characters".into());
        }
        if self.store_timeout_ms == 0 {
            return Err("CHATBOT_STORE_TIMEOUT_MS must be positive".into());
        }
        self.daily_budget()?;
        self.client_daily_budget()?;
        if self.client_daily_budget()?.is_some()
            && self.state_table.is_some()
            && self.hash_key.is_none()
        {
            return Err(
                "CHATBOT_CLIENT_DAILY_BUDGET_USD with CHATBOT_STATE_TABLE needs \
                        CHATBOT_HASH_KEY: every instance must hash a client's address the same way"
                    .into(),
            );
        }
        if self
            .hash_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            return Err("CHATBOT_HASH_KEY must be at least 16 characters".into());
        }
        Ok(())
    }

    pub fn memory_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.memory_ttl_hours * 3600.0)
    }

    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }

    /// `CHATBOT_DAILY_BUDGET_USD`, checked.
    pub fn daily_budget(&self) -> Result<Option<Decimal>, String> {
        parse_budget("CHATBOT_DAILY_BUDGET_USD", self.daily_budget_usd.as_deref())
    }

    /// `CHATBOT_CLIENT_DAILY_BUDGET_USD`, checked.
    pub fn client_daily_budget(&self) -> Result<Option<Decimal>, String> {
        parse_budget(
            "CHATBOT_CLIENT_DAILY_BUDGET_USD",
            self.client_daily_budget_usd.as_deref(),
        )
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The defaults alone, ignoring the environment: a stable base for tests. They are the
    /// clap defaults above (parsed with every `env` source removed), so no default is written
    /// twice.
    pub fn defaults() -> Self {
        let cmd = Self::augment_args(clap::Command::new("defaults").no_binary_name(true))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches = cmd
            .try_get_matches_from(std::iter::empty::<String>())
            .expect("every setting has a default or is optional");
        Self::from_arg_matches(&matches).expect("defaults parse")
    }
}

fn parse_hours(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(h) if h * 3600.0 >= 1.0 && h <= 8760.0 => Ok(h),
        _ => Err("must be a number of hours from 1 second (0.0003) to a year (8760)".into()),
    }
}

/// A Bedrock service tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceTierName {
    Default,
    Priority,
    Flex,
    Reserved,
}

/// A Bedrock latency mode (`performanceConfig.latency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyMode {
    Standard,
    Optimized,
}

/// How a guardrail processes a stream (`streamProcessingMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuardrailStreamMode {
    Sync,
    Async,
}

/// An on/off setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// A budget in USD: a positive decimal, or unset.
fn parse_budget(name: &str, value: Option<&str>) -> Result<Option<Decimal>, String> {
    let Some(raw) = value else { return Ok(None) };
    match Decimal::from_str(raw.trim()) {
        Ok(d) if d > Decimal::ZERO => Ok(Some(d)),
        Ok(_) => Err(format!(
            "{name} must be a positive amount in USD, got {raw:?}"
        )),
        Err(_) => Err(format!(
            "{name} must be an amount in USD (like 5 or 0.25), got {raw:?}"
        )),
    }
}

/// Any clap argument group read from the environment alone (no command line).
pub fn args_from_env<T: Args + FromArgMatches>() -> Result<T, clap::Error> {
    let cmd = T::augment_args(clap::Command::new("chatbot").no_binary_name(true));
    let matches = cmd.try_get_matches_from(std::iter::empty::<String>())?;
    T::from_arg_matches(&matches)
}
