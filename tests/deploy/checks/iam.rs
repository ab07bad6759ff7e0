//! IAM: no wildcard grants, `Resource: "*"` only for X-Ray writes, Bedrock limited to the two
//! invoke actions on exactly the ARNs the configured models need, DynamoDB limited to exactly
//! `chatbot_service::store::IAM_ACTIONS` on the state table's ARN, `bedrock:ApplyGuardrail` on
//! exactly the configured guardrail (and only when there is one).

use std::collections::BTreeSet;

use serde_json::Value;

use chatbot_service::store::IAM_ACTIONS;

use super::guardrail::{self, GUARDRAIL_ACTIONS};
use super::spend::state_table;
use super::stage::configured_models;
use super::{BEDROCK_ACTIONS, Expect, XRAY_ACTIONS};
use crate::deploy::template::{ACCOUNT, Template, list, props};

pub(super) fn statements(t: &Template) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (id, r) in t.resources() {
        let rp = props(r);
        let mut docs: Vec<&Value> = vec![&rp["PolicyDocument"]];
        docs.extend(
            rp["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| &p["PolicyDocument"]),
        );
        for doc in docs {
            for s in list(&doc["Statement"]) {
                out.push((id.to_owned(), s));
            }
        }
    }
    out
}

/// Geography prefixes of cross-region inference profiles other than `us.`, which these checks
/// do not know the routing of.
const OTHER_GEOGRAPHIES: [&str; 7] = ["eu", "apac", "ca", "jp", "au", "us-gov", "global"];

fn expected_bedrock_arns(t: &Template, x: &Expect, p: &mut Vec<String>) -> BTreeSet<String> {
    let mut arns = BTreeSet::new();
    for model in configured_models(t) {
        let prefix = model.split('.').next().unwrap_or_default();
        if let Some(foundation) = model.strip_prefix("us.") {
            arns.insert(format!(
                "arn:aws:bedrock:{}:{}:inference-profile/{model}",
                t.region, ACCOUNT
            ));
            for r in &x.us_route_regions {
                arns.insert(format!(
                    "arn:aws:bedrock:{r}::foundation-model/{foundation}"
                ));
            }
        } else if OTHER_GEOGRAPHIES.contains(&prefix) {
            p.push(format!(
                "no expectation for the routing of profile {model}: extend Expect"
            ));
        } else {
            arns.insert(format!(
                "arn:aws:bedrock:{}::foundation-model/{model}",
                t.region
            ));
        }
    }
    arns
}

