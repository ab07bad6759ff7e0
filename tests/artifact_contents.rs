//! The Lambda artifact carries only the request path: the `bootstrap` binary links
//! `chatbot_service` and the Bedrock Runtime SDK, and neither the offline model, the cost tools
//! nor the CloudWatch / CloudWatch Logs SDKs (which the `chatbot` command does link).
//!
//! Checked on the compiled binaries themselves: the test builds keep symbols, and every Rust
//! symbol names its crate, so a crate linked in leaves its name in the file. `grep -F` does the
//! search (a 200 MB debug binary; the test's own code is unoptimised).

use std::process::Command;

fn contains(binary: &str, needle: &str) -> bool {
    let status = Command::new("grep")
        .args(["-a", "-F", "-q", needle, binary])
        .status()
        .expect("run grep");
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("grep failed on {binary}: {other:?}"),
    }
}

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_bootstrap");
const CHATBOT: &str = env!("CARGO_BIN_EXE_chatbot");

/// Crates the Lambda function never runs.
const NOT_IN_LAMBDA: &[&str] = &[
    "bedrock_offline",
    "chatbot_cost",
    "aws_sdk_cloudwatch",
    "aws_sdk_cloudwatchlogs",
];

#[test]
fn bootstrap_links_the_request_path_only() {
    for needle in [
        "chatbot_service",
        "aws_sdk_bedrockruntime",
        "lambda_runtime",
    ] {
        assert!(contains(BOOTSTRAP, needle), "bootstrap lacks {needle}");
    }
    for needle in NOT_IN_LAMBDA {
        assert!(!contains(BOOTSTRAP, needle), "bootstrap links {needle}");
    }
}

#[test]
fn the_search_finds_what_the_chatbot_command_links() {
    // The same search on the command that does link them: proof that the check above can fail.
    for needle in NOT_IN_LAMBDA {
        assert!(contains(CHATBOT, needle), "chatbot should link {needle}");
    }
}
