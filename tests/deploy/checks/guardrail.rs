//! The optional Bedrock guardrail: the functions' three variables set together or not at all, an
//! ARN (what IAM names) and a fixed version; a guardrail the stack creates blocks prompt attacks
//! on input only and masks e-mail addresses and phone numbers, and the functions use the
//! version the stack cut of it; the interventions alarm and the dashboard row exist exactly when
//! there is a guardrail. (IAM — `bedrock:ApplyGuardrail` on exactly that ARN — is in `iam`.)

use serde_json::Value;

use chatbot_service::telemetry::catalog;

use super::dashboard::dashboard_body;
use super::stage::{lambdas, shared_env};
use crate::deploy::logs_query;
use crate::deploy::metrics;
use crate::deploy::template::{Template, list, props};

pub const ID_VAR: &str = "CHATBOT_GUARDRAIL_ID";
pub const VERSION_VAR: &str = "CHATBOT_GUARDRAIL_VERSION";
pub const STREAM_MODE_VAR: &str = "CHATBOT_GUARDRAIL_STREAM_MODE";
const VARS: [&str; 3] = [ID_VAR, VERSION_VAR, STREAM_MODE_VAR];
/// What the service's Converse calls with a guardrailConfig need beyond InvokeModel*.
pub const GUARDRAIL_ACTIONS: [&str; 1] = ["bedrock:ApplyGuardrail"];
/// Metrics the service emits only when a guardrail is configured.
pub const ONLY_WITH_GUARDRAIL: [&str; 1] = [catalog::GUARDRAIL_INTERVENTIONS];
/// Log fields the dashboard's guardrail widget must read.
const LOG_FIELDS: [&str; 2] = ["guardrailAction", "guardrailPolicies"];

/// The guardrail the functions use, as the stack sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// CHATBOT_GUARDRAIL_ID made concrete: an ARN, or `${Id.GuardrailArn}` of the stack's own.
    pub arn: String,
    pub version: String,
    pub stream_mode: String,
}

/// The configured guardrail (None: the functions have no CHATBOT_GUARDRAIL_ID).
pub fn configured(t: &Template) -> Option<Configured> {
    Some(Configured {
        arn: t.concrete(&shared_env(t, ID_VAR)?),
        version: shared_env(t, VERSION_VAR).unwrap_or_default(),
        stream_mode: shared_env(t, STREAM_MODE_VAR).unwrap_or_default(),
    })
}

/// `${Id.Attribute}` -> (Id, Attribute).
fn get_att(text: &str) -> Option<(&str, &str)> {
    text.strip_prefix("${")?.strip_suffix('}')?.split_once('.')
}

fn is_guardrail_arn(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("arn:aws") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    matches!(parts.as_slice(), [_, "bedrock", region, account, resource]
    if !region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource.strip_prefix("guardrail/").is_some_and(|id| {
            !id.is_empty() && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        }))
}

