//! Bedrock Runtime errors in their wire shape: status code, `x-amzn-errortype` header and a JSON
//! `{"message": …}` body before a stream starts, or an exception frame once it has.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The Bedrock Runtime error shapes the offline model can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Validation,
    AccessDenied,
    ResourceNotFound,
    ModelTimeout,
    ModelError,
    ModelNotReady,
    Throttling,
    ServiceQuotaExceeded,
    InternalServer,
    ServiceUnavailable,
    /// Only inside a stream; a buffered Converse answers ModelErrorException instead.
    ModelStreamError,
    /// A path that is not one of the two operations.
    UnknownOperation,
}

impl ErrorType {
    /// Name in the `x-amzn-errortype` header (the SDK maps it to its typed error).
    pub fn name(self) -> &'static str {
        match self {
            Self::Validation => "ValidationException",
            Self::AccessDenied => "AccessDeniedException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ModelTimeout => "ModelTimeoutException",
            Self::ModelError => "ModelErrorException",
            Self::ModelNotReady => "ModelNotReadyException",
            Self::Throttling => "ThrottlingException",
            Self::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            Self::InternalServer => "InternalServerException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::ModelStreamError => "ModelStreamErrorException",
            Self::UnknownOperation => "UnknownOperationException",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Validation | Self::ServiceQuotaExceeded => StatusCode::BAD_REQUEST,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ResourceNotFound | Self::UnknownOperation => StatusCode::NOT_FOUND,
            Self::ModelTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::ModelError | Self::ModelStreamError => StatusCode::FAILED_DEPENDENCY,
            Self::ModelNotReady | Self::Throttling => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `:exception-type` of an in-stream exception frame. ConverseStream models exactly
    /// these five (see the SDK's `ConverseStreamOutputUnmarshaller`); anything else would reach
    /// the client as an unmodelled error.
    pub fn stream_exception_type(self) -> Option<&'static str> {
        match self {
            Self::InternalServer => Some("internalServerException"),
            Self::ModelStreamError => Some("modelStreamErrorException"),
            Self::ServiceUnavailable => Some("serviceUnavailableException"),
            Self::Throttling => Some("throttlingException"),
            Self::Validation => Some("validationException"),
            _ => None,
        }
    }

    /// The error a buffered Converse answers for a fault that a stream reports mid-way.
    pub fn buffered_equivalent(self) -> Self {
        match self {
            Self::ModelStreamError => Self::ModelError,
            other => other,
        }
    }
}

/// A Bedrock error response (before any body was sent).
#[derive(Debug, thiserror::Error)]
#[error("{} ({}): {message}", kind.name(), kind.status())]
pub struct BedrockError {
    pub kind: ErrorType,
    pub message: String,
    pub request_id: String,
}

impl BedrockError {
    pub fn new(kind: ErrorType, message: impl Into<String>, request_id: &str) -> Self {
        Self {
            kind,
            message: message.into(),
            request_id: request_id.to_owned(),
        }
    }
}

impl IntoResponse for BedrockError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message }).to_string();
        let mut resp = (self.kind.status(), body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.kind.name()),
        );
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            h.insert("x-amzn-requestid", v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_has_bedrock_shape() {
        let resp = BedrockError::new(ErrorType::Throttling, "slow down", "rid-1").into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(resp.headers()["x-amzn-requestid"], "rid-1");
        assert_eq!(
            ErrorType::ServiceQuotaExceeded.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ErrorType::ModelStreamError.buffered_equivalent(),
            ErrorType::ModelError
        );
        assert_eq!(ErrorType::ModelTimeout.stream_exception_type(), None);
    }
}
