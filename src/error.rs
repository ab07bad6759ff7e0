//! The API's error type and its one mapping to HTTP.
//!
//! Every failure a client can see is an [`ApiError`]; `IntoResponse` turns it into the contract's
//! `{"error": {"code", "message", "requestId"}}` body with the matching status. The telemetry
//! layer reads the [`ErrorCode`] extension this puts on the response, so logs, metrics and traces
//! name the same code the client got.

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

/// The contract's machine-readable error code, attached to every error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(status_for_code(self.code()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited => "rate_limited",
            ApiError::Internal => "internal",
            ApiError::ModelError => "model_error",
            ApiError::ModelUnavailable => "model_unavailable",
            ApiError::ModelTimeout => "model_timeout",
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
    pub code: &'static str,
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
        res.extensions_mut().insert(ErrorCode(self.code()));
        res
    }
}

/// The status an error code is sent with (the inverse of `ApiError::code`).
pub fn status_for_code(code: &str) -> u16 {
    match code {
        "invalid_request" => 400,
        "not_found" => 404,
        "method_not_allowed" => 405,
        "payload_too_large" => 413,
        "unsupported_media_type" => 415,
        "rate_limited" => 429,
        "model_error" => 502,
        "model_unavailable" => 503,
        "model_timeout" => 504,
        _ => 500,
    }
}
