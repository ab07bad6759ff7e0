//! Bedrock failures, classified once into the few kinds the API distinguishes.

use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_smithy_types::event_stream::RawMessage;

/// A failed model call. `kind` is Bedrock's error name (`ThrottlingException`) or the SDK's
/// failure class (`TimeoutError`, `DispatchFailure`, …): on-call searches logs by it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("throttled by the model ({kind})")]
    Throttled { kind: String },
    #[error("the model call timed out")]
    Timeout,
    #[error("the model is unavailable ({kind})")]
    Unavailable { kind: String },
    #[error("the model failed ({kind})")]
    Failed { kind: String },
    #[error("the model rejected the request ({kind}): {message}")]
    Rejected { kind: String, message: String },
    #[error("internal error calling the model: {0}")]
    Internal(String),
}

impl ModelError {
    pub fn kind(&self) -> &str {
        match self {
            ModelError::Throttled { kind }
            | ModelError::Unavailable { kind }
            | ModelError::Failed { kind }
            | ModelError::Rejected { kind, .. } => kind,
            ModelError::Timeout => "TimeoutError",
            ModelError::Internal(_) => "Internal",
        }
    }

    /// From a Bedrock error code, as found on call errors and in-stream exceptions alike
    /// (stream exception names start lower-case: `throttlingException`).
    pub fn from_code(code: &str, message: Option<&str>) -> Self {
        let kind = {
            let mut c = code.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        };
        match kind.as_str() {
            "ThrottlingException" | "ServiceQuotaExceededException" | "ModelNotReadyException" => {
                ModelError::Throttled { kind }
            }
            "ModelTimeoutException" => ModelError::Timeout,
            "ValidationException" => ModelError::Rejected {
                kind,
                message: message
                    .unwrap_or("invalid request")
                    .chars()
                    .take(300)
                    .collect(),
            },
            "AccessDeniedException"
            | "ResourceNotFoundException"
            | "ServiceUnavailableException" => ModelError::Unavailable { kind },
            _ => ModelError::Failed { kind },
        }
    }

    /// An exception inside an open stream. Its frame carries the type only in a header the SDK
    /// turns into the variant, not into the error code, so the variant names the kind.
    pub fn from_stream(err: SdkError<ConverseStreamOutputError, RawMessage>) -> Self {
        use ConverseStreamOutputError as E;
        let SdkError::ServiceError(e) = err else {
            // The receiver reports a connection broken mid-reply as a dispatch failure; the
            // model was reached and failed, as when a buffered reply breaks off (502, not 503).
            return match Self::from_sdk(err) {
                ModelError::Unavailable { kind } => ModelError::Failed { kind },
                other => other,
            };
        };
        let e = e.into_err();
        let kind = match &e {
            E::InternalServerException(_) => "InternalServerException",
            E::ModelStreamErrorException(_) => "ModelStreamErrorException",
            E::ServiceUnavailableException(_) => "ServiceUnavailableException",
            E::ThrottlingException(_) => "ThrottlingException",
            E::ValidationException(_) => "ValidationException",
            _ => e.code().unwrap_or("UnknownStreamError"),
        };
        ModelError::from_code(kind, e.message())
    }

    pub fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err {
            SdkError::ServiceError(e) => {
                let e = e.into_err();
                match e.code() {
                    Some(code) => ModelError::from_code(code, e.message()),
                    None => ModelError::Failed {
                        kind: "UnknownServiceError".into(),
                    },
                }
            }
            SdkError::TimeoutError(_) => ModelError::Timeout,
            SdkError::DispatchFailure(f) if f.is_timeout() => ModelError::Timeout,
            SdkError::DispatchFailure(_) => ModelError::Unavailable {
                kind: "DispatchFailure".into(),
            },
            SdkError::ResponseError(_) => ModelError::Failed {
                kind: "ResponseError".into(),
            },
            SdkError::ConstructionFailure(e) => ModelError::Internal(format!("{e:?}")),
            other => ModelError::Failed {
                kind: format!("{other}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert!(matches!(
            ModelError::from_code("ThrottlingException", None),
            ModelError::Throttled { .. }
        ));
        assert!(
            matches!(ModelError::from_code("throttlingException", None), ModelError::Throttled { kind } if kind == "ThrottlingException")
        );
        assert!(matches!(
            ModelError::from_code("ModelNotReadyException", None),
            ModelError::Throttled { .. }
        ));
        assert!(matches!(
            ModelError::from_code("ModelTimeoutException", None),
            ModelError::Timeout
        ));
        assert!(
            matches!(ModelError::from_code("ValidationException", Some("too long")), ModelError::Rejected { message, .. } if message == "too long")
        );
        assert!(matches!(
            ModelError::from_code("AccessDeniedException", None),
            ModelError::Unavailable { .. }
        ));
        assert!(matches!(
            ModelError::from_code("modelStreamErrorException", None),
            ModelError::Failed { .. }
        ));
        assert!(matches!(
            ModelError::from_code("InternalServerException", None),
            ModelError::Failed { .. }
        ));
    }
}
