//! An observable, cost-accountable LLM chatbot for AWS Lambda and Amazon Bedrock.
//!
//! # Layout, following a request
//!
//! - [`cli`]: the `chatbot` binary's commands; picks the host.
//! - [`hosts`]: the two hosts — [`hosts::local`] (TCP + the page) and [`hosts::lambda`] (Lambda
//!   runtime, buffered or streaming). Both build the service with [`hosts::start`] and serve the
//!   same router.
//! - [`app`]: `app(state) -> Router`, every route and layer; [`config`]: every setting.
//! - [`request`] decodes the body, [`validation`] applies the rules, [`api`] holds the handlers.
//! - [`variants`] assigns each conversation its model (A/B weights, sticky); [`model`] calls
//!   Bedrock (Converse / ConverseStream) through the AWS SDK, with the fallback model on throttling.
//! - [`telemetry`]: the layer that gives every request its summary log line, EMF document and
//!   X-Ray segment, plus the model-call span; [`cost`] prices each request.
//! - [`error`]: the typed API error and its single mapping to HTTP.
//! - [`offline`]: a Bedrock-wire-compatible offline model, the default backend locally and in
//!   tests.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod cost;
pub mod error;
pub mod hosts;
pub mod model;
pub mod offline;
pub mod request;
pub mod telemetry;
pub mod validation;
pub mod variants;

pub use app::{AppState, app};
