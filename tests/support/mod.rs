//! Test support: a Lambda Runtime API emulator that drives a compiled function binary.
// Each integration-test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

pub mod child;
pub mod events;
pub mod http_reply;
pub mod invocation;
pub mod lambda_emulator;
mod lambda_env;
mod lock;
mod runtime_api;
mod streamed_body;

// Shortcuts for tests; each test binary uses only some of them.
#[allow(unused_imports)]
pub use child::Line;
#[allow(unused_imports)]
pub use http_reply::{HttpReply, ReplyError};
#[allow(unused_imports)]
pub use invocation::{InitError, Invocation, InvokeOptions, Outcome};
#[allow(unused_imports)]
pub use lambda_emulator::{Emulator, EmulatorError};