pub fn check(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    for (id, f) in lambdas(t) {
        let env = t.environment(f);
        let set: Vec<&str> = VARS.into_iter().filter(|v| env.contains_key(*v)).collect();
        if !set.is_empty() && set.len() != VARS.len() {
            p.push(format!(
                "{id}: the guardrail variables go together, {set:?} of {VARS:?} are set"
            ));
        }
    }
    let any_function_has = lambdas(t)
        .iter()
        .any(|(_, f)| t.environment(f).contains_key(ID_VAR));
    let guardrail = configured(t);
    if any_function_has && guardrail.is_none() {
        p.push(format!("the functions disagree on {ID_VAR}"));
    }
    let created: Vec<(&str, &Value)> = t.of_type("AWS::Bedrock::Guardrail");
    let versions: Vec<(&str, &Value)> = t.of_type("AWS::Bedrock::GuardrailVersion");
    match &guardrail {
        None => {
            for (id, _) in created.iter().chain(&versions) {
                p.push(format!(
                    "{id}: a guardrail resource, but the functions use no guardrail ({ID_VAR})"
                ));
            }
        }
        Some(g) => {
            if !["sync", "async"].contains(&g.stream_mode.as_str()) {
                p.push(format!(
                    "{STREAM_MODE_VAR} {:?} must be sync or async",
                    g.stream_mode
                ));
            }
            match get_att(&g.arn) {
                Some((id, "GuardrailArn")) => {
                    match t.resource(id).map(|r| &r["Type"]) {
                        Some(ty) if ty == "AWS::Bedrock::Guardrail" => {
                            p.extend(created_policies(id, t.resource(id).unwrap()));
                        }
                        _ => p.push(format!(
                            "{ID_VAR} {} is not the ARN of a guardrail of this stack",
                            g.arn
                        )),
                    }
                    p.extend(own_version(t, id, &g.version));
                    for (other, _) in created.iter().filter(|(c, _)| *c != id) {
                        p.push(format!("{other}: a guardrail the functions do not use"));
                    }
                }
                _ => {
                    if !is_guardrail_arn(&g.arn) {
                        p.push(format!(
                            "{ID_VAR} {:?} must be a guardrail ARN (IAM names the same ARN)",
                            g.arn
                        ));
                    }
                    if !is_fixed_version(&g.version) {
                        p.push(format!(
                            "{VERSION_VAR} {:?} must be DRAFT or a version number",
                            g.version
                        ));
                    }
                    for (id, _) in created.iter().chain(&versions) {
                        p.push(format!(
                            "{id}: a guardrail resource, but the functions use {}",
                            g.arn
                        ));
                    }
                }
            }
        }
    }
    p.extend(alarm(t, guardrail.is_some()));
    p.extend(dashboard_row(t, guardrail.is_some()));
    p
}

fn is_fixed_version(v: &str) -> bool {
    v == "DRAFT"
        || (!v.is_empty()
            && v.len() <= 8
            && !v.starts_with('0')
            && v.chars().all(|c| c.is_ascii_digit()))
}

/// With the stack's own guardrail: the version is the one the stack cut of it (or a pinned
/// number), never its moving DRAFT unless asked for.
fn own_version(t: &Template, guardrail: &str, version: &str) -> Vec<String> {
    let mut p = Vec::new();
    let cut: Vec<&str> = t
        .of_type("AWS::Bedrock::GuardrailVersion")
        .into_iter()
        .filter(|(_, v)| {
            t.text(&props(v)["GuardrailIdentifier"])
                .and_then(|i| get_att(&i).map(|(id, _)| id.to_owned()))
                .as_deref()
                == Some(guardrail)
        })
        .map(|(id, _)| id)
        .collect();
    if cut.is_empty() {
        p.push(format!(
            "{guardrail}: no AWS::Bedrock::GuardrailVersion of it (the functions would run its \
             DRAFT, which every edit changes)"
        ));
    }
    let pinned = is_fixed_version(version);
    let the_cut = get_att(version).is_some_and(|(id, attr)| attr == "Version" && cut.contains(&id));
    if !pinned && !the_cut {
        p.push(format!(
            "{VERSION_VAR} {version:?} must be the Version of {guardrail}'s GuardrailVersion \
             (or a pinned number)"
        ));
    }
    p
}

