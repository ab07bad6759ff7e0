//! The API's error type and its one mapping to HTTP.
//!
//! Every failure a client can see is an [`ApiError`]; `IntoResponse` turns it into the contract's
//! `{"error": {"code", "message", "requestId"}}` body with the matching status. Every code's
//! wire name, status and fault live in one table, [`ErrorCode`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::model::ModelError;
use crate::telemetry::context::RequestCtx;

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
    #[error("internal error")]
    Internal,
}

/// Whose fault a failure is: the client's (its input or its path) or the service's (the
/// model, a dependency, a bug). Service faults count as `Errors` and feed the error-rate alarm;
/// client faults count as `ClientErrors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Service,
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
        ErrorCode::Internal,
    ];

    /// (wire name, HTTP status, fault).
    const fn row(self) -> (&'static str, u16, Fault) {
        use Fault::{Client, Service};
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
        }
    }

    /// The JSON body shared by plain responses and the SSE `error` event.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
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
            // 5xx is always the service's fault; only 429 is a 4xx that is.
            if status >= 500 || status == 429 {
                assert_eq!(code.fault(), Fault::Service, "{code}");
            } else {
                assert_eq!(code.fault(), Fault::Client, "{code}");
            }
        }
    }
}
