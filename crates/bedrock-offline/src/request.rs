//! The Converse / ConverseStream request body: parsing and the checks Bedrock itself makes.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use serde::Deserialize;

use crate::guardrail::{GuardrailRequest, TraceMode};
use crate::tier::{LATENCIES, TIERS};
use crate::tokens::count_tokens;

/// Most cache points one request may hold (Bedrock's limit for Nova and Claude).
pub const MAX_CACHE_POINTS: usize = 4;

/// How long a cache entry lives without a hit: `ttl` absent or `"5m"`.
pub const CACHE_TTL_DEFAULT: Duration = Duration::from_secs(5 * 60);
/// `"ttl": "1h"`.
pub const CACHE_TTL_1H: Duration = Duration::from_secs(60 * 60);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    messages: Option<Vec<RawMessage>>,
    #[serde(default)]
    system: Vec<RawBlock>,
    inference_config: Option<RawInferenceConfig>,
    guardrail_config: Option<RawGuardrailConfig>,
    service_tier: Option<RawServiceTier>,
    performance_config: Option<RawPerformanceConfig>,
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    content: Vec<RawBlock>,
}

/// A content block: `{"text": …}` or `{"cachePoint": …}`. Other kinds (image, toolUse, …) land
/// in `other` and are rejected.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBlock {
    text: Option<String>,
    cache_point: Option<RawCachePoint>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawCachePoint {
    #[serde(rename = "type")]
    kind: Option<String>,
    ttl: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInferenceConfig {
    max_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(default)]
    stop_sequences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGuardrailConfig {
    guardrail_identifier: Option<String>,
    guardrail_version: Option<String>,
    trace: Option<String>,
    stream_processing_mode: Option<String>,
}

#[derive(Deserialize)]
struct RawServiceTier {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawPerformanceConfig {
    latency: Option<String>,
}

/// A `cachePoint` block: the prefix before it (system, then messages, in order) may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePoint {
    /// Hash of the exact prefix content (texts, roles and block boundaries; not the model id).
    pub prefix_hash: u64,
    /// Tokens (words) of the text blocks before this cache point.
    pub prefix_tokens: u64,
    /// How long an entry written at this point lives without a hit (`ttl`: 5m or 1h).
    pub ttl: Duration,
}

/// What the offline model needs from a valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConverseRequest {
    /// Words of the system prompt and of every message text.
    pub input_tokens: u64,
    /// Text of the last `user` message (its text blocks joined by a space).
    pub last_user_text: String,
    /// How many `user` messages the request holds (the conversation's length so far).
    pub user_messages: usize,
    /// `inferenceConfig.maxTokens`.
    pub max_tokens: Option<u32>,
    /// The `cachePoint` blocks, in request order.
    pub cache_points: Vec<CachePoint>,
    /// Every text block (system, then messages) joined by a newline: what an input guardrail
    /// assesses.
    pub input_text: String,
    /// Characters (Unicode scalar values) of every text block, summed (no separators).
    pub input_chars: u64,
    /// `guardrailConfig`.
    pub guardrail: Option<GuardrailRequest>,
    /// `serviceTier.type` as requested.
    pub service_tier: Option<&'static str>,
    /// `performanceConfig.latency` as requested.
    pub latency: Option<&'static str>,
}

/// Why a body is not a valid request; the text becomes the ValidationException message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidRequest(pub String);

fn invalid(msg: impl Into<String>) -> InvalidRequest {
    InvalidRequest(msg.into())
}

/// Bedrock's wording for a member outside its enum.
fn not_in_enum(value: &str, at: &str, allowed: &[&str]) -> InvalidRequest {
    invalid(format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: \
         Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    ))
}

fn one_of(
    value: Option<&str>,
    at: &str,
    allowed: &[&'static str],
) -> Result<Option<&'static str>, InvalidRequest> {
    match value {
        None => Ok(None),
        Some(v) => allowed
            .iter()
            .find(|a| **a == v)
            .map(|a| Some(*a))
            .ok_or_else(|| not_in_enum(v, at, allowed)),
    }
}

/// Walks the blocks in order, counting tokens and hashing the prefix for cache keys.
struct Walk {
    input_tokens: u64,
    prefix: DefaultHasher,
    cache_points: Vec<CachePoint>,
    texts: Vec<String>,
}

