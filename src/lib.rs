//! The `chatbot` command: the local server with the chat page (the default), the offline model
//! alone, and the cost tools. A thin layer over the workspace's library crates:
//!
//! - `chatbot_service` — the request path, shared with the Lambda `bootstrap` binary;
//! - `bedrock_offline` — the offline Bedrock-compatible model, the local default;
//! - `chatbot_cost` — `cost-report` and `cost-estimate`.
//!
//! docs/architecture.md explains the split.

pub mod cli;
