//! The rules a chat request must satisfy, applied after normalising its text.
//!
//! Normalising first (CRLF → LF, control characters other than tab and newline removed) means the
//! limits count what the model will actually see.

use serde::Serialize;

use crate::error::ApiError;
use crate::request::{ChatRequestBody, Role};

/// Configurable limits (`CHATBOT_MAX_*`, defaults in [`crate::config`]), also published by
/// `/api/health`: the page reads them from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_messages: usize,
    pub max_message_chars: usize,
    pub max_total_chars: usize,
}

/// A request that passed validation: normalised, trimmed text, roles alternating from `user` to
/// `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub conversation_id: Option<String>,
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl ChatRequest {
    pub fn last_user_text(&self) -> &str {
        self.messages
            .last()
            .map(|m| m.content.as_str())
            .unwrap_or("")
    }
}

/// CRLF → LF, then drop C0/C1 control characters except tab and newline.
pub fn normalize(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter(|&c| c == '\t' || c == '\n' || !c.is_control())
        .collect()
}

/// A valid request: the whole conversation, or one message for a conversation the server keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validated {
    Stateless(ChatRequest),
    Turn {
        /// Normalised and trimmed.
        message: String,
        conversation_id: Option<String>,
        variant: Option<String>,
    },
}

/// Either form of a chat request (`messages` or `message`, never both).
pub fn validate_request(body: ChatRequestBody, limits: &Limits) -> Result<Validated, ApiError> {
    let invalid = |m: &str| Err(ApiError::InvalidRequest(m.to_owned()));
    match (&body.messages, &body.message) {
        (Some(_), Some(_)) => invalid(
            "send either `message` (the server keeps the conversation) or `messages` (the whole \
             conversation), not both",
        ),
        (None, None) => {
            invalid("messages: required (or `message`, to let the server keep the conversation)")
        }
        (Some(_), None) => validate(body, limits).map(Validated::Stateless),
        (None, Some(text)) => {
            check_conversation_id(body.conversation_id.as_deref())?;
            let message = checked_text("message", text, limits)?;
            if message.chars().count() > limits.max_total_chars {
                return invalid("message: longer than the request limit");
            }
            Ok(Validated::Turn {
                message,
                conversation_id: body.conversation_id,
                variant: body.variant,
            })
        }
    }
}

fn check_conversation_id(id: Option<&str>) -> Result<(), ApiError> {
    if let Some(id) = id {
        let ok_chars = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if id.is_empty() || id.len() > 64 || !ok_chars {
            return Err(ApiError::InvalidRequest(
                "conversationId: must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -".into(),
            ));
        }
    }
    Ok(())
}

/// Normalised, trimmed, non-empty and within the per-message limit; `at` names the field.
fn checked_text(at: &str, text: &str, limits: &Limits) -> Result<String, ApiError> {
    let content = normalize(text).trim().to_owned();
    let chars = content.chars().count();
    if chars == 0 {
        return Err(ApiError::InvalidRequest(format!("{at}: must not be empty")));
    }
    if chars > limits.max_message_chars {
        return Err(ApiError::InvalidRequest(format!(
            "{at}: {chars} characters, the limit is {}",
            limits.max_message_chars
        )));
    }
    Ok(content)
}

