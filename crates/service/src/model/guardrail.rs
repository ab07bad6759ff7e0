//! Bedrock Guardrails on the model calls: the `guardrailConfig` each call carries (trace on, so
//! the response says what was assessed and billed), and what the trace tells us back — whether
//! the input or the output was blocked, by which policies, and the text units per policy that
//! Bedrock bills.
//!
//! Never copied from the trace: `modelOutput` (the withheld model text) and the matched words or
//! PII values — they are content. Policies are named by their type (`contentPolicy:PROMPT_ATTACK`,
//! `sensitiveInformationPolicy:EMAIL`, `topicPolicy:<topic name>`, `wordPolicy:custom`).

use std::collections::BTreeSet;

use aws_sdk_bedrockruntime::types::{
    GuardrailAssessment, GuardrailConfiguration, GuardrailContentPolicyAction,
    GuardrailContextualGroundingPolicyAction, GuardrailSensitiveInformationPolicyAction,
    GuardrailStreamConfiguration, GuardrailStreamProcessingMode, GuardrailTopicPolicyAction,
    GuardrailTrace, GuardrailTraceAssessment, GuardrailUsage, GuardrailWordPolicyAction,
};

use crate::config::GuardrailStreamMode;

/// The configured guardrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailSettings {
    pub id: String,
    pub version: String,
    pub stream_mode: GuardrailStreamMode,
}

impl GuardrailSettings {
    pub fn converse(&self) -> GuardrailConfiguration {
        GuardrailConfiguration::builder()
            .guardrail_identifier(&self.id)
            .guardrail_version(&self.version)
            .trace(GuardrailTrace::Enabled)
            .build()
    }

    pub fn stream(&self) -> GuardrailStreamConfiguration {
        GuardrailStreamConfiguration::builder()
            .guardrail_identifier(&self.id)
            .guardrail_version(&self.version)
            .trace(GuardrailTrace::Enabled)
            .stream_processing_mode(match self.stream_mode {
                GuardrailStreamMode::Sync => GuardrailStreamProcessingMode::Sync,
                GuardrailStreamMode::Async => GuardrailStreamProcessingMode::Async,
            })
            .build()
    }
}

/// Which side the guardrail blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardrailAction {
    /// The model was not invoked; the reply is the guardrail's blocked-input message.
    InputBlocked,
    /// The model's reply was withheld (or, streaming, cut off) and replaced by the guardrail's
    /// blocked-output message.
    OutputBlocked,
}

impl GuardrailAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardrailAction::InputBlocked => "input_blocked",
            GuardrailAction::OutputBlocked => "output_blocked",
        }
    }
}

/// Text units Bedrock billed, per policy (one unit is up to 1,000 characters assessed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardrailUnits {
    pub content: u64,
    pub topic: u64,
    pub word: u64,
    pub sensitive_information: u64,
    /// Regex-only sensitive-information units: free.
    pub sensitive_information_free: u64,
    pub contextual_grounding: u64,
    pub content_image: u64,
    pub automated_reasoning: u64,
}

impl GuardrailUnits {
    fn from_usage(u: &GuardrailUsage) -> Self {
        let n = |v: i32| v.max(0) as u64;
        GuardrailUnits {
            content: n(u.content_policy_units()),
            topic: n(u.topic_policy_units()),
            word: n(u.word_policy_units()),
            sensitive_information: n(u.sensitive_information_policy_units()),
            sensitive_information_free: n(u.sensitive_information_policy_free_units()),
            contextual_grounding: n(u.contextual_grounding_policy_units()),
            content_image: u.content_policy_image_units().map_or(0, n),
            automated_reasoning: u.automated_reasoning_policy_units().map_or(0, n),
        }
    }

    pub fn add(&mut self, o: GuardrailUnits) {
        self.content += o.content;
        self.topic += o.topic;
        self.word += o.word;
        self.sensitive_information += o.sensitive_information;
        self.sensitive_information_free += o.sensitive_information_free;
        self.contextual_grounding += o.contextual_grounding;
        self.content_image += o.content_image;
        self.automated_reasoning += o.automated_reasoning;
    }

    /// Every unit, whatever its policy (for the summary line).
    pub fn total(&self) -> u64 {
        self.content
            + self.topic
            + self.word
            + self.sensitive_information
            + self.sensitive_information_free
            + self.contextual_grounding
            + self.content_image
            + self.automated_reasoning
    }
}

/// What the guardrail did on a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardrailReport {
    /// `None`: assessed and let through.
    pub action: Option<GuardrailAction>,
    /// The policies that blocked, by type (never the matched text).
    pub policies: BTreeSet<String>,
    /// Summed over the input assessment and every output assessment.
    pub units: GuardrailUnits,
}

impl GuardrailReport {
    /// From the call's stop reason and its `trace.guardrail`.
    pub fn from_trace(stop_reason: &str, trace: &GuardrailTraceAssessment) -> Self {
        let mut report = GuardrailReport::default();
        let inputs: Vec<&GuardrailAssessment> = trace
            .input_assessment()
            .map(|m| m.values().collect())
            .unwrap_or_default();
        let outputs: Vec<&GuardrailAssessment> = trace
            .output_assessments()
            .map(|m| m.values().flatten().collect())
            .unwrap_or_default();
        for a in inputs.iter().chain(&outputs) {
            if let Some(u) = a.invocation_metrics().and_then(|m| m.usage()) {
                report.units.add(GuardrailUnits::from_usage(u));
            }
        }
        if stop_reason != "guardrail_intervened" {
            return report;
        }
        let input_blocked: BTreeSet<String> = inputs.iter().flat_map(|a| blocked_by(a)).collect();
        if input_blocked.is_empty() {
            report.action = Some(GuardrailAction::OutputBlocked);
            report.policies = outputs.iter().flat_map(|a| blocked_by(a)).collect();
        } else {
            report.action = Some(GuardrailAction::InputBlocked);
            report.policies = input_blocked;
        }
        report
    }