impl Walk {
    /// Handles one block; returns its text (`None` for a cache point).
    fn block<'a>(
        &mut self,
        block: &'a RawBlock,
        at: &str,
    ) -> Result<Option<&'a str>, InvalidRequest> {
        if !block.other.is_empty() {
            return Err(invalid(format!(
                "{at}: the offline model supports text and cachePoint content blocks only"
            )));
        }
        if block.text.is_some() == block.cache_point.is_some() {
            return Err(invalid(format!(
                "{at}: a content block must have exactly one member"
            )));
        }
        if let Some(cp) = &block.cache_point {
            let kind = cp.kind.as_deref().unwrap_or("");
            if kind != "default" {
                return Err(not_in_enum(
                    kind,
                    &format!("{at}.cachePoint.type"),
                    &["default"],
                ));
            }
            let ttl = match cp.ttl.as_deref() {
                None | Some("5m") => CACHE_TTL_DEFAULT,
                Some("1h") => CACHE_TTL_1H,
                Some(other) => {
                    return Err(not_in_enum(
                        other,
                        &format!("{at}.cachePoint.ttl"),
                        &["5m", "1h"],
                    ));
                }
            };
            if self.cache_points.len() == MAX_CACHE_POINTS {
                return Err(invalid(format!(
                    "The number of cache points in the request exceeds the maximum of {MAX_CACHE_POINTS}."
                )));
            }
            self.cache_points.push(CachePoint {
                prefix_hash: self.prefix.clone().finish(),
                prefix_tokens: self.input_tokens,
                ttl,
            });
            return Ok(None);
        }
        let text = block.text.as_deref().unwrap_or_default();
        if text.trim().is_empty() {
            return Err(invalid(format!(
                "The text field in the ContentBlock object at {at} is blank. Add text to the text field, and try again."
            )));
        }
        (2u8, text).hash(&mut self.prefix);
        self.input_tokens += count_tokens(text);
        self.texts.push(text.to_owned());
        Ok(Some(text))
    }
}

/// Parses and validates a request body.
pub fn parse(body: &[u8]) -> Result<ConverseRequest, InvalidRequest> {
    let raw: RawRequest = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Malformed input request: {e}")))?;

    let messages = raw
        .messages
        .ok_or_else(|| invalid("1 validation error detected: messages is required"))?;
    if messages.is_empty() {
        return Err(invalid("A conversation must start with a user message."));
    }

    let mut walk = Walk {
        input_tokens: 0,
        prefix: DefaultHasher::new(),
        cache_points: Vec::new(),
        texts: Vec::new(),
    };
    for (i, block) in raw.system.iter().enumerate() {
        walk.block(block, &format!("system.{i}"))?;
    }

    let mut previous_role: Option<&str> = None;
    let mut last_user_text = None;
    let mut user_messages = 0;
    for (i, message) in messages.iter().enumerate() {
        let role = message.role.as_str();
        if role != "user" && role != "assistant" {
            return Err(invalid(format!(
                "messages.{i}.role: value must be one of [user, assistant]"
            )));
        }
        if i == 0 && role != "user" {
            return Err(invalid("A conversation must start with a user message."));
        }
        if previous_role == Some(role) {
            return Err(invalid(
                "A conversation must alternate between user and assistant roles.",
            ));
        }
        previous_role = Some(role);
        if message.content.is_empty() {
            return Err(invalid(format!("messages.{i}.content must not be empty")));
        }
        (1u8, role).hash(&mut walk.prefix);
        let mut texts = Vec::with_capacity(message.content.len());
        for (j, block) in message.content.iter().enumerate() {
            if let Some(text) = walk.block(block, &format!("messages.{i}.content.{j}"))? {
                texts.push(text);
            }
        }
        if texts.is_empty() {
            return Err(invalid(format!(
                "messages.{i}.content: a message needs at least one text block besides cache points"
            )));
        }
        if role == "user" {
            last_user_text = Some(texts.join(" "));
            user_messages += 1;
        }
    }

    let mut max_tokens = None;
    if let Some(cfg) = raw.inference_config {
        if let Some(m) = cfg.max_tokens {
            if m < 1 {
                return Err(invalid("inferenceConfig.maxTokens must be at least 1"));
            }
            max_tokens = Some(u32::try_from(m).unwrap_or(u32::MAX));
        }
        for (name, value) in [("temperature", cfg.temperature), ("topP", cfg.top_p)] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(invalid(format!(
                    "inferenceConfig.{name} must be between 0 and 1"
                )));
            }
        }
        if cfg.stop_sequences.iter().any(|s| s.is_empty()) {
            return Err(invalid(
                "inferenceConfig.stopSequences must not contain empty strings",
            ));
        }
    }

    let guardrail = raw.guardrail_config.map(parse_guardrail).transpose()?;
    let service_tier = match raw.service_tier {
        None => None,
        Some(t) => Some(
            one_of(
                Some(t.kind.as_deref().unwrap_or("")),
                "serviceTier.type",
                TIERS,
            )?
            .unwrap_or_default(),
        ),
    };
    let latency = match raw.performance_config {
        None => None,
        // The SDK always sends `latency`; a raw client may leave it out (standard).
        Some(p) => Some(
            one_of(p.latency.as_deref(), "performanceConfig.latency", LATENCIES)?
                .unwrap_or("standard"),
        ),
    };

    let input_chars = walk.texts.iter().map(|t| t.chars().count() as u64).sum();
    Ok(ConverseRequest {
        input_tokens: walk.input_tokens,
        // The first message is a user message, so there is always one.
        last_user_text: last_user_text.unwrap_or_default(),
        user_messages,
        max_tokens,
        cache_points: walk.cache_points,
        input_text: walk.texts.join("\n"),
        input_chars,
        guardrail,
        service_tier,
        latency,
    })
}