/// The stateless form: the whole conversation in `messages`.
pub fn validate(body: ChatRequestBody, limits: &Limits) -> Result<ChatRequest, ApiError> {
    let invalid = |m: String| Err(ApiError::InvalidRequest(m));
    if body.message.is_some() {
        return invalid("message: not with `messages`".into());
    }
    let Some(wire) = body.messages else {
        return invalid("messages: required".into());
    };
    let count = wire.len();
    if count == 0 || count > limits.max_messages {
        return invalid(format!(
            "messages: must hold 1 to {} messages, got {count}",
            limits.max_messages
        ));
    }
    check_conversation_id(body.conversation_id.as_deref())?;

    let mut messages = Vec::with_capacity(count);
    let mut total = 0usize;
    for (i, m) in wire.into_iter().enumerate() {
        let expected = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        if m.role != expected {
            return invalid(format!(
                "messages[{i}].role: roles must alternate starting with user; expected {}, got {}",
                expected.as_str(),
                m.role.as_str()
            ));
        }
        let content = checked_text(&format!("messages[{i}].content"), &m.content, limits)?;
        total += content.chars().count();
        messages.push(Message {
            role: m.role,
            content,
        });
    }
    if count.is_multiple_of(2) {
        return invalid("messages: the last message must be from the user".into());
    }
    if total > limits.max_total_chars {
        return invalid(format!(
            "messages: {total} characters in total, the limit is {}",
            limits.max_total_chars
        ));
    }
    Ok(ChatRequest {
        messages,
        conversation_id: body.conversation_id,
        variant: body.variant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::WireMessage;

    fn limits() -> Limits {
        crate::config::ServiceConfig::defaults().limits()
    }

    fn body(turns: &[(Role, &str)]) -> ChatRequestBody {
        ChatRequestBody {
            messages: Some(
                turns
                    .iter()
                    .map(|(role, content)| WireMessage {
                        role: *role,
                        content: content.to_string(),
                    })
                    .collect(),
            ),
            message: None,
            conversation_id: None,
            variant: None,
        }
    }

    fn err(b: ChatRequestBody) -> String {
        match validate(b, &limits()) {
            Err(ApiError::InvalidRequest(m)) => m,
            other => panic!("expected invalid_request, got {other:?}"),
        }
    }

    use Role::{Assistant as A, User as U};

    #[test]
    fn normalises_before_checking() {
        assert_eq!(normalize("a\r\nb\u{0}c\u{7}\td\u{85}e\u{9f}"), "a\nbc\tde");
        let ok = validate(body(&[(U, "  hi\r\n\u{1b}[31m ")]), &limits()).unwrap();
        assert_eq!(ok.messages[0].content, "hi\n[31m");
        assert!(
            err(body(&[(U, " \u{0}\r\n\t ")]))
                .starts_with("messages[0].content: must not be empty")
        );
    }

    #[test]
    fn counts_and_alternation() {
        assert!(err(body(&[])).starts_with("messages: must hold 1 to 40"));
        let many: Vec<_> = (0..41)
            .map(|i| if i % 2 == 0 { (U, "x") } else { (A, "y") })
            .collect();
        assert!(err(body(&many)).contains("got 41"));
        assert!(err(body(&[(A, "x")])).starts_with("messages[0].role"));
        assert!(err(body(&[(U, "x"), (U, "y")])).starts_with("messages[1].role"));
        assert!(err(body(&[(U, "x"), (A, "y")])).contains("last message must be from the user"));
        assert!(validate(body(&[(U, "x"), (A, "y"), (U, "z")]), &limits()).is_ok());
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        let at_limit = "é".repeat(4000);
        assert!(validate(body(&[(U, &at_limit)]), &limits()).is_ok());
        let over = "é".repeat(4001);
        assert!(err(body(&[(U, &over)])).contains("4001 characters, the limit is 4000"));
        let long = "x".repeat(4000);
        let turns: Vec<_> = (0..7)
            .map(|i| (if i % 2 == 0 { U } else { A }, long.as_str()))
            .collect();
        assert!(err(body(&turns)).contains("28000 characters in total"));
    }

    #[test]
    fn conversation_id_shape() {
        for bad in ["", "has space", "ünï", &"a".repeat(65)] {
            let mut b = body(&[(U, "x")]);
            b.conversation_id = Some(bad.to_string());
            assert!(err(b).starts_with("conversationId"), "{bad:?}");
        }
        let mut b = body(&[(U, "x")]);
        b.conversation_id = Some("abc_DEF-123".into());
        assert!(validate(b, &limits()).is_ok());
    }
}

#[cfg(test)]
mod request_forms {
    use super::*;

    fn body(json: &str) -> ChatRequestBody {
        crate::request::decode(json.as_bytes()).unwrap()
    }

    fn limits() -> Limits {
        crate::config::ServiceConfig::defaults().limits()
    }

    #[test]
    fn one_form_or_the_other() {
        let both = body(r#"{"message":"hi","messages":[{"role":"user","content":"x"}]}"#);
        assert!(
            matches!(validate_request(both, &limits()), Err(ApiError::InvalidRequest(m)) if m.contains("not both"))
        );
        let neither = body(r#"{"conversationId":"c"}"#);
        assert!(
            matches!(validate_request(neither, &limits()), Err(ApiError::InvalidRequest(m)) if m.starts_with("messages: required"))
        );
        let turn = body(r#"{"message":"  hi\r\n ","conversationId":"abc"}"#);
        assert_eq!(
            validate_request(turn, &limits()).unwrap(),
            Validated::Turn {
                message: "hi".into(),
                conversation_id: Some("abc".into()),
                variant: None
            }
        );
        let empty = body(r#"{"message":"   "}"#);
        assert!(
            matches!(validate_request(empty, &limits()), Err(ApiError::InvalidRequest(m)) if m == "message: must not be empty")
        );
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(4001));
        assert!(
            matches!(validate_request(body(&long), &limits()), Err(ApiError::InvalidRequest(m)) if m.contains("4001 characters"))
        );
    }
}
