//! The one pricing table and the arithmetic on it.
//!
//! Prices are decimals (never floats) so that `tokens × price` is exact to the last digit; the
//! table ships in `prices.json` next to this file (source and date inside) and an operator can
//! replace it without a rebuild (`CHATBOT_PRICING_FILE`). The function (per-request cost), the
//! `cost-estimate` command and the README's cost table all go through this module.

use std::collections::HashMap;
use std::path::Path;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{GuardrailUnits, Usage};

/// The table compiled into the binary.
const BUILTIN: &str = include_str!("prices.json");

/// Geographic prefixes of Bedrock cross-region inference profiles (`us.amazon.nova-micro-v1:0`).
/// A profile is billed at its foundation model's price.
const PROFILE_PREFIXES: &[&str] = &[
    "us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.",
];

#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("cannot read pricing file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid pricing table: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("invalid pricing table: {0}")]
    Invalid(String),
}

/// USD per 1,000 tokens. Cache prices are those of prompt-cache reads and writes; absent, a call
/// that read or wrote the cache cannot be priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelPrice {
    pub input_per1k: Decimal,
    pub output_per1k: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per1k: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per1k: Option<Decimal>,
}

/// A model's prices: the standard ones, and per service tier or latency mode (`priority`,
/// `flex`, `optimized`, …, as `Served::key` names them). A tier not listed has no price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelEntry {
    #[serde(flatten)]
    pub standard: ModelPrice,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub tiers: HashMap<String, ModelPrice>,
    /// Where a price with no primary source came from, or the model's lifecycle state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaPrices {
    pub arm64_gb_second: Decimal,
    #[serde(rename = "x86_64GbSecond")]
    pub x86_64_gb_second: Decimal,
    pub per_request: Decimal,
}

/// Lambda instruction-set architecture; it decides the GB-second price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Arm64,
    #[value(name = "x86_64")]
    X86_64,
}

impl Arch {
    /// The architecture this binary was compiled for (what Lambda bills it as).
    pub fn current() -> Self {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceTable {
    pub source: String,
    pub date: String,
    pub currency: String,
    pub models: HashMap<String, ModelEntry>,
    pub lambda: LambdaPrices,
    pub http_api_per_request: Decimal,
    /// Bedrock Guardrails, per 1,000 text units by policy. Absent: guardrail costs unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<GuardrailPrices>,
}

/// USD per 1,000 guardrail text units (a unit is up to 1,000 characters assessed), keyed by
/// the policy names of Bedrock's `GuardrailUsage` without `Units`: `contentPolicy`,
/// `topicPolicy`, `wordPolicy`, `sensitiveInformationPolicy`, `sensitiveInformationPolicyFree`,
/// `contextualGroundingPolicy`, `contentPolicyImage`, `automatedReasoningPolicy`. A policy with
/// units but no price makes the guardrail's cost unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailPrices {
    pub source: String,
    pub date: String,
    pub per1k_units: HashMap<String, Decimal>,
}

impl GuardrailPrices {
    /// Exact cost of `units`; `None` when a policy that billed units has no price.
    pub fn cost(&self, units: &GuardrailUnits) -> Option<Decimal> {
        let mut total = Decimal::ZERO;
        for (policy, n) in [
            ("contentPolicy", units.content),
            ("topicPolicy", units.topic),
            ("wordPolicy", units.word),
            ("sensitiveInformationPolicy", units.sensitive_information),
            (
                "sensitiveInformationPolicyFree",
                units.sensitive_information_free,
            ),
            ("contextualGroundingPolicy", units.contextual_grounding),
            ("contentPolicyImage", units.content_image),
            ("automatedReasoningPolicy", units.automated_reasoning),
        ] {
            if n > 0 {
                total += Decimal::from(n) * self.per1k_units.get(policy)?;
            }
        }
        Some(total / THOUSAND)
    }
}

const THOUSAND: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);
const MIB_PER_GIB: Decimal = Decimal::from_parts(1024, 0, 0, false, 0);

