//! Spend control: the state table the budgets live in (equal to `chatbot_service::store::schema`
//! and named by `CHATBOT_STATE_TABLE` on both functions), the budget settings, and the generated
//! secrets the functions read through dynamic references (the two origin secrets, the hash key).

use std::collections::BTreeSet;

use serde_json::Value;

use chatbot_service::store::schema;

use super::stage::shared_env;
use crate::deploy::template::{Template, list, props};

pub const STATE_TABLE_ENV: &str = "CHATBOT_STATE_TABLE";
pub const ORIGIN_SECRETS_ENV: &str = "CHATBOT_ORIGIN_SECRETS";
pub const HASH_KEY_ENV: &str = "CHATBOT_HASH_KEY";
const BUDGET_ENV: [&str; 2] = [
    "CHATBOT_DAILY_BUDGET_USD",
    "CHATBOT_CLIENT_DAILY_BUDGET_USD",
];
const FAIL_OPEN_ENV: &str = "CHATBOT_BUDGET_FAIL_OPEN";
const SECRET: &str = "AWS::SecretsManager::Secret";

/// `${Id}` (how [`Template::text`] writes a `Ref` to a resource) as `Id`.
fn ref_id(text: &str) -> Option<&str> {
    text.strip_prefix("${")?.strip_suffix('}')
}

/// The logical id of the table both functions name in `CHATBOT_STATE_TABLE` (a `Ref`).
pub fn state_table(t: &Template) -> Option<String> {
    let value = shared_env(t, STATE_TABLE_ENV)?;
    let id = ref_id(&value)?;
    (t.type_of(id) == Some("AWS::DynamoDB::Table")).then(|| id.to_owned())
}

/// The secrets a value reads: it must be one or more `{{resolve:secretsmanager:${Secret}}}`
/// joined by commas, each naming a Secrets Manager secret of this template. None otherwise
/// (a literal value, a secret from elsewhere, a JSON key or version pinned).
pub fn secret_refs(t: &Template, text: &str) -> Option<Vec<String>> {
    text.split(',')
        .map(|part| {
            let inner = part
                .strip_prefix("{{resolve:secretsmanager:")?
                .strip_suffix("}}")?;
            let id = ref_id(inner)?;
            (t.type_of(id) == Some(SECRET)).then(|| id.to_owned())
        })
        .collect()
}

/// The origin secrets the functions accept (`CHATBOT_ORIGIN_SECRETS`), if well formed.
pub fn origin_secrets(t: &Template) -> Vec<String> {
    shared_env(t, ORIGIN_SECRETS_ENV)
        .and_then(|v| secret_refs(t, &v))
        .unwrap_or_default()
}

pub fn table(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    let tables = t.of_type("AWS::DynamoDB::Table");
    if tables.len() != 1 {
        p.push(format!(
            "expected one DynamoDB table (the state store), found {}",
            tables.len()
        ));
    }
    let Some(id) = state_table(t) else {
        p.push(format!(
            "both functions need {STATE_TABLE_ENV} as a Ref to the stack's DynamoDB table"
        ));
        return p;
    };
    let tp = props(t.resource(&id).unwrap());
    let pair = |v: &Value, a: &str, b: &str| {
        (
            v[a].as_str().unwrap_or_default().to_owned(),
            v[b].as_str().unwrap_or_default().to_owned(),
        )
    };
    let keys: Vec<(String, String)> = list(&tp["KeySchema"])
        .into_iter()
        .map(|k| pair(k, "AttributeName", "KeyType"))
        .collect();
    let want_keys = vec![
        (schema::PARTITION_KEY.to_owned(), "HASH".to_owned()),
        (schema::SORT_KEY.to_owned(), "RANGE".to_owned()),
    ];
    if keys != want_keys {
        p.push(format!(
            "{id}: KeySchema {keys:?} is not chatbot_service::store::schema's {want_keys:?}"
        ));
    }
    let attributes: BTreeSet<(String, String)> = list(&tp["AttributeDefinitions"])
        .into_iter()
        .map(|a| pair(a, "AttributeName", "AttributeType"))
        .collect();
    let want_attributes: BTreeSet<(String, String)> = [schema::PARTITION_KEY, schema::SORT_KEY]
        .iter()
        .map(|k| (k.to_string(), "S".to_owned()))
        .collect();
    if attributes != want_attributes {
        p.push(format!(
            "{id}: AttributeDefinitions {attributes:?} must be exactly the string keys {want_attributes:?}"
        ));
    }
    if tp["BillingMode"] != "PAY_PER_REQUEST" {
        p.push(format!(
            "{id}: BillingMode {} must be PAY_PER_REQUEST (on demand: an idle stage costs nothing, no capacity to throttle on)",
            tp["BillingMode"]
        ));
    }
    let ttl = &tp["TimeToLiveSpecification"];
    if ttl["AttributeName"] != schema::TTL_ATTRIBUTE || ttl["Enabled"] != true {
        p.push(format!(
            "{id}: TTL must be enabled on {} (chatbot_service::store::schema::TTL_ATTRIBUTE), got {ttl}",
            schema::TTL_ATTRIBUTE
        ));
    }
    if tp["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] != true {
        p.push(format!("{id}: point-in-time recovery is not on"));
    }
    if tp["SSESpecification"]["SSEEnabled"] != true {
        p.push(format!("{id}: SSESpecification.SSEEnabled is not true"));
    }
    for key in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
        if tp.get(key).is_some() {
            p.push(format!(
                "{id}: {key}: the service queries only the base table (and IAM grants no index)"
            ));
        }
    }
    p
}