pub fn check(t: &Template, x: &Expect) -> Vec<String> {
    let mut p = Vec::new();
    let mut bedrock_actions = BTreeSet::new();
    let mut bedrock_arns = BTreeSet::new();
    let mut dynamodb_actions = BTreeSet::new();
    let mut guardrail_arns = BTreeSet::new();
    let table_arn = state_table(t).map(|id| format!("${{{id}.Arn}}"));
    for (id, s) in statements(t) {
        let allow = s["Effect"] == "Allow";
        if s.get("NotAction").is_some() || s.get("NotResource").is_some() {
            p.push(format!("{id}: NotAction/NotResource grants by exclusion"));
        }
        let actions: Vec<String> = list(&s["Action"])
            .iter()
            .filter_map(|a| t.text(a))
            .collect();
        let resources: Vec<String> = list(&s["Resource"])
            .iter()
            .filter_map(|r| t.decide(r))
            .collect();
        // A wildcard in a Deny only narrows access (the TLS-only bucket guards); in an Allow, or
        // anywhere in a role, it grants more than named.
        let in_role = t.type_of(&id) == Some("AWS::IAM::Role");
        for a in actions.iter().filter(|a| a.contains('*')) {
            if allow || in_role {
                p.push(format!("{id}: wildcard action {a:?}"));
            }
        }
        let bedrock: Vec<&String> = actions
            .iter()
            .filter(|a| a.starts_with("bedrock:"))
            .collect();
        if allow && resources.iter().any(|r| r == "*") {
            if !bedrock.is_empty() {
                p.push(format!(
                    "{id}: Resource \"*\" on Bedrock actions {bedrock:?}"
                ));
            }
            if actions.iter().any(|a| !XRAY_ACTIONS.contains(&a.as_str())) {
                p.push(format!(
                    "{id}: Resource \"*\" is only for X-Ray writes, not {actions:?}"
                ));
            }
        }
        let dynamodb: Vec<&String> = actions
            .iter()
            .filter(|a| a.starts_with("dynamodb:"))
            .collect();
        if allow && !dynamodb.is_empty() {
            if dynamodb.len() != actions.len() {
                p.push(format!(
                    "{id}: DynamoDB and other actions share a statement: {actions:?}"
                ));
            }
            dynamodb_actions.extend(dynamodb.iter().map(|a| a.to_string()));
            // Exactly the table: not "*", not another table, not its indexes or streams.
            let only_table = !resources.is_empty()
                && resources.len() == list(&s["Resource"]).len()
                && resources.iter().all(|r| Some(r) == table_arn.as_ref());
            if !only_table {
                p.push(format!(
                    "{id}: DynamoDB actions on {resources:?}, allowed only on the state table ({})",
                    table_arn.as_deref().unwrap_or("none found")
                ));
            }
        }
        if !allow || bedrock.is_empty() {
            continue;
        }
        if bedrock
            .iter()
            .any(|a| GUARDRAIL_ACTIONS.contains(&a.as_str()))
        {
            if bedrock.len() != actions.len() || actions.len() != GUARDRAIL_ACTIONS.len() {
                p.push(format!(
                    "{id}: ApplyGuardrail shares a statement with other actions: {actions:?}"
                ));
            }
            guardrail_arns.extend(resources.iter().map(|r| t.concrete(r)));
            continue;
        }
        if bedrock.len() != actions.len() {
            p.push(format!(
                "{id}: Bedrock and other actions share a statement: {actions:?}"
            ));
        }
        for a in bedrock {
            if !BEDROCK_ACTIONS.contains(&a.as_str()) {
                p.push(format!(
                    "{id}: Bedrock action {a} is not InvokeModel/InvokeModelWithResponseStream"
                ));
            }
            bedrock_actions.insert(a.clone());
        }
        bedrock_arns.extend(resources.iter().map(|r| t.concrete(r)));
    }
    let wanted: BTreeSet<String> = BEDROCK_ACTIONS.iter().map(|s| s.to_string()).collect();
    if bedrock_actions != wanted {
        p.push(format!(
            "Bedrock actions granted {bedrock_actions:?}, expected exactly {wanted:?}"
        ));
    }
    let wanted_dynamodb: BTreeSet<String> = IAM_ACTIONS.iter().map(|s| s.to_string()).collect();
    if dynamodb_actions != wanted_dynamodb {
        p.push(format!(
            "DynamoDB actions granted {dynamodb_actions:?}, expected exactly \
             chatbot_service::store::IAM_ACTIONS {wanted_dynamodb:?}"
        ));
    }
    let wanted_guardrail: BTreeSet<String> = guardrail::configured(t)
        .map(|g| g.arn)
        .into_iter()
        .collect();
    if guardrail_arns != wanted_guardrail {
        p.push(format!(
            "bedrock:ApplyGuardrail is allowed on {guardrail_arns:?}, expected exactly the \
             configured guardrail {wanted_guardrail:?}"
        ));
    }
    let expected = expected_bedrock_arns(t, x, &mut p);
    for extra in bedrock_arns.difference(&expected) {
        p.push(format!(
            "IAM allows Bedrock on {extra}, which no configured model needs"
        ));
    }
    for missing in expected.difference(&bedrock_arns) {
        p.push(format!(
            "IAM lacks {missing}, which a configured model routes to"
        ));
    }
    p
}
