//! The most a request can cost, known before the model is called: what a budget reserves.
//!
//! - **Input tokens**: at most one per UTF-8 byte of the system prompt and the messages (a
//!   byte-level BPE tokenizer never makes more tokens than bytes; the offline model counts
//!   words, fewer still), plus [`TOKENS_PER_MESSAGE`] for each message's role and framing.
//! - **Output tokens**: `maxTokens`.
//! - **Prices**: the dearest input (or cache-write) and the dearest output price among the
//!   models the request may reach (its variant's and the fallback), at the standard tier (a
//!   configured tier with a price of its own is reserved at that price, see `api::spend`).
//! - **Guardrail** (when one is configured): every text policy with a price assessing, on each
//!   model the request may reach, the input bytes and [`BYTES_PER_OUTPUT_TOKEN`] bytes per output
//!   token, in units of 1,000 characters (a character is at least a byte).
//! - **Lambda compute**: the function's memory for the time left until the invocation's
//!   deadline; **API Gateway**: its per-request price when the request came through it.
//!
//! Every term is an upper bound, so the actual cost never exceeds the sum.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::model::Usage;
use crate::pricing::{Arch, ModelPrice, PriceTable};
use crate::validation::ChatRequest;

/// Role markers and message framing a model adds per message (Nova's and Claude's chat formats
/// use a handful; 16 leaves room).
pub const TOKENS_PER_MESSAGE: u64 = 16;

/// Bytes of reply text a token can stand for, at most (long tokens of byte-level vocabularies
/// are well under this).
pub const BYTES_PER_OUTPUT_TOKEN: u64 = 16;

/// The reservation for one request.
pub struct WorstCase<'a> {
    pub prices: &'a PriceTable,
    /// Every model id the request may reach.
    pub models: &'a [&'a str],
    pub system_prompt: &'a str,
    pub max_tokens: i32,
    /// Lambda memory (MB) and the longest the invocation can still run, when in Lambda.
    pub lambda: Option<(u32, Duration)>,
    pub via_api_gateway: bool,
    /// A guardrail assesses every model call.
    pub guardrail: bool,
}

