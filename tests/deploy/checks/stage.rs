//! Facts about the stage (its functions, their shared environment, the configured models) and
//! the checks on the functions and their log groups.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Expect;
use crate::deploy::metrics::Rules;
use crate::deploy::template::{Template, props};

pub(super) fn lambdas(t: &Template) -> Vec<(&str, &Value)> {
    t.of_type("AWS::Lambda::Function")
}

pub(super) fn function_names(t: &Template) -> Vec<String> {
    lambdas(t)
        .iter()
        .filter_map(|(_, f)| props(f)["FunctionName"].as_str().map(str::to_owned))
        .collect()
}

/// The logical id of the function with `CHATBOT_LAMBDA_MODE` = `mode`.
pub(super) fn function_in_mode<'a>(t: &'a Template, mode: &str) -> Option<&'a str> {
    lambdas(t)
        .into_iter()
        .find(|(_, f)| {
            t.environment(f)
                .get("CHATBOT_LAMBDA_MODE")
                .map(String::as_str)
                == Some(mode)
        })
        .map(|(id, _)| id)
}

/// One environment variable, the same on every function (None if absent or different).
pub(super) fn shared_env(t: &Template, key: &str) -> Option<String> {
    let values: BTreeSet<Option<String>> = lambdas(t)
        .iter()
        .map(|(_, f)| t.environment(f).get(key).cloned())
        .collect();
    match values.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(v)] => Some(v.clone()),
        _ => None,
    }
}

/// The models the functions may call, from their environment: the variants' model ids (or
/// CHATBOT_MODEL_ID) plus CHATBOT_FALLBACK_MODEL_ID.
pub fn configured_models(t: &Template) -> Vec<String> {
    let mut models: Vec<String> = match shared_env(t, "CHATBOT_MODEL_VARIANTS") {
        Some(spec) => spec
            .split(',')
            .filter_map(|v| {
                let id_weight = v.trim().split_once('=')?.1;
                Some(id_weight.rsplit_once(':')?.0.to_owned())
            })
            .collect(),
        None => shared_env(t, "CHATBOT_MODEL_ID").into_iter().collect(),
    };
    models.extend(shared_env(t, "CHATBOT_FALLBACK_MODEL_ID"));
    models.sort();
    models.dedup();
    models
}

/// What the stage's metric references must match, read once from the template.
pub(super) struct StageRules {
    namespace: String,
    service: String,
    functions: Vec<String>,
    models: Vec<String>,
}

impl StageRules {
    pub(super) fn of(t: &Template) -> Self {
        StageRules {
            namespace: shared_env(t, "CHATBOT_METRICS_NAMESPACE").unwrap_or_default(),
            service: shared_env(t, "CHATBOT_SERVICE_NAME").unwrap_or_default(),
            functions: function_names(t),
            models: configured_models(t),
        }
    }

    pub(super) fn rules(&self) -> Rules<'_> {
        Rules {
            namespace: &self.namespace,
            service: &self.service,
            functions: &self.functions,
            http_api: "${HttpApi}",
            models: &self.models,
        }
    }
}

pub fn functions(t: &Template, x: &Expect) -> Vec<String> {
    let mut p = Vec::new();
    for (id, f) in lambdas(t) {
        let fp = props(f);
        let env = t.environment(f);
        if fp["Runtime"] != "provided.al2023" {
            p.push(format!(
                "{id}: runtime {} is not provided.al2023",
                fp["Runtime"]
            ));
        }
        if fp["Architectures"] != serde_json::json!(["arm64"]) {
            p.push(format!(
                "{id}: architectures {} are not [arm64]",
                fp["Architectures"]
            ));
        }
        if fp["Handler"] != "bootstrap" {
            p.push(format!("{id}: handler is not bootstrap"));
        }
        if fp["MemorySize"].as_u64() != Some(x.memory_mb) {
            p.push(format!(
                "{id}: memory {} MB, expected {}",
                fp["MemorySize"], x.memory_mb
            ));
        }
        if fp["TracingConfig"]["Mode"] != "Active" {
            p.push(format!("{id}: X-Ray tracing is not Active"));
        }
        let deadline_ms = env
            .get("CHATBOT_MODEL_TIMEOUT_MS")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(25_000);
        match fp["Timeout"].as_u64() {
            Some(s) if s * 1000 > deadline_ms && s < 30 => {}
            other => p.push(format!(
                "{id}: timeout {other:?} s must exceed the model deadline ({deadline_ms} ms) and \
                 stay under API Gateway's 30 s"
            )),
        }
        for key in [
            "CHATBOT_MODEL_ID",
            "CHATBOT_SERVICE_NAME",
            "CHATBOT_METRICS_NAMESPACE",
            "CHATBOT_MAX_TOKENS",
        ] {
            if !env.contains_key(key) {
                p.push(format!("{id}: environment lacks {key}"));
            }
        }
        if env.get("CHATBOT_LOG_CONTENT").is_some_and(|v| v != "false") {
            p.push(format!(
                "{id}: CHATBOT_LOG_CONTENT must stay false (prompts are private)"
            ));
        }
        if env.values().any(String::is_empty) {
            p.push(format!(
                "{id}: an environment variable is empty (the service reads it as a value)"
            ));
        }
        if !fp["Code"]["S3Key"]
            .as_str()
            .is_some_and(|k| k.ends_with(".zip"))
        {
            p.push(format!("{id}: code is not the zip artifact"));
        }
    }
    match (
        function_in_mode(t, "buffered"),
        function_in_mode(t, "streaming"),
    ) {
        (Some(api), Some(stream)) => {
            // Both caps bound spend and Bedrock load whatever reaches the functions.
            for (id, what) in [(api, "buffered"), (stream, "streaming")] {
                let reserved =
                    props(t.resource(id).unwrap())["ReservedConcurrentExecutions"].as_u64();
                if reserved.is_none_or(|r| r < 1) {
                    p.push(format!(
                        "{id}: the {what} function needs a reserved-concurrency cap"
                    ));
                }
            }
        }
        _ => p.push(
            "need one function with CHATBOT_LAMBDA_MODE=buffered and one with streaming".into(),
        ),
    }
    for key in ["CHATBOT_SERVICE_NAME", "CHATBOT_METRICS_NAMESPACE"] {
        if shared_env(t, key).is_none() {
            p.push(format!("the functions disagree on {key}"));
        }
    }
    p
}

pub fn log_groups(t: &Template, x: &Expect) -> Vec<String> {
    let mut p = Vec::new();
    let groups: Vec<(&str, &Value)> = t.of_type("AWS::Logs::LogGroup");
    for (id, g) in &groups {
        if props(g)["RetentionInDays"].as_u64() != Some(x.log_retention_days) {
            p.push(format!(
                "{id}: retention {} days, expected {}",
                props(g)["RetentionInDays"],
                x.log_retention_days
            ));
        }
    }
    for name in function_names(t) {
        let group = format!("/aws/lambda/{name}");
        if !groups
            .iter()
            .any(|(_, g)| props(g)["LogGroupName"] == group.as_str())
        {
            p.push(format!(
                "no log group {group} (with retention) for function {name}"
            ));
        }
    }
    p
}