/// A guardrail the stack creates: prompt attacks blocked on input only, the five harmful-content
/// filters on, e-mail addresses and phone numbers masked in replies.
fn created_policies(id: &str, guardrail: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let gp = props(guardrail);
    let filters = list(&gp["ContentPolicyConfig"]["FiltersConfig"]);
    let filter = |ty: &str| filters.iter().find(|f| f["Type"] == ty).copied();
    match filter("PROMPT_ATTACK") {
        Some(f) => {
            let input = f["InputStrength"].as_str().unwrap_or("NONE");
            if input == "NONE" || f["InputEnabled"] == false {
                p.push(format!("{id}: PROMPT_ATTACK must be on for input"));
            }
            if f["OutputStrength"] != "NONE" {
                p.push(format!(
                    "{id}: PROMPT_ATTACK OutputStrength must be NONE (replies are no attack), got {}",
                    f["OutputStrength"]
                ));
            }
        }
        None => p.push(format!("{id}: no PROMPT_ATTACK content filter")),
    }
    for ty in ["SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT"] {
        if filter(ty).is_none() {
            p.push(format!("{id}: no {ty} content filter"));
        }
    }
    let pii = list(&gp["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]);
    for ty in ["EMAIL", "PHONE"] {
        let masked = pii.iter().any(|e| {
            let output = e
                .get("OutputAction")
                .unwrap_or(&e["Action"])
                .as_str()
                .unwrap_or_default();
            e["Type"] == ty && output == "ANONYMIZE" && e["OutputEnabled"] != false
        });
        if !masked {
            p.push(format!("{id}: {ty} must be masked (ANONYMIZE) in replies"));
        }
    }
    for key in ["BlockedInputMessaging", "BlockedOutputsMessaging"] {
        if gp[key].as_str().is_none_or(str::is_empty) {
            p.push(format!("{id}: {key} is empty"));
        }
    }
    p
}

/// An alarm on GuardrailInterventions exactly when there is a guardrail: a rate (its Sum over
/// its SampleCount, the requests assessed) that only counts minutes with enough of them.
fn alarm(t: &Template, with_guardrail: bool) -> Vec<String> {
    let mut p = Vec::new();
    let namespace = shared_env(t, "CHATBOT_METRICS_NAMESPACE").unwrap_or_default();
    let mut found = false;
    for (id, a) in t.of_type("AWS::CloudWatch::Alarm") {
        let (refs, _) = metrics::from_alarm(t, id, a);
        let ours: Vec<_> = refs
            .iter()
            .filter(|r| r.namespace == namespace && r.name == catalog::GUARDRAIL_INTERVENTIONS)
            .collect();
        if ours.is_empty() {
            continue;
        }
        found = true;
        if !with_guardrail {
            p.push(format!(
                "{id}: alarms on {} but the stage has no guardrail",
                catalog::GUARDRAIL_INTERVENTIONS
            ));
        }
        let stats: Vec<&str> = ours.iter().map(|r| r.stat.as_str()).collect();
        if !(stats.contains(&"Sum") && stats.contains(&"SampleCount")) {
            p.push(format!(
                "{id}: the intervention rate is Sum over SampleCount (requests assessed), got {stats:?}"
            ));
        }
        let rate = props(a)["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|q| q["ReturnData"] == true)
            .and_then(|q| q["Expression"].as_str())
            .unwrap_or_default()
            .replace(' ', "");
        // IF(assessed >= <minimum>, …): a minute with few requests never breaches.
        if !rate.starts_with("IF(") || !rate.contains(">=") {
            p.push(format!(
                "{id}: needs a minimum of requests per minute (IF(assessed >= n, …)), got {rate:?}"
            ));
        }
    }
    if with_guardrail && !found {
        p.push(format!(
            "no alarm on {} (the stage has a guardrail)",
            catalog::GUARDRAIL_INTERVENTIONS
        ));
    }
    p
}

/// The dashboard's guardrail row exactly when there is a guardrail: interventions and their rate
/// from the metric, actions and policies from the summary lines.
fn dashboard_row(t: &Template, with_guardrail: bool) -> Vec<String> {
    let Ok(body) = dashboard_body(t) else {
        return Vec::new(); // reported by the dashboard check
    };
    let (refs, _) = metrics::from_dashboard(&body);
    let plotted = refs
        .iter()
        .any(|r| r.name == catalog::GUARDRAIL_INTERVENTIONS);
    let queried: Vec<&str> = LOG_FIELDS
        .into_iter()
        .filter(|f| {
            body["widgets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|w| w["type"] == "log")
                .filter_map(|w| w["properties"]["query"].as_str())
                .any(|q| logs_query::field_names(q).iter().any(|n| n == f))
        })
        .collect();
    let mut p = Vec::new();
    if with_guardrail {
        if !plotted {
            p.push("the dashboard does not plot GuardrailInterventions".into());
        }
        if queried != LOG_FIELDS {
            p.push(format!(
                "no Logs Insights widget reads the interventions by {LOG_FIELDS:?} (reads {queried:?})"
            ));
        }
    } else if plotted || !queried.is_empty() {
        p.push(
            "the dashboard has guardrail widgets but the stage has no guardrail (an empty metric, \
             a log query scanning for nothing on every refresh)"
                .into(),
        );
    }
    p
}
