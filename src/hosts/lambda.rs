//! The Lambda host: the same router under the Lambda runtime. Buffered for API Gateway HTTP API
//! (which buffers anyway), streaming for a Function URL in `RESPONSE_STREAM` mode.

use axum::Router;

/// How the function answers, from `CHATBOT_LAMBDA_MODE` (`buffered` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LambdaMode {
    Buffered,
    Streaming,
}

pub async fn run(app: Router, mode: LambdaMode) -> Result<(), lambda_http::Error> {
    match mode {
        LambdaMode::Buffered => lambda_http::run(app).await,
        LambdaMode::Streaming => lambda_http::run_with_streaming_response(app).await,
    }
}
