//! Fault injection: per-request `#fault=<kind>[:<N>]` directives and random faults.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::errors::ErrorType;

const DIRECTIVE_PREFIX: &str = "#fault=";

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer this error before any body is sent.
    Error(ErrorType),
    /// Never answer.
    Hang,
    /// Trickle tokens at 1 per second.
    Slow,
    /// Stream: a few deltas, then an exception frame of this type. Buffered: that error.
    Midstream(ErrorType),
    /// Drop the connection in the middle of the body.
    Reset,
    /// Converse: 200 with truncated JSON. Stream: a frame with a bad CRC.
    Malformed,
    /// Stream: a few deltas, then silence with the connection open. Converse: never answers.
    Stall,
}

/// Directive names and what they do.
pub const KINDS: &[(&str, FaultKind)] = &[
    ("throttle", FaultKind::Error(ErrorType::Throttling)),
    ("not-ready", FaultKind::Error(ErrorType::ModelNotReady)),
    ("quota", FaultKind::Error(ErrorType::ServiceQuotaExceeded)),
    ("validation", FaultKind::Error(ErrorType::Validation)),
    ("access-denied", FaultKind::Error(ErrorType::AccessDenied)),
    ("not-found", FaultKind::Error(ErrorType::ResourceNotFound)),
    ("model-timeout", FaultKind::Error(ErrorType::ModelTimeout)),
    ("model-error", FaultKind::Error(ErrorType::ModelError)),
    ("error", FaultKind::Error(ErrorType::InternalServer)),
    (
        "unavailable",
        FaultKind::Error(ErrorType::ServiceUnavailable),
    ),
    ("hang", FaultKind::Hang),
    ("slow", FaultKind::Slow),
    ("midstream", FaultKind::Midstream(ErrorType::InternalServer)),
    (
        "midstream-throttle",
        FaultKind::Midstream(ErrorType::Throttling),
    ),
    (
        "midstream-unavailable",
        FaultKind::Midstream(ErrorType::ServiceUnavailable),
    ),
    (
        "midstream-model-error",
        FaultKind::Midstream(ErrorType::ModelStreamError),
    ),
    (
        "midstream-validation",
        FaultKind::Midstream(ErrorType::Validation),
    ),
    ("reset", FaultKind::Reset),
    ("malformed", FaultKind::Malformed),
    ("stall", FaultKind::Stall),
];

/// A parsed `#fault=<kind>[:<N>][@<model>]` directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Directive<'a> {
    pub name: &'static str,
    pub kind: FaultKind,
    /// `:N`: only the first N attempts of the identical request fail. `None`: every attempt.
    pub fail_attempts: Option<u32>,
    /// `@text`: only requests whose model id contains `text` (to fail one model of several,
    /// e.g. the primary but not the fallback).
    pub only_model: Option<&'a str>,
    /// `~MS`: an error kind is answered only after MS milliseconds (a model that is slow to
    /// throttle, to test deadlines across retries and the fallback).
    pub delay: Option<std::time::Duration>,
}

impl Directive<'_> {
    pub fn applies_to(&self, model_id: &str) -> bool {
        self.only_model.is_none_or(|m| model_id.contains(m))
    }
}

/// Whether a word of a user message is a fault directive (kept out of the echoed reply).
pub fn is_directive_word(word: &str) -> bool {
    word.starts_with(DIRECTIVE_PREFIX)
}

/// The first directive in `text`, if any. An unknown kind is an error, so typos are noticed.
pub fn parse_directive(text: &str) -> Result<Option<Directive<'_>>, String> {
    let Some(word) = text.split_whitespace().find(|w| is_directive_word(w)) else {
        return Ok(None);
    };
    // Allow a directive at the end of a sentence: "… please #fault=throttle."
    let spec =
        word[DIRECTIVE_PREFIX.len()..].trim_end_matches(['.', ',', ';', '!', '?', '"', '\'', ')']);
    let (spec, only_model) = match spec.split_once('@') {
        Some((s, m)) => (s, Some(m)),
        None => (spec, None),
    };
    let (spec, delay) = match spec.split_once('~') {
        Some((s, ms)) => {
            let ms = ms
                .parse::<u64>()
                .map_err(|_| format!("fault directive delay '~{ms}' is not whole milliseconds"))?;
            (s, Some(std::time::Duration::from_millis(ms)))
        }
        None => (spec, None),
    };
    let (kind_name, count) = match spec.split_once(':') {
        Some((k, n)) => (k, Some(n)),
        None => (spec, None),
    };
    let Some(&(name, kind)) = KINDS.iter().find(|(n, _)| *n == kind_name) else {
        let known: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "unknown offline fault directive '{kind_name}'; known kinds: {}",
            known.join(", ")
        ));
    };
    let fail_attempts = match count {
        None => None,
        Some(n) => Some(
            n.parse::<u32>()
                .map_err(|_| format!("fault directive count '{n}' is not a whole number"))?,
        ),
    };
    Ok(Some(Directive {
        name,
        kind,
        fail_attempts,
        only_model,
        delay,
    }))
}

/// The key of "this identical request": model id and exact body bytes.
pub fn request_key(model_id: &str, body: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    model_id.hash(&mut h);
    body.hash(&mut h);
    h.finish()
}