/// `guardrailConfig`, checked as Bedrock does (the SDK sends `""` for a missing identifier or
/// version, which only the service rejects).
fn parse_guardrail(raw: RawGuardrailConfig) -> Result<GuardrailRequest, InvalidRequest> {
    let identifier = raw.guardrail_identifier.unwrap_or_default();
    let id = guardrail_id(&identifier).ok_or_else(|| {
        invalid(format!(
            "1 validation error detected: Value '{identifier}' at 'guardrailConfig.guardrailIdentifier' \
             failed to satisfy constraint: Member must be a guardrail ID (lowercase letters and digits) \
             or a guardrail ARN"
        ))
    })?;
    let version = raw.guardrail_version.unwrap_or_default();
    let version_ok = version == "DRAFT"
        || (matches!(version.len(), 1..=8)
            && version.bytes().all(|b| b.is_ascii_digit())
            && !version.starts_with('0'));
    if !version_ok {
        return Err(invalid(format!(
            "1 validation error detected: Value '{version}' at 'guardrailConfig.guardrailVersion' \
             failed to satisfy constraint: Member must satisfy regular expression pattern: \
             (([1-9][0-9]{{0,7}})|(DRAFT))"
        )));
    }
    let trace = match raw.trace.as_deref() {
        None | Some("disabled") => TraceMode::Disabled,
        Some("enabled") => TraceMode::Enabled,
        Some("enabled_full") => TraceMode::EnabledFull,
        Some(other) => {
            return Err(not_in_enum(
                other,
                "guardrailConfig.trace",
                &["enabled", "disabled", "enabled_full"],
            ));
        }
    };
    let async_mode = match raw.stream_processing_mode.as_deref() {
        None | Some("sync") => false,
        Some("async") => true,
        Some(other) => {
            return Err(not_in_enum(
                other,
                "guardrailConfig.streamProcessingMode",
                &["sync", "async"],
            ));
        }
    };
    Ok(GuardrailRequest {
        id,
        identifier,
        version,
        trace,
        async_mode,
    })
}