impl PriceTable {
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("the built-in pricing table is valid")
    }

    pub fn parse(json: &str) -> Result<Self, PricingError> {
        let table: PriceTable = serde_json::from_str(json)?;
        table.validate()?;
        Ok(table)
    }

    pub fn from_file(path: &Path) -> Result<Self, PricingError> {
        let text = std::fs::read_to_string(path).map_err(|source| PricingError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    fn validate(&self) -> Result<(), PricingError> {
        let negative = |d: &Decimal| d.is_sign_negative();
        for (id, e) in &self.models {
            for p in std::iter::once(&e.standard).chain(e.tiers.values()) {
                if [p.input_per1k, p.output_per1k]
                    .iter()
                    .chain(p.cache_read_per1k.iter())
                    .chain(p.cache_write_per1k.iter())
                    .any(negative)
                {
                    return Err(PricingError::Invalid(format!("negative price for {id}")));
                }
            }
        }
        let l = &self.lambda;
        if [
            l.arm64_gb_second,
            l.x86_64_gb_second,
            l.per_request,
            self.http_api_per_request,
        ]
        .iter()
        .any(negative)
        {
            return Err(PricingError::Invalid("negative Lambda/API price".into()));
        }
        if let Some(g) = &self.guardrails
            && g.per1k_units.values().any(negative)
        {
            return Err(PricingError::Invalid("negative guardrail price".into()));
        }
        Ok(())
    }

    /// The entry of a model id, an inference-profile id (`us.…`) or either as an ARN.
    fn entry(&self, model_id: &str) -> Option<&ModelEntry> {
        let id = model_id.rsplit('/').next().unwrap_or(model_id);
        if let Some(e) = self.models.get(id) {
            return Some(e);
        }
        PROFILE_PREFIXES
            .iter()
            .find_map(|prefix| id.strip_prefix(prefix))
            .and_then(|base| self.models.get(base))
    }

    /// The standard price of a model id, an inference-profile id (`us.…`) or either as an ARN.
    pub fn model(&self, model_id: &str) -> Option<ModelPrice> {
        self.entry(model_id).map(|e| e.standard)
    }

    /// The price of what served a call: the standard price, or the tier's / latency mode's
    /// (`served` is `Served::key`). `None` when the table has no such price: never silently the
    /// standard one.
    pub fn served(&self, model_id: &str, served: &str) -> Option<ModelPrice> {
        let entry = self.entry(model_id)?;
        match served {
            "standard" => Some(entry.standard),
            other => entry.tiers.get(other).copied(),
        }
    }

    /// Lambda compute for one invocation: billed ms (rounded up) × memory × GB-second price,
    /// plus the per-request price.
    pub fn lambda_invocation(&self, arch: Arch, memory_mb: u32, billed_ms: u64) -> Decimal {
        self.lambda_compute(arch, memory_mb, billed_ms) + self.lambda.per_request
    }

    /// The duration part alone of one invocation's Lambda bill: GB-seconds × the GB-second price.
    pub fn lambda_compute(&self, arch: Arch, memory_mb: u32, billed_ms: u64) -> Decimal {
        let gb_second = match arch {
            Arch::Arm64 => self.lambda.arm64_gb_second,
            Arch::X86_64 => self.lambda.x86_64_gb_second,
        };
        gb_seconds(memory_mb, billed_ms) * gb_second
    }
}

/// What Lambda meters for one invocation: memory in GB (1 GB = 1,024 MB) × billed seconds.
pub fn gb_seconds(memory_mb: u32, billed_ms: u64) -> Decimal {
    Decimal::from(memory_mb) / MIB_PER_GIB * Decimal::from(billed_ms) / THOUSAND
}

impl ModelPrice {
    /// Exact cost of `usage` at this price: input × input price + cache reads × read price +
    /// cache writes × write price + output × output price, per 1,000. `None` when the call read
    /// or wrote the cache and this price has no cache price.
    pub fn cost(&self, usage: Usage) -> Option<Decimal> {
        let cached = |tokens: u64, price: Option<Decimal>| match tokens {
            0 => Some(Decimal::ZERO),
            n => price.map(|p| Decimal::from(n) * p),
        };
        Some(
            (Decimal::from(usage.input_tokens) * self.input_per1k
                + cached(usage.cache_read_input_tokens, self.cache_read_per1k)?
                + cached(usage.cache_write_input_tokens, self.cache_write_per1k)?
                + Decimal::from(usage.output_tokens) * self.output_per1k)
                / THOUSAND,
        )
    }
}

/// What one request cost, in USD. `None` where a part does not apply (no Lambda memory known,
/// not behind API Gateway) or cannot be known (model missing from the price table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostBreakdown {
    #[serde(with = "rust_decimal::serde::float_option")]
    pub model_usd: Option<Decimal>,
    /// Bedrock Guardrails' text units (absent without a guardrail).
    #[serde(
        with = "rust_decimal::serde::float_option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub guardrail_usd: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::float_option")]
    pub compute_usd: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::float_option")]
    pub api_usd: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::float_option")]
    pub total_usd: Option<Decimal>,
    /// The model part is an estimate: Bedrock never reported usage (a stream cut short, a call
    /// that timed out or failed inside the model).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl CostBreakdown {
    /// Sum the parts; the total is unknown when the model cost is unknown, because a total
    /// without the dominant part would mislead.
    pub fn new(model: Option<Decimal>, compute: Option<Decimal>, api: Option<Decimal>) -> Self {
        let total = model.map(|m| m + compute.unwrap_or_default() + api.unwrap_or_default());
        CostBreakdown {
            model_usd: model,
            guardrail_usd: None,
            compute_usd: compute,
            api_usd: api,
            total_usd: total,
            estimated: false,
        }
    }

    /// Add the guardrail's part (known: to the total as well).
    pub fn with_guardrail(mut self, guardrail: Decimal) -> Self {
        self.guardrail_usd = Some(guardrail);
        self.total_usd = self.total_usd.map(|t| t + guardrail);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn nova_micro_cost_is_exact() {
        let t = PriceTable::builtin();
        let p = t.model("us.amazon.nova-micro-v1:0").unwrap();
        let usage = Usage {
            input_tokens: 800,
            output_tokens: 200,
            ..Usage::default()
        };
        // 800 × 0.000035 / 1000 + 200 × 0.00014 / 1000
        assert_eq!(p.cost(usage), Some(d("0.000056")));
    }

    #[test]
    fn cache_reads_and_writes_have_their_own_prices() {
        let t = PriceTable::builtin();
        let p = t.model("us.amazon.nova-micro-v1:0").unwrap();
        let usage = Usage {
            input_tokens: 100,
            output_tokens: 200,
            cache_read_input_tokens: 1_000,
            cache_write_input_tokens: 2_000,
        };
        // (100 × 0.000035 + 1,000 × 0.00000875 + 2,000 × 0.000035 + 200 × 0.00014) / 1000
        assert_eq!(p.cost(usage), Some(d("0.00011025")));
        let no_cache_price = ModelPrice {
            cache_read_per1k: None,
            ..p
        };
        assert_eq!(
            no_cache_price.cost(usage),
            None,
            "never priced as plain input"
        );
    }

    #[test]
    fn a_tier_without_a_price_is_not_the_standard_price() {
        let t = PriceTable::builtin();
        let id = "us.amazon.nova-micro-v1:0";
        assert_eq!(t.served(id, "standard"), t.model(id));
        assert_eq!(t.served(id, "priority"), None);
        assert_eq!(t.served(id, "optimized"), None);
    }

    #[test]
    fn ids_profiles_and_arns_resolve_to_one_price() {
        let t = PriceTable::builtin();
        let base = t.model("amazon.nova-lite-v1:0").unwrap();
        assert_eq!(t.model("eu.amazon.nova-lite-v1:0"), Some(base));
        assert_eq!(
            t.model(
                "arn:aws:bedrock:us-east-2:123456789012:inference-profile/us.amazon.nova-lite-v1:0"
            ),
            Some(base)
        );
        assert_eq!(t.model("amazon.titan-unknown"), None);
    }

    #[test]
    fn seed_readme_error_is_caught() {
        // 10M tokens at $0.00006 per 1K is $0.60, not $0.06 (the seed's table was off by 10×).
        let p = ModelPrice {
            input_per1k: d("0.00006"),
            output_per1k: d("0"),
            cache_read_per1k: None,
            cache_write_per1k: None,
        };
        let usage = Usage {
            input_tokens: 10_000_000,
            ..Usage::default()
        };
        assert_eq!(p.cost(usage), Some(d("0.6")));
    }

    #[test]
    fn lambda_invocation_cost() {
        let t = PriceTable::builtin();
        // 128 MB for 100 ms on arm64: 0.125 GB × 0.1 s × 0.0000133334 + 0.0000002
        assert_eq!(
            t.lambda_invocation(Arch::Arm64, 128, 100),
            d("0.000000166667500") + d("0.0000002")
        );
    }

    #[test]
    fn negative_prices_are_rejected() {
        let bad = BUILTIN.replace("\"0.000035\"", "\"-1\"");
        assert!(matches!(
            PriceTable::parse(&bad),
            Err(PricingError::Invalid(_))
        ));
    }

    #[test]
    fn unknown_model_means_unknown_total() {
        let c = CostBreakdown::new(None, Some(d("0.1")), None);
        assert_eq!(c.total_usd, None);
        let c = CostBreakdown::new(Some(d("0.1")), Some(d("0.2")), None);
        assert_eq!(c.total_usd, Some(d("0.3")));
    }
}
