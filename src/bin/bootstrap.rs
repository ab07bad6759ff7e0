//! The Lambda artifact: only the request path (`chatbot_service`), nothing of the command-line
//! tools. Lambda runs one invocation at a time, so a single-threaded runtime: it starts faster and
//! uses less memory.

use std::process::ExitCode;

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = rt
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(chatbot_service::hosts::lambda::main()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bootstrap: {e}");
            ExitCode::FAILURE
        }
    }
}
