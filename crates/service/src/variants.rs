//! Model variants for A/B tests: named models with weights, assigned per conversation.
//!
//! `CHATBOT_MODEL_VARIANTS=micro=us.amazon.nova-micro-v1:0:90,lite=us.amazon.nova-lite-v1:0:10`
//! sends ~90 % of conversations to Nova Micro and ~10 % to Nova Lite. A conversation keeps its
//! variant (a stable hash of its `conversationId` picks it), so one person's chat never switches
//! model mid-way; requests without a conversation id are assigned at random. Unset, there is one
//! variant, `default`, serving `CHATBOT_MODEL_ID` — the single-model behaviour.

use crate::error::ApiError;
use crate::pricing::PriceTable;
use crate::secrets::HashKey;

pub const DEFAULT_VARIANT: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub model_id: String,
    pub weight: u32,
}

#[derive(Debug, Clone)]
pub struct Variants {
    list: Vec<Variant>,
    total_weight: u32,
    fallback: Option<String>,
    allow_choice: bool,
    /// Keys the assignment hash (`CHATBOT_HASH_KEY`), so a client cannot compute which
    /// conversation ids land on which variant. Unset: the pinned unkeyed hash ([`bucket`]).
    key: Option<HashKey>,
}

impl Variants {
    /// The single-model set: `default` → `model_id`.
    pub fn single(model_id: &str) -> Self {
        Variants {
            list: vec![Variant {
                name: DEFAULT_VARIANT.into(),
                model_id: model_id.into(),
                weight: 1,
            }],
            total_weight: 1,
            fallback: None,
            allow_choice: false,
            key: None,
        }
    }

    /// Parse and check the configuration; every error says what to change.
    pub fn from_config(
        spec: Option<&str>,
        default_model: &str,
        fallback: Option<&str>,
        allow_choice: bool,
        key: Option<HashKey>,
        prices: &PriceTable,
    ) -> Result<Self, String> {
        let mut set = match spec.map(str::trim).filter(|s| !s.is_empty()) {
            None => Self::single(default_model),
            Some(spec) => {
                let list = parse(spec)?;
                for v in &list {
                    if prices.model(&v.model_id).is_none() {
                        return Err(format!(
                            "CHATBOT_MODEL_VARIANTS: no price for {} (variant {}): add it with CHATBOT_PRICING_FILE so its cost is known",
                            v.model_id, v.name
                        ));
                    }
                }
                let total_weight = list.iter().map(|v| v.weight).sum();
                Variants {
                    list,
                    total_weight,
                    fallback: None,
                    allow_choice: false,
                    key: None,
                }
            }
        };
        if let Some(f) = fallback.map(str::trim).filter(|f| !f.is_empty()) {
            if prices.model(f).is_none() {
                return Err(format!(
                    "CHATBOT_FALLBACK_MODEL_ID: no price for {f}: add it with CHATBOT_PRICING_FILE"
                ));
            }
            set.fallback = Some(f.to_owned());
        }
        set.allow_choice = allow_choice;
        set.key = key;
        Ok(set)
    }

    pub fn list(&self) -> &[Variant] {
        &self.list
    }

    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Every model this deployment may call: the variants' and the fallback.
    pub fn model_ids(&self) -> impl Iterator<Item = &str> {
        self.list
            .iter()
            .map(|v| v.model_id.as_str())
            .chain(self.fallback.as_deref())
    }

    /// The variant for a request: the one it asked for (only if operators allow choosing), else
    /// the conversation's sticky one, else a random one.
    pub fn assign(
        &self,
        conversation_id: Option<&str>,
        requested: Option<&str>,
    ) -> Result<&Variant, ApiError> {
        if let Some(name) = requested {
            if !self.allow_choice {
                return Err(ApiError::InvalidRequest(
                    "variant: choosing a variant is not enabled on this deployment".into(),
                ));
            }
            return self.list.iter().find(|v| v.name == name).ok_or_else(|| {
                let names: Vec<&str> = self.list.iter().map(|v| v.name.as_str()).collect();
                ApiError::InvalidRequest(format!(
                    "variant: unknown variant {name:?}; one of {names:?}"
                ))
            });
        }
        let point = match (conversation_id, &self.key) {
            (Some(id), Some(key)) => {
                (key.number("variant", id.as_bytes()) % u64::from(self.total_weight)) as u32
            }
            (Some(id), None) => bucket(id, self.total_weight),
            (None, _) => rand::random_range(0..self.total_weight),
        };
        Ok(self.pick(point))
    }

    fn pick(&self, point: u32) -> &Variant {
        let mut acc = 0;
        for v in &self.list {
            acc += v.weight;
            if point < acc {
                return v;
            }
        }
        self.list.last().expect("at least one variant")
    }
}

