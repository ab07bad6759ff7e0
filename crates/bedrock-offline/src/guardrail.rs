//! The simulated guardrail: a word filter (blocked words) plus a content filter that never
//! fires, applied when a request carries `guardrailConfig`.
//!
//! - **Input**: every text block of the request (system and all messages) is assessed. A
//!   blocked word there is an *input intervention*: the model is not invoked, the reply is the
//!   blocked-input message, no model tokens are billed.
//! - **Output**: the reply is assessed word by word. A blocked word (from either list; the
//!   output-only list is not applied to the input) is an *output intervention*: the reply is
//!   replaced by (buffered) or cut and followed by (stream) the blocked-output message; the
//!   model's tokens are billed.
//! - Words match case-insensitively as whole words: text and entries are compared as runs of
//!   letters and digits, so `kraken` matches `Kraken,` and `"KRAKEN"` but not `krakens`; an
//!   entry of several words (`ice cream`) matches those runs in sequence.
//! - **Text units** of an assessment = `ceil(characters / 1000)`, characters being Unicode
//!   scalar values of the assessed text. Each assessment reports that number as both
//!   `wordPolicyUnits` and `contentPolicyUnits` (the two policies the guardrail has); the other
//!   unit counts are 0.

use serde_json::{Map, Value, json};

use crate::config::OfflineConfig;

/// Characters per text unit.
pub const CHARS_PER_TEXT_UNIT: u64 = 1000;

/// Tokens the async-mode scan lags behind generation: in `async` stream mode the blocked word
/// and up to this many following tokens reach the client before the intervention.
pub const ASYNC_SCAN_LAG_TOKENS: usize = 2;

/// `actionReason` of an intervention.
pub const ACTION_BLOCKED: &str = "Guardrail blocked.";
/// `actionReason` when the guardrail let everything through.
pub const ACTION_NONE: &str = "No action.";

/// `guardrailConfig.trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    Disabled,
    Enabled,
    /// Like `Enabled`, plus `modelOutput` (the blocked model text) on an output intervention.
    EnabledFull,
}

/// A request's `guardrailConfig`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardrailRequest {
    /// The guardrail ID (the identifier, or the last segment of an ARN): the key of the
    /// trace's assessment maps.
    pub id: String,
    /// `guardrailIdentifier` as sent.
    pub identifier: String,
    pub version: String,
    pub trace: TraceMode,
    /// `streamProcessingMode: async` (ConverseStream only).
    pub async_mode: bool,
}

/// Text units of `chars` characters of assessed text.
pub fn text_units(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TEXT_UNIT)
}

/// Characters of a text, as the guardrail counts them.
pub fn char_count(text: &str) -> u64 {
    text.chars().count() as u64
}

/// Lowercase runs of letters and digits: the units words are compared in.
fn runs(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|r| !r.is_empty())
        .map(str::to_lowercase)
}

#[derive(Clone, Debug)]
struct Entry {
    /// As configured (trimmed): what the trace reports as `match`.
    word: String,
    runs: Vec<String>,
}

fn entries(words: &[String]) -> Vec<Entry> {
    words
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .map(|w| Entry {
            word: w.to_owned(),
            runs: runs(w).collect(),
        })
        .filter(|e| !e.runs.is_empty())
        .collect()
}

/// Whether `entry` ends exactly at run `end` of `text`.
fn ends_at(entry: &Entry, text: &[String], end: usize) -> bool {
    let m = entry.runs.len();
    end + 1 >= m && text[end + 1 - m..=end] == entry.runs[..]
}

/// The configured guardrail.
#[derive(Clone, Debug)]
pub struct Guardrail {
    blocked: Vec<Entry>,
    blocked_output: Vec<Entry>,
    pub blocked_input_message: String,
    pub blocked_output_message: String,
}

impl Guardrail {
    pub fn from_config(config: &OfflineConfig) -> Self {
        Self {
            blocked: entries(&config.guardrail_blocked_words),
            blocked_output: entries(&config.guardrail_blocked_output_words),
            blocked_input_message: config.guardrail_blocked_input_message.clone(),
            blocked_output_message: config.guardrail_blocked_output_message.clone(),
        }
    }