impl WorstCase<'_> {
    pub fn input_tokens(&self, req: &ChatRequest) -> u64 {
        let bytes: usize =
            self.system_prompt.len() + req.messages.iter().map(|m| m.content.len()).sum::<usize>();
        bytes as u64 + TOKENS_PER_MESSAGE * (req.messages.len() as u64 + 1)
    }

    /// `None` when a reachable model has no price (start-up refuses such a configuration when
    /// budgets are on).
    pub fn cost(&self, req: &ChatRequest) -> Option<Decimal> {
        // An input token costs at most the dearer of the input and cache-write prices (with
        // prompt caching on, some input may be written to the cache; a read is cheaper).
        let mut dearest = ModelPrice {
            input_per1k: Decimal::ZERO,
            output_per1k: Decimal::ZERO,
            cache_read_per1k: None,
            cache_write_per1k: None,
        };
        for id in self.models {
            let p = self.prices.model(id)?;
            let input = p.input_per1k.max(p.cache_write_per1k.unwrap_or_default());
            dearest.input_per1k = dearest.input_per1k.max(input);
            dearest.output_per1k = dearest.output_per1k.max(p.output_per1k);
        }
        let usage = Usage {
            input_tokens: self.input_tokens(req),
            output_tokens: self.max_tokens.max(0) as u64,
            ..Usage::default()
        };
        let compute = self.lambda.map_or(Decimal::ZERO, |(mb, left)| {
            let ms = left.as_micros().div_ceil(1000) as u64;
            self.prices.lambda_invocation(Arch::current(), mb, ms)
        });
        let api = if self.via_api_gateway {
            self.prices.http_api_per_request
        } else {
            Decimal::ZERO
        };
        let guardrail = match self.guardrail {
            true => self.guardrail_cost(req)?,
            false => Decimal::ZERO,
        };
        Some(dearest.cost(usage)? + guardrail + compute + api)
    }

    /// `None` without guardrail prices (start-up refuses that with budgets on).
    fn guardrail_cost(&self, req: &ChatRequest) -> Option<Decimal> {
        let prices = self.prices.guardrails.as_ref()?;
        let input_bytes =
            self.system_prompt.len() + req.messages.iter().map(|m| m.content.len()).sum::<usize>();
        let output_bytes = self.max_tokens.max(0) as u64 * BYTES_PER_OUTPUT_TOKEN;
        let units_per_call = (input_bytes as u64).div_ceil(1000) + output_bytes.div_ceil(1000);
        let per_unit: Decimal = prices.per1k_units.values().copied().sum();
        let calls = Decimal::from(self.models.len());
        Some(Decimal::from(units_per_call) * per_unit * calls / Decimal::from(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Role;
    use crate::validation::Message;
    use std::str::FromStr;

    fn req(texts: &[&str]) -> ChatRequest {
        ChatRequest {
            messages: texts
                .iter()
                .enumerate()
                .map(|(i, t)| Message {
                    role: if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    },
                    content: t.to_string(),
                })
                .collect(),
            conversation_id: None,
            variant: None,
        }
    }

    #[test]
    fn the_dearest_reachable_model_and_every_byte_count() {
        let prices = PriceTable::builtin();
        let w = WorstCase {
            prices: &prices,
            models: &["us.amazon.nova-micro-v1:0", "us.amazon.nova-lite-v1:0"],
            system_prompt: "sys",
            max_tokens: 100,
            lambda: None,
            via_api_gateway: false,
            guardrail: false,
        };
        // "héllo" is 6 bytes: 3 + 6 bytes + 16 × 2 framing = 41 input tokens.
        let r = req(&["héllo"]);
        assert_eq!(w.input_tokens(&r), 41);
        // At Nova Lite's prices (the dearer): 41 × 0.00006 / 1000 + 100 × 0.00024 / 1000.
        assert_eq!(w.cost(&r), Some(Decimal::from_str("0.00002646").unwrap()));
        let unknown = WorstCase {
            models: &["acme.unknown"],
            ..w
        };
        assert_eq!(unknown.cost(&r), None);
    }

    #[test]
    fn compute_and_api_are_included_when_they_apply() {
        let prices = PriceTable::builtin();
        let base = WorstCase {
            prices: &prices,
            models: &["us.amazon.nova-micro-v1:0"],
            system_prompt: "",
            max_tokens: 1,
            lambda: None,
            via_api_gateway: false,
            guardrail: false,
        };
        let r = req(&["x"]);
        let model_only = base.cost(&r).unwrap();
        let lambda = WorstCase {
            lambda: Some((128, Duration::from_secs(10))),
            via_api_gateway: true,
            ..base
        };
        let expected = model_only
            + prices.lambda_invocation(Arch::current(), 128, 10_000)
            + prices.http_api_per_request;
        assert_eq!(lambda.cost(&r), Some(expected));
    }

    #[test]
    fn a_guardrail_adds_every_priced_policy_over_input_and_output() {
        let prices = PriceTable::builtin();
        let base = WorstCase {
            prices: &prices,
            models: &["us.amazon.nova-micro-v1:0"],
            system_prompt: "",
            max_tokens: 100,
            lambda: None,
            via_api_gateway: false,
            guardrail: false,
        };
        // 1,500 bytes in: 2 units; 100 tokens × 16 bytes out: 2 units; 4 units at
        // 0.15 + 0.15 + 0.10 + 0.10 (+ free) per 1,000.
        let r = req(&[&"x".repeat(1500)]);
        let guarded = WorstCase {
            guardrail: true,
            ..base
        };
        let extra = guarded.cost(&r).unwrap() - base.cost(&r).unwrap();
        assert_eq!(extra, Decimal::from_str("0.002").unwrap());
        let unpriced = PriceTable {
            guardrails: None,
            ..prices.clone()
        };
        let guarded = WorstCase {
            prices: &unpriced,
            ..guarded
        };
        assert_eq!(guarded.cost(&r), None);
    }
}
