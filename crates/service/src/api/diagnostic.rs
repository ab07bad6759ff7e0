//! `POST /api/_diag/panic` (only with `CHATBOT_DIAGNOSTIC_ROUTES=true`): a handler that panics,
//! for tests and drills proving a panic still yields a 500, a log line, an EMF document and a
//! trace.

use crate::error::ApiError;

pub async fn panic() -> ApiError {
    panic!("diagnostic panic requested")
}
