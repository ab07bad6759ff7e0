//! Decoding a chat request off the wire: media type, size, JSON — each failure with a message
//! that says what and where. What the decoded request must satisfy is in [`crate::validation`].

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;

/// Largest accepted request body. Checked on `Content-Length` before reading and enforced while
/// reading (a chunked body has no length up front).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body of `POST /api/chat` and `POST /api/chat/stream`, as sent: either the whole
/// conversation (`messages`, the client keeps the history) or one new `message` (the server
/// keeps it; `crate::conversations`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatRequestBody {
    #[serde(default)]
    pub messages: Option<Vec<WireMessage>>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// A variant by name; accepted only where operators allow choosing (`CHATBOT_ALLOW_VARIANT_CHOICE`).
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireMessage {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl FromRequest<AppState> for ChatRequestBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        // The router's DefaultBodyLimit stops reading past MAX_BODY_BYTES; the whole body must
        // arrive within CHATBOT_BODY_READ_TIMEOUT_MS, so a client dribbling bytes cannot hold a
        // request open.
        let deadline = state.config().body_read_timeout();
        let read = tokio::time::timeout(deadline, Bytes::from_request(req, state));
        let read = read.await.map_err(|_| {
            let ms = deadline.as_millis();
            let limit = match ms % 1000 {
                0 => format!("{} s", ms / 1000),
                _ => format!("{ms} ms"),
            };
            ApiError::InvalidRequest(format!("the body did not arrive within {limit}"))
        })?;
        let bytes = read.map_err(|rejection| match rejection.status().as_u16() {
            413 => ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            },
            _ => ApiError::InvalidRequest(format!("could not read the body: {rejection}")),
        })?;
        decode(&bytes)
    }
}

/// Parse JSON, naming the failing field path (`messages[1].role`) or the line and column.
pub fn decode(bytes: &[u8]) -> Result<ChatRequestBody, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let body = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("malformed JSON: {inner}")
        } else if path == "." {
            format!("invalid body: {inner}")
        } else {
            format!("{path}: {inner}")
        };
        ApiError::InvalidRequest(message)
    })?;
    // Trailing garbage after the object is malformed JSON too.
    de.end()
        .map_err(|e| ApiError::InvalidRequest(format!("malformed JSON: {e}")))?;
    Ok(body)
}

fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<ChatRequestBody, ApiError>) -> String {
        match r {
            Err(ApiError::InvalidRequest(m)) => m,
            other => panic!("expected invalid_request, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_says_where() {
        let m = message(decode(b"{\"messages\": [\n  {\"role\": \"user\",,}]}"));
        assert!(m.starts_with("malformed JSON"), "{m}");
        assert!(m.contains("line 2"), "{m}");
    }

    #[test]
    fn wrong_field_names_the_path() {
        let m = message(decode(
            br#"{"messages":[{"role":"user","content":"a"},{"role":"bot","content":"b"}]}"#,
        ));
        assert!(m.starts_with("messages[1].role"), "{m}");
        let m = message(decode(br#"{"messages":[{"role":"user","content":5}]}"#));
        assert!(m.starts_with("messages[0].content"), "{m}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let m = message(decode(br#"{"messages":[],"model":"x"}"#));
        assert!(m.contains("unknown field `model`"), "{m}");
        let m = message(decode(
            br#"{"messages":[{"role":"user","content":"a","name":"n"}]}"#,
        ));
        assert!(
            m.contains("messages[0]") && m.contains("unknown field `name`"),
            "{m}"
        );
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let m = message(decode(br#"{"messages":[]} x"#));
        assert!(m.starts_with("malformed JSON"), "{m}");
    }

    #[test]
    fn media_type_parameters_are_accepted() {
        let v = axum::http::HeaderValue::from_static("Application/JSON; charset=utf-8");
        assert!(is_json(Some(&v)));
        let v = axum::http::HeaderValue::from_static("text/plain");
        assert!(!is_json(Some(&v)));
        assert!(!is_json(None));
    }
}
