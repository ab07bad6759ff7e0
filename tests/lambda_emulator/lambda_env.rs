//! The process environment Lambda gives a function.

use std::path::Path;

use super::events::{now_ms, utc_date};

/// The environment Lambda gives a `provided.al2023` function, overridden/extended by `extra`.
/// Nothing is inherited from the test process except `LLVM_PROFILE_FILE` and `RUST_BACKTRACE`
/// (coverage and debugging).
pub fn lambda_environment(binary: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let task_root = match binary.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
        _ => ".".to_owned(),
    };
    let (year, month, day) = utc_date(now_ms());
    let stream = format!(
        "{year}/{month:02}/{day:02}/[$LATEST]{}",
        uuid::Uuid::new_v4().simple()
    );
    let defaults: [(&str, &str); 16] = [
        ("AWS_LAMBDA_FUNCTION_NAME", "chatbot-test"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/chatbot-test"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", &stream),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "us-east-2"),
        ("AWS_DEFAULT_REGION", "us-east-2"),
        ("AWS_ACCESS_KEY_ID", "ASIAEMULATORTESTKEY0"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "emulator-test-secret-access-key-not-real",
        ),
        ("AWS_SESSION_TOKEN", "emulator-test-session-token-not-real"),
        ("_HANDLER", "bootstrap"),
        ("LAMBDA_TASK_ROOT", &task_root),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
    ];
    let mut env: Vec<(String, String)> = defaults
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for key in ["LLVM_PROFILE_FILE", "RUST_BACKTRACE"] {
        if let Ok(value) = std::env::var(key) {
            set(&mut env, key, &value);
        }
    }
    for (key, value) in extra {
        set(&mut env, key, value);
    }
    env
}

pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_owned(),
        None => env.push((key.to_owned(), value.to_owned())),
    }
}
