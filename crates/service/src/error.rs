//! The API's error type and its one mapping to HTTP.
//!
//! Every failure a client can see is an [`ApiError`]; `IntoResponse` turns it into the contract's
//! `{"error": {"code", "message", "requestId"}}` body with the matching status. Every code's
//! wire name, status and fault live in one table, [`ErrorCode`]. Messages may quote the client's
//! input (a path, a method, a JSON value); [`ApiError::body`] caps every message at
//! [`MAX_MESSAGE_CHARS`], so a huge input is never echoed back whole.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::budget::BudgetScope;
use crate::model::ModelError;
use crate::telemetry::context::RequestCtx;

/// Longest error message sent (then cut on a character boundary, with `…`): messages quote
/// client input, which may be 64 KiB long.
pub const MAX_MESSAGE_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("the model is busy (rate limited); retry in a moment")]
    RateLimited,
    #[error("the model returned an error")]
    ModelError,
    #[error("the model is not available right now")]
    ModelUnavailable,
    #[error("the model did not answer in time")]
    ModelTimeout,
    #[error("{}", scope.refusal())]
    BudgetExhausted {
        scope: BudgetScope,
        /// Seconds until the budget's day ends (UTC midnight).
        retry_after: u64,
    },
    #[error("the spending check is unavailable right now; retry in a moment")]
    BudgetUnavailable,
    #[error("requests must come through the site")]
    Forbidden,
    #[error("this server answers only to localhost; the Host header named another name")]
    MisdirectedRequest,
    #[error("no such conversation: it was never started, has expired, or was deleted")]
    ConversationNotFound,
    #[error("another reply in this conversation is still being written; send this one after it")]
    ConversationBusy,
    #[error("this conversation has reached its {turns} turns; start a new one")]
    ConversationFull { turns: u64 },
    #[error("conversations are unavailable right now; retry in a moment")]
    ConversationUnavailable,
    #[error("internal error")]
    Internal,
}

/// Whose fault a failure is: the client's (its input or its path), the service's (the model, a
/// dependency, a bug), or nobody's — a refusal by policy (a daily budget is used up). Service
/// faults count as `Errors` and feed the error-rate alarm; client faults count as
/// `ClientErrors`; refusals as `BudgetRejections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Service,
    Refused,
}

