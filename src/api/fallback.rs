//! Unknown paths and wrong methods answer in the API's error shape too; and the diagnostic
//! panic route (off unless `CHATBOT_DIAGNOSTIC_ROUTES=true`).

use axum::http::{Method, Uri};

use crate::error::ApiError;

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

pub async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// Panics on purpose, to prove the panic path keeps the contract and the evidence.
pub async fn panic() -> ApiError {
    panic!("diagnostic panic requested")
}