/// The guardrail ID of an identifier: the ID itself, or the last segment of a guardrail ARN
/// (`arn:aws:bedrock:REGION:ACCOUNT:guardrail/ID`).
fn guardrail_id(identifier: &str) -> Option<String> {
    let id = if identifier.starts_with("arn:") {
        let (head, id) = identifier.rsplit_once(":guardrail/")?;
        if !head.contains(":bedrock:") {
            return None;
        }
        id
    } else {
        identifier
    };
    let ok = !id.is_empty()
        && id.len() <= 2048
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    ok.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_system_and_all_messages_and_takes_last_user_text() {
        let body = br#"{
            "system":[{"text":"You are terse."}],
            "messages":[
                {"role":"user","content":[{"text":"hello there"}]},
                {"role":"assistant","content":[{"text":"hi"}]},
                {"role":"user","content":[{"text":"how are"},{"text":"you?"}]}
            ],
            "inferenceConfig":{"maxTokens":5,"temperature":0.5,"topP":0.9,"stopSequences":["x"]}
        }"#;
        let r = parse(body).unwrap();
        assert_eq!(r.input_tokens, 3 + 2 + 1 + 3);
        assert_eq!(r.last_user_text, "how are you?");
        assert_eq!(r.max_tokens, Some(5));
        assert!(r.cache_points.is_empty());
        assert_eq!(
            r.input_text,
            "You are terse.\nhello there\nhi\nhow are\nyou?"
        );
        assert_eq!(r.input_chars, 14 + 11 + 2 + 7 + 4);
        assert_eq!((r.guardrail, r.service_tier, r.latency), (None, None, None));
    }

    #[test]
    fn rejects_invalid_bodies() {
        let cases: &[&[u8]] = &[
            b"not json",
            br#"{}"#,
            br#"{"messages":[]}"#,
            br#"{"messages":[{"role":"assistant","content":[{"text":"a"}]}]}"#,
            br#"{"messages":[{"role":"robot","content":[{"text":"a"}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]},{"role":"user","content":[{"text":"b"}]}]}"#,
            br#"{"messages":[{"role":"user","content":[]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"  "}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"image":{}}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a","cachePoint":{"type":"default"}}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"},{"cachePoint":{"type":"other"}}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"},{"cachePoint":{"type":"default","ttl":"2h"}}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"cachePoint":{"type":"default"}}]}]}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"inferenceConfig":{"maxTokens":0}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"inferenceConfig":{"temperature":1.5}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"system":[{"text":""}]}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"serviceTier":{"type":"gold"}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"performanceConfig":{"latency":"fast"}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"guardrailConfig":{"guardrailIdentifier":"","guardrailVersion":"1"}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"guardrailConfig":{"guardrailIdentifier":"abc","guardrailVersion":"01"}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"guardrailConfig":{"guardrailIdentifier":"abc","guardrailVersion":"1","trace":"on"}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"guardrailConfig":{"guardrailIdentifier":"abc","guardrailVersion":"1","streamProcessingMode":"later"}}"#,
        ];
        for body in cases {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let five = br#"{"system":[{"text":"a"},{"cachePoint":{"type":"default"}},{"cachePoint":{"type":"default"}},{"cachePoint":{"type":"default"}},{"cachePoint":{"type":"default"}},{"cachePoint":{"type":"default"}}],"messages":[{"role":"user","content":[{"text":"a"}]}]}"#;
        let err = parse(five).unwrap_err();
        assert!(err.0.contains("maximum of 4"), "{err}");
        let err = parse(br#"{"messages":[{"role":"user","content":[{"image":{}}]}]}"#).unwrap_err();
        assert!(err.0.contains("text and cachePoint"), "{err}");
    }

    #[test]
    fn cache_points_hash_the_prefix_before_them() {
        let body = |system: &str, question: &str| {
            serde_json::json!({
                "system": [{"text": system}, {"cachePoint": {"type": "default"}}],
                "messages": [{"role": "user", "content": [
                    {"text": "shared context words"},
                    {"cachePoint": {"type": "default", "ttl": "1h"}},
                    {"text": question}
                ]}]
            })
            .to_string()
        };
        let a = parse(body("Be brief.", "first?").as_bytes()).unwrap();
        let b = parse(body("Be brief.", "second question?").as_bytes()).unwrap();
        let c = parse(body("Be long.", "first?").as_bytes()).unwrap();
        assert_eq!(a.cache_points.len(), 2);
        assert_eq!(a.cache_points[0].prefix_tokens, 2);
        assert_eq!(a.cache_points[1].prefix_tokens, 5);
        assert_eq!(a.cache_points[0].ttl, CACHE_TTL_DEFAULT);
        assert_eq!(a.cache_points[1].ttl, CACHE_TTL_1H);
        assert_eq!(a.input_tokens, 6);
        // The text after the last cache point does not change the prefixes.
        assert_eq!(a.cache_points, b.cache_points);
        // A different system prompt changes both.
        assert_ne!(a.cache_points[0].prefix_hash, c.cache_points[0].prefix_hash);
        assert_ne!(a.cache_points[1].prefix_hash, c.cache_points[1].prefix_hash);
        // Cache points are not text: the last user text and guarded text leave them out.
        assert_eq!(a.last_user_text, "shared context words first?");
        assert_eq!(a.input_text, "Be brief.\nshared context words\nfirst?");
    }

    #[test]
    fn parses_tier_latency_and_guardrail_config() {
        let r = parse(
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],
                 "serviceTier":{"type":"flex"},"performanceConfig":{"latency":"optimized"},
                 "guardrailConfig":{"guardrailIdentifier":"arn:aws:bedrock:us-east-1:123456789012:guardrail/ab12cd",
                                    "guardrailVersion":"DRAFT","trace":"enabled_full","streamProcessingMode":"async"}}"#,
        )
        .unwrap();
        assert_eq!(r.service_tier, Some("flex"));
        assert_eq!(r.latency, Some("optimized"));
        let g = r.guardrail.unwrap();
        assert_eq!(g.id, "ab12cd");
        assert_eq!(g.version, "DRAFT");
        assert_eq!(g.trace, TraceMode::EnabledFull);
        assert!(g.async_mode);

        let r = parse(
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],
                 "guardrailConfig":{"guardrailIdentifier":"gr1","guardrailVersion":"12"}}"#,
        )
        .unwrap();
        let g = r.guardrail.unwrap();
        assert_eq!(
            (g.id.as_str(), g.trace, g.async_mode),
            ("gr1", TraceMode::Disabled, false)
        );
    }
}