/// A plain positive decimal, as the service parses it (no exponent, no sign, no `inf`).
fn positive_decimal(v: &str) -> bool {
    let mut parts = v.split('.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    parts.next().is_none()
        && !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
        && v.parse::<f64>().is_ok_and(|x| x > 0.0)
}

pub fn budgets(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    for key in BUDGET_ENV {
        match shared_env(t, key) {
            Some(v) if positive_decimal(&v) => {}
            other => p.push(format!(
                "{key} must be a decimal > 0, the same on both functions, got {other:?}"
            )),
        }
    }
    match shared_env(t, FAIL_OPEN_ENV).as_deref() {
        Some("true" | "false") => {}
        other => p.push(format!(
            "{FAIL_OPEN_ENV} must be true or false on both functions, got {other:?}"
        )),
    }
    p
}

pub fn secrets(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    let origin = match shared_env(t, ORIGIN_SECRETS_ENV) {
        None => {
            p.push(format!(
                "both functions need the same {ORIGIN_SECRETS_ENV} (the accepted origin secrets)"
            ));
            Vec::new()
        }
        Some(v) => match secret_refs(t, &v) {
            None => {
                p.push(format!(
                    "{ORIGIN_SECRETS_ENV} must list {{{{resolve:secretsmanager:${{Secret}}}}}} references to \
                     this stack's secrets, joined by commas, got {v:?}"
                ));
                Vec::new()
            }
            Some(ids) => {
                let distinct: BTreeSet<&String> = ids.iter().collect();
                if ids.len() != 2 || distinct.len() != 2 {
                    p.push(format!(
                        "{ORIGIN_SECRETS_ENV} must accept two different secrets (blue/green rotation), got {ids:?}"
                    ));
                }
                ids
            }
        },
    };
    match shared_env(t, HASH_KEY_ENV).map(|v| secret_refs(t, &v)) {
        Some(Some(ids)) if ids.len() == 1 => {
            if origin.contains(&ids[0]) {
                p.push(format!(
                    "{HASH_KEY_ENV} must not be an origin secret ({}): those are rotated",
                    ids[0]
                ));
            }
        }
        other => p.push(format!(
            "{HASH_KEY_ENV} must be one reference to a generated secret of this stack, got {other:?}"
        )),
    }
    for (id, s) in t.of_type(SECRET) {
        let sp = props(s);
        if sp.get("SecretString").is_some() {
            p.push(format!(
                "{id}: a SecretString in the template is readable by anyone who can read the template; generate it"
            ));
        }
        let generate = &sp["GenerateSecretString"];
        if generate.is_null() {
            p.push(format!(
                "{id}: the value must be generated (GenerateSecretString)"
            ));
            continue;
        }
        if generate["PasswordLength"].as_u64().is_none_or(|n| n < 32) {
            p.push(format!("{id}: PasswordLength must be at least 32"));
        }
        // A comma would split the CHATBOT_ORIGIN_SECRETS list; a header value needs plain text.
        if generate["ExcludePunctuation"] != true {
            p.push(format!(
                "{id}: ExcludePunctuation must be true (the values are a comma-separated list and a header)"
            ));
        }
    }
    p
}