/// The contract's machine-readable error codes: the wire name, the HTTP status and whose fault
/// it is, in one table. The telemetry layer reads the code this puts on every error response,
/// so logs, metrics and traces name the code the client got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    ModelError,
    ModelUnavailable,
    ModelTimeout,
    BudgetExhausted,
    BudgetUnavailable,
    Forbidden,
    MisdirectedRequest,
    ConversationNotFound,
    ConversationBusy,
    ConversationFull,
    ConversationUnavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: &[ErrorCode] = &[
        ErrorCode::InvalidRequest,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::ModelError,
        ErrorCode::ModelUnavailable,
        ErrorCode::ModelTimeout,
        ErrorCode::BudgetExhausted,
        ErrorCode::BudgetUnavailable,
        ErrorCode::Forbidden,
        ErrorCode::MisdirectedRequest,
        ErrorCode::ConversationNotFound,
        ErrorCode::ConversationBusy,
        ErrorCode::ConversationFull,
        ErrorCode::ConversationUnavailable,
        ErrorCode::Internal,
    ];

    /// (wire name, HTTP status, fault).
    const fn row(self) -> (&'static str, u16, Fault) {
        use Fault::{Client, Refused, Service};
        match self {
            ErrorCode::InvalidRequest => ("invalid_request", 400, Client),
            ErrorCode::NotFound => ("not_found", 404, Client),
            ErrorCode::MethodNotAllowed => ("method_not_allowed", 405, Client),
            ErrorCode::PayloadTooLarge => ("payload_too_large", 413, Client),
            ErrorCode::UnsupportedMediaType => ("unsupported_media_type", 415, Client),
            // Bedrock's capacity, not the client's request: a service failure for alarms.
            ErrorCode::RateLimited => ("rate_limited", 429, Service),
            ErrorCode::ModelError => ("model_error", 502, Service),
            ErrorCode::ModelUnavailable => ("model_unavailable", 503, Service),
            ErrorCode::ModelTimeout => ("model_timeout", 504, Service),
            ErrorCode::BudgetExhausted => ("budget_exhausted", 429, Refused),
            // Fail-closed when the store cannot be asked: the service's failure, alarmed.
            ErrorCode::BudgetUnavailable => ("budget_unavailable", 503, Service),
            ErrorCode::Forbidden => ("forbidden", 403, Client),
            // The local host, bound to loopback, was reached under another name (DNS rebinding).
            ErrorCode::MisdirectedRequest => ("misdirected_request", 421, Client),
            ErrorCode::ConversationNotFound => ("conversation_not_found", 404, Client),
            ErrorCode::ConversationBusy => ("conversation_busy", 409, Client),
            ErrorCode::ConversationFull => ("conversation_full", 409, Client),
            ErrorCode::ConversationUnavailable => ("conversation_unavailable", 503, Service),
            ErrorCode::Internal => ("internal", 500, Service),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.row().0
    }

    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.row().1).expect("valid status codes in the table")
    }

    pub const fn fault(self) -> Fault {
        self.row().2
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::RateLimited => ErrorCode::RateLimited,
            ApiError::Internal => ErrorCode::Internal,
            ApiError::ModelError => ErrorCode::ModelError,
            ApiError::ModelUnavailable => ErrorCode::ModelUnavailable,
            ApiError::ModelTimeout => ErrorCode::ModelTimeout,
            ApiError::BudgetExhausted { .. } => ErrorCode::BudgetExhausted,
            ApiError::BudgetUnavailable => ErrorCode::BudgetUnavailable,
            ApiError::Forbidden => ErrorCode::Forbidden,
            ApiError::MisdirectedRequest => ErrorCode::MisdirectedRequest,
            ApiError::ConversationNotFound => ErrorCode::ConversationNotFound,
            ApiError::ConversationBusy => ErrorCode::ConversationBusy,
            ApiError::ConversationFull { .. } => ErrorCode::ConversationFull,
            ApiError::ConversationUnavailable => ErrorCode::ConversationUnavailable,
        }
    }

    /// The JSON body shared by plain responses and the SSE `error` event: the one place every
    /// message is rendered for a client, so the one place it is capped.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: crate::telemetry::truncate(&self.to_string(), MAX_MESSAGE_CHARS),
            request_id: request_id.to_owned(),
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Throttled { .. } => ApiError::RateLimited,
            ModelError::Timeout => ApiError::ModelTimeout,
            ModelError::Unavailable { .. } => ApiError::ModelUnavailable,
            ModelError::Failed { .. } => ApiError::ModelError,
            ModelError::Rejected { message, .. } => {
                ApiError::InvalidRequest(format!("the model rejected the request: {message}"))
            }
            ModelError::Internal(_) => ApiError::Internal,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
}

#[derive(Serialize)]
struct Envelope {
    error: ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Outside a request (never in practice) the id is empty rather than invented.
        let request_id = RequestCtx::current_request_id().unwrap_or_default();
        let mut res = (
            self.status(),
            Json(Envelope {
                error: self.body(&request_id),
            }),
        )
            .into_response();
        if let ApiError::BudgetExhausted { retry_after, .. } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        res.extensions_mut().insert(self.code());
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_unique_name_and_an_error_status() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let status = code.status().as_u16();
            assert!((400..600).contains(&status), "{code}: {status}");
            // 5xx is always the service's fault; 429 is the model's capacity (the service's)
            // or a budget (a refusal); every other 4xx is the client's.
            match (status, code.fault()) {
                (500.., f) => assert_eq!(f, Fault::Service, "{code}"),
                (429, f) => assert_ne!(f, Fault::Client, "{code}"),
                (_, f) => assert_eq!(f, Fault::Client, "{code}"),
            }
        }
    }
}