/// Attempts seen per request key, for `:N` directives. Bounded: the oldest key is forgotten
/// once [`AttemptCounter::CAPACITY`] keys are tracked.
#[derive(Debug, Default)]
pub struct AttemptCounter {
    inner: Mutex<Attempts>,
}

#[derive(Debug, Default)]
struct Attempts {
    counts: HashMap<u64, u32>,
    order: VecDeque<u64>,
}

impl AttemptCounter {
    pub const CAPACITY: usize = 4096;

    /// Records one more attempt of `key` and returns its 1-based attempt number.
    pub fn next_attempt(&self, key: u64) -> u32 {
        let mut a = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = a.counts.get_mut(&key) {
            *n = n.saturating_add(1);
            return *n;
        }
        if a.order.len() >= Self::CAPACITY
            && let Some(old) = a.order.pop_front()
        {
            a.counts.remove(&old);
        }
        a.order.push_back(key);
        a.counts.insert(key, 1);
        1
    }
}

/// Random faults per attempt (`--offline-throttle-percent`, `--offline-error-percent`).
#[derive(Debug)]
pub struct RandomFaults {
    throttle_percent: f64,
    error_percent: f64,
    rng: Mutex<StdRng>,
}

impl RandomFaults {
    pub fn new(throttle_percent: f64, error_percent: f64, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self {
            throttle_percent,
            error_percent,
            rng: Mutex::new(rng),
        }
    }

    /// Draws the fault (if any) of one attempt.
    pub fn sample(&self) -> Option<ErrorType> {
        if self.throttle_percent <= 0.0 && self.error_percent <= 0.0 {
            return None; // the common case takes no lock
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let roll = rng.random::<f64>() * 100.0;
        if roll < self.throttle_percent {
            Some(ErrorType::Throttling)
        } else if roll < self.throttle_percent + self.error_percent {
            Some(if rng.random::<bool>() {
                ErrorType::InternalServer
            } else {
                ErrorType::ServiceUnavailable
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        assert_eq!(parse_directive("hello there"), Ok(None));
        let d = parse_directive("please #fault=throttle:2 now")
            .unwrap()
            .unwrap();
        assert_eq!(d.kind, FaultKind::Error(ErrorType::Throttling));
        assert_eq!(d.fail_attempts, Some(2));
        let d = parse_directive("#fault=midstream-throttle.")
            .unwrap()
            .unwrap();
        assert_eq!(d.kind, FaultKind::Midstream(ErrorType::Throttling));
        assert_eq!(d.fail_attempts, None);
        assert!(parse_directive("#fault=nope").is_err());
        assert!(parse_directive("#fault=throttle:x").is_err());
        let d = parse_directive("#fault=throttle:3@nova-micro")
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.fail_attempts, d.only_model),
            (Some(3), Some("nova-micro"))
        );
        assert!(d.applies_to("us.amazon.nova-micro-v1:0"));
        let d = parse_directive("#fault=throttle:2~700@micro")
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.fail_attempts, d.delay, d.only_model),
            (
                Some(2),
                Some(std::time::Duration::from_millis(700)),
                Some("micro")
            )
        );
        assert!(parse_directive("#fault=throttle~soon").is_err());
        assert!(!d.applies_to("us.amazon.nova-lite-v1:0"));
        assert!(
            parse_directive("#fault=error")
                .unwrap()
                .unwrap()
                .applies_to("anything")
        );
        for (name, kind) in KINDS {
            let text = format!("x #fault={name}");
            let d = parse_directive(&text).unwrap().unwrap();
            assert_eq!((d.name, d.kind), (*name, *kind));
        }
    }

    #[test]
    fn attempt_counter_counts_per_key_and_is_bounded() {
        let c = AttemptCounter::default();
        let k = request_key("m", b"body");
        assert_ne!(k, request_key("m2", b"body"));
        assert_eq!(c.next_attempt(k), 1);
        assert_eq!(c.next_attempt(k), 2);
        for i in 0..AttemptCounter::CAPACITY as u64 {
            c.next_attempt(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1);
        }
        // `k` was the oldest key and has been forgotten.
        assert_eq!(c.next_attempt(k), 1);
        assert!(c.inner.lock().unwrap().counts.len() <= AttemptCounter::CAPACITY);
    }

    #[test]
    fn random_faults_follow_percentages_and_seed() {
        assert_eq!(RandomFaults::new(0.0, 0.0, Some(1)).sample(), None);
        let all = RandomFaults::new(100.0, 0.0, None);
        assert!((0..50).all(|_| all.sample() == Some(ErrorType::Throttling)));

        let draw = |seed| {
            let r = RandomFaults::new(20.0, 30.0, Some(seed));
            (0..200).map(|_| r.sample()).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        let throttled = a
            .iter()
            .filter(|f| **f == Some(ErrorType::Throttling))
            .count();
        let errors = a
            .iter()
            .filter(|f| {
                matches!(
                    f,
                    Some(ErrorType::InternalServer | ErrorType::ServiceUnavailable)
                )
            })
            .count();
        assert!((20..=60).contains(&throttled), "{throttled}");
        assert!((35..=85).contains(&errors), "{errors}");
    }
}
