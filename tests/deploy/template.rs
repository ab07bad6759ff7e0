//! The packaged CloudFormation template, read the way CloudFormation would with its parameters
//! at their defaults (which is how `osls deploy` creates the stack).

use std::collections::BTreeMap;

use serde_json::Value;

/// The account id used to turn `${AWS::AccountId}` into text.
pub const ACCOUNT: &str = "123456789012";

pub struct Template {
    pub doc: Value,
    /// The region the stage was packaged for (`${AWS::Region}` in checks).
    pub region: String,
}

pub fn props(resource: &Value) -> &Value {
    &resource["Properties"]
}

/// `value` as a list: a JSON array, or a single value as a list of one.
pub fn list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

impl Template {
    pub fn new(doc: Value, region: &str) -> Self {
        Template {
            doc,
            region: region.to_owned(),
        }
    }

    /// The resources the stack creates: one whose `Condition` is false with the parameters at
    /// their defaults is left out, as CloudFormation would.
    pub fn resources(&self) -> Vec<(&str, &Value)> {
        self.doc["Resources"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| self.created(v))
                    .map(|(k, v)| (k.as_str(), v))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn created(&self, resource: &Value) -> bool {
        match resource["Condition"].as_str() {
            Some(c) => self.condition(c) == Some(true),
            None => true,
        }
    }

    pub fn of_type(&self, ty: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| r["Type"] == ty)
            .collect()
    }

    pub fn resource(&self, id: &str) -> Option<&Value> {
        self.doc["Resources"].get(id).filter(|r| self.created(r))
    }

    pub fn type_of(&self, id: &str) -> Option<&str> {
        self.resource(id).and_then(|r| r["Type"].as_str())
    }

    /// A value as text: strings and numbers as written; `Ref` to a parameter as its default, to
    /// a function as its name, to anything else as `${Id}`; `Fn::Sub` as its template string;
    /// `Fn::GetAtt` as `${Id.Attribute}`. Anything else is None.
    pub fn text(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Object(m) if m.len() == 1 => {
                if let Some(id) = m.get("Ref").and_then(Value::as_str) {
                    if let Some(p) = self.doc["Parameters"].get(id) {
                        return self.text(&p["Default"]);
                    }
                    if self.type_of(id) == Some("AWS::Lambda::Function")
                        && let Some(name) = props(self.resource(id)?)["FunctionName"].as_str()
                    {
                        return Some(name.to_owned());
                    }
                    return Some(format!("${{{id}}}"));
                }
                if let Some(sub) = m.get("Fn::Sub") {
                    return match sub {
                        Value::String(s) => Some(s.clone()),
                        Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
                        _ => None,
                    };
                }
                if let Some(Value::Array(a)) = m.get("Fn::GetAtt") {
                    let parts: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                    return Some(format!("${{{}}}", parts.join(".")));
                }
                None
            }
            _ => None,
        }
    }

    /// `${AWS::Partition}`, `${AWS::Region}` and `${AWS::AccountId}` made concrete.
    pub fn concrete(&self, text: &str) -> String {
        text.replace("${AWS::Partition}", "aws")
            .replace("${AWS::Region}", &self.region)
            .replace("${AWS::AccountId}", ACCOUNT)
    }

    /// A condition's value with every parameter at its default.
    pub fn condition(&self, name: &str) -> Option<bool> {
        self.eval_condition(&self.doc["Conditions"][name])
    }

    fn eval_condition(&self, c: &Value) -> Option<bool> {
        let m = c.as_object()?;
        let (op, args) = m.iter().next()?;
        let args = args.as_array();
        match op.as_str() {
            "Fn::Not" => Some(!self.eval_condition(args?.first()?)?),
            "Fn::Equals" => {
                let a = args?;
                Some(self.text(a.first()?)? == self.text(a.get(1)?)?)
            }
            "Fn::And" | "Fn::Or" => {
                let values = args?
                    .iter()
                    .map(|a| self.eval_condition(a))
                    .collect::<Option<Vec<bool>>>()?;
                Some(if op == "Fn::And" {
                    values.iter().all(|b| *b)
                } else {
                    values.iter().any(|b| *b)
                })
            }
            "Condition" => self.condition(m["Condition"].as_str()?),
            _ => None,
        }
    }

    /// A function's environment as the stack would set it: `Fn::If` decided by its condition,
    /// `AWS::NoValue` leaving the variable out.
    pub fn environment(&self, function: &Value) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some(vars) = props(function)["Environment"]["Variables"].as_object() {
            for (k, v) in vars {
                if let Some(value) = self.decide(v) {
                    env.insert(k.clone(), value);
                }
            }
        }
        env
    }

    /// A property value as the stack would set it: `Fn::If` decided by its condition (nested
    /// ones too); None when it is absent or the chosen branch is `AWS::NoValue`.
    pub fn chosen<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        if v.is_null() || v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") {
            return None;
        }
        if let Some(Value::Array(a)) = v.get("Fn::If") {
            let branch = if self.condition(a.first()?.as_str()?)? {
                a.get(1)?
            } else {
                a.get(2)?
            };
            return self.chosen(branch);
        }
        Some(v)
    }

    /// [`Template::chosen`] as text ([`Template::text`]).
    pub fn decide(&self, v: &Value) -> Option<String> {
        self.chosen(v).and_then(|v| self.text(v))
    }
}
