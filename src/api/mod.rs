//! HTTP handlers, one file per endpoint. Each handler validates, calls the model and shapes the
//! reply; errors are `ApiError`s, turned into responses in one place (`crate::error`).

pub mod chat;
pub mod fallback;
pub mod health;
pub mod reply;
pub mod routing;
pub mod stream;
