//! The Converse / ConverseStream request body: parsing and the checks Bedrock itself makes.

use serde::Deserialize;

use crate::tokens::count_tokens;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    messages: Option<Vec<RawMessage>>,
    #[serde(default)]
    system: Vec<RawBlock>,
    inference_config: Option<RawInferenceConfig>,
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    content: Vec<RawBlock>,
}

/// Other block kinds (image, toolUse, …) deserialize with `text: None` and are rejected.
#[derive(Deserialize)]
struct RawBlock {
    text: Option<String>,
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
}

/// Why a body is not a valid request; the text becomes the ValidationException message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidRequest(pub String);

fn invalid(msg: impl Into<String>) -> InvalidRequest {
    InvalidRequest(msg.into())
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

    let mut input_tokens = 0u64;
    for (i, block) in raw.system.iter().enumerate() {
        input_tokens += count_tokens(block_text(block, &format!("system.{i}"))?);
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
        let mut texts = Vec::with_capacity(message.content.len());
        for (j, block) in message.content.iter().enumerate() {
            let text = block_text(block, &format!("messages.{i}.content.{j}"))?;
            input_tokens += count_tokens(text);
            texts.push(text);
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

    Ok(ConverseRequest {
        input_tokens,
        // The first message is a user message, so there is always one.
        last_user_text: last_user_text.unwrap_or_default(),
        user_messages,
        max_tokens,
    })
}

fn block_text<'a>(block: &'a RawBlock, at: &str) -> Result<&'a str, InvalidRequest> {
    match block.text.as_deref() {
        None => Err(invalid(format!(
            "{at}: the offline model supports text content blocks only"
        ))),
        Some(t) if t.trim().is_empty() => Err(invalid(format!(
            "The text field in the ContentBlock object at {at} is blank. Add text to the text field, and try again."
        ))),
        Some(t) => Ok(t),
    }
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
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"inferenceConfig":{"maxTokens":0}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"inferenceConfig":{"temperature":1.5}}"#,
            br#"{"messages":[{"role":"user","content":[{"text":"a"}]}],"system":[{"text":""}]}"#,
        ];
        for body in cases {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
