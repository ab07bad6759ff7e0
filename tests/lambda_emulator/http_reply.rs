//! A function's reply seen as the HTTP response a client would get, whichever way it was sent.

use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use super::invocation::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("the function reported an error ({error_type}), not an HTTP response: {body}")]
    FunctionError { error_type: String, body: Value },
    #[error("reply has no numeric statusCode: {0}")]
    MissingStatus(Value),
    #[error("reply body is not a string: {0}")]
    BodyNotString(Value),
    #[error("isBase64Encoded body is not valid base64")]
    InvalidBase64,
}

/// Status, headers and body of an HTTP reply. Header names are lowercase; `headers`, API Gateway
/// `multiValueHeaders` and `cookies` (as `set-cookie`) are flattened into one list.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Body pieces as they arrived: one per streamed chunk; a buffered reply is one piece.
    pub chunks: Vec<(Instant, Bytes)>,
}

impl HttpReply {
    pub(crate) fn from_outcome(
        outcome: &Outcome,
        finished_at: Instant,
    ) -> Result<Self, ReplyError> {
        match outcome {
            Outcome::Buffered { body } => Self::from_api_gateway_v2(body, finished_at),
            Outcome::Streamed {
                prelude, chunks, ..
            } => Self::from_stream(prelude, chunks),
            Outcome::Error { error_type, body } => Err(ReplyError::FunctionError {
                error_type: error_type.clone(),
                body: body.clone(),
            }),
        }
    }

    /// API Gateway HTTP API (payload v2.0) response JSON.
    fn from_api_gateway_v2(json: &Value, finished_at: Instant) -> Result<Self, ReplyError> {
        let status = status_of(json)?;
        let mut headers = Vec::new();
        push_header_map(&mut headers, json.get("headers"));
        push_header_map(&mut headers, json.get("multiValueHeaders"));
        push_cookies(&mut headers, json.get("cookies"));
        let text = match json.get("body") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(ReplyError::BodyNotString(other.clone())),
        };
        let body = if json.get("isBase64Encoded") == Some(&Value::Bool(true)) {
            Bytes::from(
                aws_smithy_types::base64::decode(text).map_err(|_| ReplyError::InvalidBase64)?,
            )
        } else {
            Bytes::copy_from_slice(text.as_bytes())
        };
        Ok(Self {
            status,
            headers,
            chunks: vec![(finished_at, body.clone())],
            body,
        })
    }

    /// Streaming prelude (`statusCode`, `headers`, `cookies`) plus the concatenated chunks.
    fn from_stream(prelude: &Value, chunks: &[(Instant, Bytes)]) -> Result<Self, ReplyError> {
        let status = status_of(prelude)?;
        let mut headers = Vec::new();
        push_header_map(&mut headers, prelude.get("headers"));
        push_cookies(&mut headers, prelude.get("cookies"));
        let body: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        Ok(Self {
            status,
            headers,
            body: Bytes::from(body),
            chunks: chunks.to_vec(),
        })
    }

    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }
}

fn status_of(json: &Value) -> Result<u16, ReplyError> {
    json.get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| ReplyError::MissingStatus(json.clone()))
}

/// Header maps come as `name: "value"` or `name: ["v1", "v2"]`.
fn push_header_map(out: &mut Vec<(String, String)>, map: Option<&Value>) {
    let Some(Value::Object(map)) = map else {
        return;
    };
    for (name, value) in map {
        let name = name.to_ascii_lowercase();
        match value {
            Value::Array(values) => {
                for v in values {
                    out.push((name.clone(), scalar_text(v)));
                }
            }
            other => out.push((name, scalar_text(other))),
        }
    }
}

fn push_cookies(out: &mut Vec<(String, String)>, cookies: Option<&Value>) {
    if let Some(Value::Array(cookies)) = cookies {
        for cookie in cookies {
            out.push(("set-cookie".into(), scalar_text(cookie)));
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
