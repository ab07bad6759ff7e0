//! What Bedrock reports about a model call besides its text: token counts (prompt-cache reads
//! and writes apart), its own latency, and the service tier and latency mode that served it.

use std::time::Duration;

use serde::Serialize;

/// Token counts of one model call (or the sum over a request's calls). `input_tokens` excludes
/// cached tokens: a cache read or write is counted (and priced) on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_write_input_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_write_input_tokens
    }

    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
        self.cache_write_input_tokens += other.cache_write_input_tokens;
    }
}

impl From<&aws_sdk_bedrockruntime::types::TokenUsage> for Usage {
    fn from(u: &aws_sdk_bedrockruntime::types::TokenUsage) -> Self {
        let n = |v: i32| v.max(0) as u64;
        Usage {
            input_tokens: n(u.input_tokens()),
            output_tokens: n(u.output_tokens()),
            cache_read_input_tokens: u.cache_read_input_tokens().map_or(0, n),
            cache_write_input_tokens: u.cache_write_input_tokens().map_or(0, n),
        }
    }
}

/// Tokens in `chars` characters of text, estimated at four characters a token (the usual rule
/// for English with byte-pair tokenizers). Used only for a cost Bedrock never reported.
pub fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

/// The service tier and latency mode Bedrock says served a call (`None`: not reported, i.e. the
/// standard ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    pub tier: Option<String>,
    pub latency: Option<String>,
}

impl Served {
    /// `priority`, `optimized`, `flex+optimized`, or `standard`: the price-table key.
    pub fn key(&self) -> String {
        let tier = self.tier.as_deref().filter(|t| *t != "default");
        let latency = self.latency.as_deref().filter(|l| *l != "standard");
        match (tier, latency) {
            (None, None) => "standard".to_owned(),
            (Some(t), None) => t.to_owned(),
            (None, Some(l)) => l.to_owned(),
            (Some(t), Some(l)) => format!("{t}+{l}"),
        }
    }
}

/// Everything a finished call reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub usage: Usage,
    /// Bedrock's own time for the call (`metrics.latencyMs`).
    pub latency: Option<Duration>,
    pub served: Served,
    /// What the guardrail did, when one is configured and Bedrock traced it.
    pub guardrail: Option<super::GuardrailReport>,
}
