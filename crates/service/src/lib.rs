//! The chatbot's request path: what the Lambda function (`bootstrap`) runs, and what the local
//! server runs around the page. An observable, cost-accountable LLM chat API on Amazon Bedrock.
//!
//! # Layout, following a request
//!
//! - [`hosts`]: the two hosts — [`hosts::lambda`] (the Lambda runtime, buffered or streaming;
//!   [`hosts::lambda::main`] is the whole `bootstrap` binary) and [`hosts::local`] (TCP + the
//!   page). Both build the service with [`hosts::start`] and serve the same router.
//! - [`app`]: `app(state) -> Router`, every route and layer; [`config`]: every setting.
//! - [`request`] decodes the body, [`validation`] applies the rules, [`api`] holds the handlers.
//! - [`origin`] refuses requests that skipped the site's CloudFront distribution.
//! - [`conversations`] keeps conversations on the server: a `message` request gets its history,
//!   and its turn is stored once the reply completed; [`variants`] assigns each conversation its
//!   model (A/B weights, sticky); [`budget`] reserves the request's worst case on the daily
//!   budgets; both keep their state in the [`store`] (DynamoDB, or in-process locally);
//!   [`model`] calls Bedrock (Converse / ConverseStream) through the AWS SDK;
//!   `api::model_choice` falls back to the fallback model on throttling; all of it within the
//!   request's one [`deadline`].
//! - [`telemetry`]: the tower layer that gives every request its summary log line, EMF document
//!   and X-Ray segment, plus the model-call span; [`pricing`] prices each request.
//! - [`error`]: the typed API error, the [`error::ErrorCode`] table, and the one mapping to HTTP;
//!   [`secrets`]: deploy secrets and the keyed hash; [`aws`]: the AWS configuration and HTTPS
//!   client every AWS client shares.
//!
//! The offline model (crate `bedrock-offline`) and the cost tools (crate `chatbot-cost`) are
//! separate crates, so the Lambda artifact links neither; docs/architecture.md has the map.

pub mod api;
pub mod app;
pub mod aws;
pub mod budget;
pub mod config;
pub mod conversations;
pub mod deadline;
pub mod error;
pub mod hosts;
pub mod model;
pub mod origin;
pub mod pricing;
pub mod request;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod validation;
pub mod variants;

pub use app::{AppState, app};
