//! A Lambda Runtime API emulator that drives a compiled function binary (`bootstrap`).
// Each integration-test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

pub mod child;
mod emulator;
pub mod events;
mod http_reply;
mod invocation;
mod lambda_env;
mod lock;
mod runtime_api;
mod streamed_body;

// The public API; each test binary uses only some of it.
#[allow(unused_imports)]
pub use child::Line;
#[allow(unused_imports)]
pub use emulator::{Emulator, EmulatorError};
#[allow(unused_imports)]
pub use http_reply::{HttpReply, ReplyError};
#[allow(unused_imports)]
pub use invocation::{InitError, Invocation, InvokeOptions, Outcome};