    /// Fold a later call's report (a fallback) into this one.
    pub fn merge(&mut self, later: GuardrailReport) {
        self.units.add(later.units);
        if later.action.is_some() {
            self.action = later.action;
            self.policies = later.policies;
        }
    }
}

/// The policies of an assessment that blocked (anonymising PII is not blocking).
fn blocked_by(a: &GuardrailAssessment) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = a.content_policy() {
        for f in p.filters() {
            if *f.action() == GuardrailContentPolicyAction::Blocked {
                out.push(format!("contentPolicy:{}", f.r#type().as_str()));
            }
        }
    }
    if let Some(p) = a.topic_policy() {
        for t in p.topics() {
            if *t.action() == GuardrailTopicPolicyAction::Blocked {
                out.push(format!("topicPolicy:{}", t.name()));
            }
        }
    }
    if let Some(p) = a.word_policy() {
        if p.custom_words()
            .iter()
            .any(|w| *w.action() == GuardrailWordPolicyAction::Blocked)
        {
            out.push("wordPolicy:custom".to_owned());
        }
        for w in p.managed_word_lists() {
            if *w.action() == GuardrailWordPolicyAction::Blocked {
                out.push(format!("wordPolicy:{}", w.r#type().as_str()));
            }
        }
    }
    if let Some(p) = a.sensitive_information_policy() {
        for e in p.pii_entities() {
            if *e.action() == GuardrailSensitiveInformationPolicyAction::Blocked {
                out.push(format!(
                    "sensitiveInformationPolicy:{}",
                    e.r#type().as_str()
                ));
            }
        }
        for r in p.regexes() {
            if *r.action() == GuardrailSensitiveInformationPolicyAction::Blocked {
                let name = r.name().unwrap_or("regex");
                out.push(format!("sensitiveInformationPolicy:{name}"));
            }
        }
    }
    if let Some(p) = a.contextual_grounding_policy() {
        for f in p.filters() {
            if *f.action() == GuardrailContextualGroundingPolicyAction::Blocked {
                out.push(format!("contextualGroundingPolicy:{}", f.r#type().as_str()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_bedrockruntime::types::{
        GuardrailContentFilter, GuardrailContentFilterConfidence, GuardrailContentFilterType,
        GuardrailContentPolicyAssessment, GuardrailInvocationMetrics, GuardrailPiiEntityFilter,
        GuardrailPiiEntityType, GuardrailSensitiveInformationPolicyAssessment,
    };

    fn usage(content: i32, pii: i32) -> GuardrailInvocationMetrics {
        GuardrailInvocationMetrics::builder()
            .usage(
                GuardrailUsage::builder()
                    .topic_policy_units(0)
                    .content_policy_units(content)
                    .word_policy_units(0)
                    .sensitive_information_policy_units(pii)
                    .sensitive_information_policy_free_units(0)
                    .contextual_grounding_policy_units(0)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn prompt_attack(action: GuardrailContentPolicyAction) -> GuardrailContentPolicyAssessment {
        GuardrailContentPolicyAssessment::builder()
            .filters(
                GuardrailContentFilter::builder()
                    .r#type(GuardrailContentFilterType::PromptAttack)
                    .confidence(GuardrailContentFilterConfidence::High)
                    .action(action)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn input_block_names_the_policy_and_sums_units() {
        let input = GuardrailAssessment::builder()
            .content_policy(prompt_attack(GuardrailContentPolicyAction::Blocked))
            .invocation_metrics(usage(2, 2))
            .build();
        let trace = GuardrailTraceAssessment::builder()
            .input_assessment("g1", input)
            .build();
        let r = GuardrailReport::from_trace("guardrail_intervened", &trace);
        assert_eq!(r.action, Some(GuardrailAction::InputBlocked));
        assert_eq!(
            r.policies.iter().collect::<Vec<_>>(),
            ["contentPolicy:PROMPT_ATTACK"]
        );
        assert_eq!((r.units.content, r.units.sensitive_information), (2, 2));
    }

    #[test]
    fn output_block_and_anonymised_pii_is_not_a_block() {
        let pii = GuardrailSensitiveInformationPolicyAssessment::builder()
            .pii_entities(
                GuardrailPiiEntityFilter::builder()
                    .r#match("a@b.c")
                    .r#type(GuardrailPiiEntityType::Email)
                    .action(GuardrailSensitiveInformationPolicyAction::Anonymized)
                    .build()
                    .unwrap(),
            )
            .set_regexes(Some(Vec::new()))
            .build()
            .unwrap();
        let input = GuardrailAssessment::builder()
            .sensitive_information_policy(pii)
            .invocation_metrics(usage(1, 1))
            .build();
        let output = GuardrailAssessment::builder()
            .content_policy(prompt_attack(GuardrailContentPolicyAction::Blocked))
            .invocation_metrics(usage(3, 3))
            .build();
        let trace = GuardrailTraceAssessment::builder()
            .input_assessment("g1", input)
            .output_assessments("g1", vec![output])
            .build();
        let r = GuardrailReport::from_trace("guardrail_intervened", &trace);
        assert_eq!(r.action, Some(GuardrailAction::OutputBlocked));
        assert!(!format!("{r:?}").contains("a@b.c"), "no content kept");
        assert_eq!(r.units.content, 4);
        // Passed: units still count, no action.
        let r = GuardrailReport::from_trace("end_turn", &trace);
        assert_eq!((r.action, r.units.total()), (None, 8));
    }
}
