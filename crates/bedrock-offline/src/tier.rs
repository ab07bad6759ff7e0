//! `serviceTier` and `performanceConfig`: what was asked for, and what the model reports it
//! served. `#served-tier=<type>` / `#served-latency=<mode>` in the last user message make it
//! report something else (a priority request served as default, optimized latency falling back
//! to standard), so a client that prices by what was served can be tested.

use serde_json::{Map, Value, json};

/// `serviceTier.type` values.
pub const TIERS: &[&str] = &["priority", "default", "flex", "reserved"];
/// `performanceConfig.latency` values.
pub const LATENCIES: &[&str] = &["standard", "optimized"];

const TIER_PREFIX: &str = "#served-tier=";
const LATENCY_PREFIX: &str = "#served-latency=";

/// Whether a word of a user message is a `#served-…=` directive (kept out of the echoed reply).
pub fn is_directive_word(word: &str) -> bool {
    word.starts_with(TIER_PREFIX) || word.starts_with(LATENCY_PREFIX)
}

/// What the response reports as served; `None` fields are left out of the response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub tier: Option<&'static str>,
    pub latency: Option<&'static str>,
}

impl Served {
    /// What was requested, overridden by `#served-tier=` / `#served-latency=` directives in
    /// `last_user_text`. An unknown value is an error (a ValidationException), so typos show.
    pub fn resolve(
        requested_tier: Option<&'static str>,
        requested_latency: Option<&'static str>,
        last_user_text: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            tier: directive(last_user_text, TIER_PREFIX, TIERS)?.or(requested_tier),
            latency: directive(last_user_text, LATENCY_PREFIX, LATENCIES)?.or(requested_latency),
        })
    }

    /// Adds `serviceTier` / `performanceConfig` to a Converse response or a `metadata` event.
    pub fn add_to(&self, object: &mut Map<String, Value>) {
        if let Some(t) = self.tier {
            object.insert("serviceTier".into(), json!({ "type": t }));
        }
        if let Some(l) = self.latency {
            object.insert("performanceConfig".into(), json!({ "latency": l }));
        }
    }
}

fn directive(
    text: &str,
    prefix: &str,
    allowed: &[&'static str],
) -> Result<Option<&'static str>, String> {
    let Some(word) = text.split_whitespace().find(|w| w.starts_with(prefix)) else {
        return Ok(None);
    };
    let value = word[prefix.len()..].trim_end_matches(['.', ',', ';', '!', '?', '"', '\'', ')']);
    allowed
        .iter()
        .find(|a| **a == value)
        .map(|a| Some(*a))
        .ok_or_else(|| {
            format!(
                "unknown offline directive value '{prefix}{value}'; known values: {}",
                allowed.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_override_what_was_requested() {
        let none = Served::resolve(None, None, "hello").unwrap();
        assert_eq!(none, Served::default());
        let mut obj = Map::new();
        none.add_to(&mut obj);
        assert!(obj.is_empty());

        let asked = Served::resolve(Some("priority"), Some("optimized"), "hello").unwrap();
        assert_eq!(asked.tier, Some("priority"));
        assert_eq!(asked.latency, Some("optimized"));

        let served = Served::resolve(
            Some("priority"),
            Some("optimized"),
            "hi #served-tier=default #served-latency=standard.",
        )
        .unwrap();
        assert_eq!(
            served,
            Served {
                tier: Some("default"),
                latency: Some("standard")
            }
        );
        let mut obj = Map::new();
        served.add_to(&mut obj);
        assert_eq!(
            Value::Object(obj),
            json!({"serviceTier": {"type": "default"}, "performanceConfig": {"latency": "standard"}})
        );

        // A directive alone makes the field appear.
        let only = Served::resolve(None, None, "#served-tier=flex").unwrap();
        assert_eq!((only.tier, only.latency), (Some("flex"), None));

        assert!(Served::resolve(None, None, "#served-tier=gold").is_err());
        assert!(Served::resolve(None, None, "#served-latency=").is_err());
        assert!(is_directive_word("#served-tier=flex"));
        assert!(!is_directive_word("#fault=throttle"));
    }
}