    /// Blocked words found in the request text (config order, each once).
    pub fn input_matches(&self, text: &str) -> Vec<String> {
        let text: Vec<String> = runs(text).collect();
        self.blocked
            .iter()
            .filter(|e| (0..text.len()).any(|end| ends_at(e, &text, end)))
            .map(|e| e.word.clone())
            .collect()
    }

    /// The first reply word (index into `words`) that completes a blocked word, and the
    /// words blocked there.
    pub fn output_match(&self, words: &[String]) -> Option<(usize, Vec<String>)> {
        let mut text = Vec::new();
        let mut word_of_run = Vec::new();
        for (i, w) in words.iter().enumerate() {
            for r in runs(w) {
                text.push(r);
                word_of_run.push(i);
            }
        }
        (0..text.len()).find_map(|end| {
            let matched: Vec<String> = self
                .blocked
                .iter()
                .chain(&self.blocked_output)
                .filter(|e| ends_at(e, &text, end))
                .map(|e| e.word.clone())
                .collect();
            (!matched.is_empty()).then(|| (word_of_run[end], matched))
        })
    }
}

/// One `GuardrailAssessment`: what was assessed and what it blocked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Characters assessed.
    pub chars: u64,
    /// Blocked words found (empty: nothing found).
    pub blocked: Vec<String>,
}

impl Assessment {
    fn json(&self, req: &GuardrailRequest) -> Value {
        let units = text_units(self.chars);
        let mut a = Map::new();
        if !self.blocked.is_empty() {
            let words: Vec<Value> = self
                .blocked
                .iter()
                .map(|w| json!({"match": w, "action": "BLOCKED", "detected": true}))
                .collect();
            a.insert("wordPolicy".into(), json!({ "customWords": words }));
        }
        a.insert(
            "invocationMetrics".into(),
            json!({
                "guardrailProcessingLatency": 0,
                "usage": {
                    "topicPolicyUnits": 0,
                    "contentPolicyUnits": units,
                    "wordPolicyUnits": units,
                    "sensitiveInformationPolicyUnits": 0,
                    "sensitiveInformationPolicyFreeUnits": 0,
                    "contextualGroundingPolicyUnits": 0,
                },
                "guardrailCoverage": {
                    "textCharacters": {"guarded": self.chars, "total": self.chars},
                },
            }),
        );
        let mut details = json!({
            "guardrailId": req.id,
            "guardrailVersion": req.version,
            "guardrailOrigin": ["REQUEST"],
            "guardrailOwnership": "SELF",
        });
        if req.identifier.starts_with("arn:") {
            details["guardrailArn"] = json!(req.identifier);
        }
        a.insert("appliedGuardrailDetails".into(), details);
        Value::Object(a)
    }
}

/// What the guardrail did with one request, for the response's `trace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardrailTrace {
    pub input: Assessment,
    /// `None` when the model was not invoked (input intervention).
    pub output: Option<Assessment>,
    /// The model text an output intervention withheld (reported with `enabled_full`).
    pub blocked_model_output: Option<String>,
}

impl GuardrailTrace {
    pub fn intervened(&self) -> bool {
        !self.input.blocked.is_empty()
            || self.output.as_ref().is_some_and(|o| !o.blocked.is_empty())
    }

