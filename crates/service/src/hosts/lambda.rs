//! The Lambda host: the same router under the Lambda runtime. Buffered for API Gateway HTTP API
//! (which buffers anyway), streaming for a Function URL in `RESPONSE_STREAM` mode.
//!
//! [`main`] is all the `bootstrap` binary does. In Lambda the model is always reached through
//! the standard AWS configuration (tests redirect it with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`).

use axum::Router;

use crate::app::app;
use crate::config::{ServiceConfig, args_from_env};
use crate::hosts::{self, ModelEndpoint};
use crate::telemetry::{EmfSink, logging};

/// How the function answers, from `CHATBOT_LAMBDA_MODE` (`buffered` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LambdaMode {
    Buffered,
    Streaming,
}

/// What the Lambda host reads (environment only).
#[derive(clap::Args)]
pub struct LambdaArgs {
    #[arg(
        long,
        env = "CHATBOT_LAMBDA_MODE",
        value_enum,
        default_value = "buffered"
    )]
    pub mode: LambdaMode,
    #[command(flatten)]
    pub service: ServiceConfig,
}

/// The Lambda function: read the environment, start the service, serve invocations until the
/// runtime stops the process. An error here is an init error.
pub async fn main() -> Result<(), String> {
    let args: LambdaArgs = args_from_env().map_err(|e| e.to_string())?;
    let _guard = logging::init(&args.service, true)?;
    let state = hosts::start(args.service, ModelEndpoint::Bedrock, EmfSink::Stdout).await?;
    run(app(state), args.mode)
        .await
        .map_err(|e| format!("lambda runtime: {e}"))
}

pub async fn run(app: Router, mode: LambdaMode) -> Result<(), lambda_http::Error> {
    match mode {
        LambdaMode::Buffered => lambda_http::run(app).await,
        LambdaMode::Streaming => lambda_http::run_with_streaming_response(app).await,
    }
}
