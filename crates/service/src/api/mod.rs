//! HTTP handlers, one file per endpoint. Each handler validates, calls the model and shapes the
//! reply; errors are `ApiError`s, turned into responses in one place (`crate::error`).
//!
//! - [`chat`] (`POST /api/chat`) and [`stream`] (`POST /api/chat/stream`) share [`turn`] (what
//!   the model is sent: the client's messages, or a stored conversation and the new message),
//!   [`model_choice`] (which variant and model answer, with the fallback), [`spend`] (the
//!   budget check around the model call) and [`reply`] (the usage, cost and latency bodies);
//! - [`conversations`] (`GET` / `DELETE /api/conversations/{id}`), [`health`]
//!   (`GET /api/health`), [`unmatched`] (404 / 405), [`diagnostic`] (a panic on purpose, off by
//!   default).

pub mod chat;
pub mod conversations;
pub mod diagnostic;
pub mod health;
pub mod model_choice;
pub mod reply;
pub mod spend;
pub mod stream;
pub mod turn;
pub mod unmatched;