/// `name=modelId:weight,…` — the weight follows the model id's last `:` (model ids contain `:`).
fn parse(spec: &str) -> Result<Vec<Variant>, String> {
    let mut list: Vec<Variant> = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let err = |why: &str| {
            format!("CHATBOT_MODEL_VARIANTS: {part:?}: {why} (expected name=modelId:weight)")
        };
        let (name, rest) = part.split_once('=').ok_or_else(|| err("no `=`"))?;
        let (model_id, weight) = rest.rsplit_once(':').ok_or_else(|| err("no `:weight`"))?;
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(err("the name must be 1-32 characters of A-Z a-z 0-9 _ -"));
        }
        if model_id.trim().is_empty() {
            return Err(err("empty model id"));
        }
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| err("the weight must be a whole number"))?;
        if weight == 0 || weight > 10_000 {
            return Err(err("the weight must be 1 to 10000"));
        }
        if list.iter().any(|v| v.name == name) {
            return Err(format!(
                "CHATBOT_MODEL_VARIANTS: duplicate variant name {name:?}"
            ));
        }
        list.push(Variant {
            name: name.to_owned(),
            model_id: model_id.trim().to_owned(),
            weight,
        });
    }
    Ok(list)
}

/// A stable point in `0..total` for a conversation id: FNV-1a, then a 64-bit finaliser so
/// similar ids spread evenly. Written out (a dozen lines) because it must never change between
/// releases or Rust versions — `std`'s hasher makes no such promise — or conversations would
/// switch variants on deploy.
pub fn bucket(id: &str, total: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % u64::from(total)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> PriceTable {
        PriceTable::builtin()
    }

    const AB: &str = "micro=us.amazon.nova-micro-v1:0:90, lite=us.amazon.nova-lite-v1:0:10";

    #[test]
    fn weights_hold_over_ten_thousand_conversations() {
        let v = Variants::from_config(Some(AB), "x", None, false, None, &prices()).unwrap();
        let n = 10_000;
        let lite = (0..n)
            .filter(|i| v.assign(Some(&format!("conv-{i}")), None).unwrap().name == "lite")
            .count();
        let share = lite as f64 / n as f64;
        assert!(
            (share - 0.10).abs() <= 0.02,
            "lite got {share:.3} of conversations"
        );
        // Uuid-shaped ids too.
        let lite = (0..n)
            .filter(|_| {
                v.assign(Some(&uuid::Uuid::new_v4().to_string()), None)
                    .unwrap()
                    .name
                    == "lite"
            })
            .count();
        assert!((lite as f64 / n as f64 - 0.10).abs() <= 0.02);
    }

    #[test]
    fn a_conversation_keeps_its_variant() {
        let v = Variants::from_config(Some(AB), "x", None, false, None, &prices()).unwrap();
        for i in 0..200 {
            let id = format!("c{i}");
            let first = v.assign(Some(&id), None).unwrap().name.clone();
            for _ in 0..5 {
                assert_eq!(v.assign(Some(&id), None).unwrap().name, first);
            }
        }
        // The hash is part of the contract: these values must never change, or live
        // conversations would switch variants on deploy.
        assert_eq!(
            [
                bucket("conv-1", 100),
                bucket("a", 100),
                bucket("conversation-42", 1000)
            ],
            [23, 15, 61]
        );
    }

    #[test]
    fn requests_without_a_conversation_are_spread_at_random() {
        let v = Variants::from_config(Some(AB), "x", None, false, None, &prices()).unwrap();
        let lite = (0..10_000)
            .filter(|_| v.assign(None, None).unwrap().name == "lite")
            .count();
        assert!((lite as f64 / 10_000.0 - 0.10).abs() <= 0.02, "{lite}");
    }

    #[test]
    fn configuration_errors_are_clear() {
        let err = |spec: &str| {
            Variants::from_config(Some(spec), "x", None, false, None, &prices()).unwrap_err()
        };
        assert!(err("a=us.amazon.nova-micro-v1:0:0").contains("1 to 10000"));
        assert!(err("a=us.amazon.nova-micro-v1:0:x").contains("whole number"));
        assert!(err("a=us.amazon.nova-micro-v1").contains("no `:weight`"));
        assert!(err("a").contains("no `=`"));
        assert!(
            err("a=us.amazon.nova-micro-v1:0:5,a=us.amazon.nova-lite-v1:0:5")
                .contains("duplicate variant name \"a\"")
        );
        assert!(err("a=acme.unknown-v1:0:5").contains("no price for acme.unknown-v1:0"));
        assert!(err("bad name=us.amazon.nova-micro-v1:0:5").contains("name must be"));
        let e = Variants::from_config(None, "x", Some("acme.nope"), false, None, &prices())
            .unwrap_err();
        assert!(e.contains("CHATBOT_FALLBACK_MODEL_ID"));
    }

    #[test]
    fn unset_means_one_default_variant() {
        let v = Variants::from_config(
            None,
            "us.amazon.nova-micro-v1:0",
            None,
            false,
            None,
            &prices(),
        )
        .unwrap();
        assert_eq!(v.list().len(), 1);
        let a = v.assign(Some("anything"), None).unwrap();
        assert_eq!(
            (a.name.as_str(), a.model_id.as_str()),
            (DEFAULT_VARIANT, "us.amazon.nova-micro-v1:0")
        );
    }

    #[test]
    fn choosing_a_variant_needs_an_operator() {
        let v = Variants::from_config(Some(AB), "x", None, false, None, &prices()).unwrap();
        assert!(
            matches!(v.assign(None, Some("lite")), Err(ApiError::InvalidRequest(m)) if m.contains("not enabled"))
        );
        let v = Variants::from_config(Some(AB), "x", None, true, None, &prices()).unwrap();
        assert_eq!(v.assign(Some("c"), Some("lite")).unwrap().name, "lite");
        assert!(v.assign(None, Some("huge")).is_err());
    }
}