    /// Adds `trace: {guardrail: …}` to a Converse response or `metadata` event when the
    /// request's `trace` is `enabled` or `enabled_full`.
    pub fn add_to(&self, req: &GuardrailRequest, object: &mut Map<String, Value>) {
        if req.trace == TraceMode::Disabled {
            return;
        }
        let mut g = Map::new();
        if req.trace == TraceMode::EnabledFull
            && let Some(text) = &self.blocked_model_output
        {
            g.insert("modelOutput".into(), json!([text]));
        }
        g.insert(
            "inputAssessment".into(),
            json!({ req.id.clone(): self.input.json(req) }),
        );
        if let Some(output) = &self.output {
            g.insert(
                "outputAssessments".into(),
                json!({ req.id.clone(): [output.json(req)] }),
            );
        }
        let reason = if self.intervened() {
            ACTION_BLOCKED
        } else {
            ACTION_NONE
        };
        g.insert("actionReason".into(), json!(reason));
        object.insert("trace".into(), json!({ "guardrail": g }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guardrail(blocked: &[&str], output: &[&str]) -> Guardrail {
        Guardrail::from_config(&OfflineConfig {
            guardrail_blocked_words: blocked.iter().map(|s| s.to_string()).collect(),
            guardrail_blocked_output_words: output.iter().map(|s| s.to_string()).collect(),
            ..OfflineConfig::default()
        })
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn matches_whole_words_case_insensitively() {
        let g = guardrail(&["kraken", " ice cream ", ""], &["squid"]);
        assert_eq!(g.input_matches("Tell me of the KRAKEN, please"), ["kraken"]);
        assert!(g.input_matches("krakens and unkraken").is_empty());
        assert_eq!(
            g.input_matches("I like ice\ncream and the kraken"),
            ["kraken", "ice cream"]
        );
        assert!(g.input_matches("ice-creamy").is_empty());
        // Output-only words are not input words.
        assert!(g.input_matches("a squid").is_empty());

        let reply = words("one two \"giant squid\". three kraken");
        assert_eq!(g.output_match(&reply), Some((3, vec!["squid".to_owned()])));
        assert_eq!(
            g.output_match(&words("I love ice cream")),
            Some((3, vec!["ice cream".to_owned()]))
        );
        assert_eq!(g.output_match(&words("nothing here")), None);
        assert_eq!(guardrail(&[], &[]).output_match(&reply), None);
    }

    #[test]
    fn text_units_round_up_per_thousand_characters() {
        assert_eq!(text_units(0), 0);
        assert_eq!(text_units(1), 1);
        assert_eq!(text_units(1000), 1);
        assert_eq!(text_units(1001), 2);
        assert_eq!(char_count("héllo"), 5);
    }

    #[test]
    fn trace_has_the_sdk_shape() {
        let req = GuardrailRequest {
            id: "gr1".into(),
            identifier: "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1".into(),
            version: "1".into(),
            trace: TraceMode::EnabledFull,
            async_mode: false,
        };
        let trace = GuardrailTrace {
            input: Assessment {
                chars: 1500,
                blocked: vec![],
            },
            output: Some(Assessment {
                chars: 10,
                blocked: vec!["squid".into()],
            }),
            blocked_model_output: Some("a giant squid".into()),
        };
        let mut obj = Map::new();
        trace.add_to(&req, &mut obj);
        let g = &obj["trace"]["guardrail"];
        assert_eq!(g["actionReason"], ACTION_BLOCKED);
        assert_eq!(g["modelOutput"], json!(["a giant squid"]));
        let input = &g["inputAssessment"]["gr1"];
        assert!(input.get("wordPolicy").is_none());
        assert_eq!(input["invocationMetrics"]["usage"]["contentPolicyUnits"], 2);
        assert_eq!(input["invocationMetrics"]["usage"]["wordPolicyUnits"], 2);
        assert_eq!(
            input["invocationMetrics"]["guardrailCoverage"]["textCharacters"]["total"],
            1500
        );
        let output = &g["outputAssessments"]["gr1"][0];
        assert_eq!(output["wordPolicy"]["customWords"][0]["match"], "squid");
        assert_eq!(output["wordPolicy"]["customWords"][0]["action"], "BLOCKED");
        assert_eq!(
            output["appliedGuardrailDetails"]["guardrailArn"],
            req.identifier
        );

        let mut obj = Map::new();
        trace.add_to(
            &GuardrailRequest {
                trace: TraceMode::Disabled,
                ..req.clone()
            },
            &mut obj,
        );
        assert!(obj.is_empty());
        let mut obj = Map::new();
        trace.add_to(
            &GuardrailRequest {
                trace: TraceMode::Enabled,
                ..req
            },
            &mut obj,
        );
        assert!(obj["trace"]["guardrail"].get("modelOutput").is_none());
    }
}
