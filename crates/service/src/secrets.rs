//! Deploy secrets and what they key: a [`Secret`] never shows in `Debug` output, and a
//! [`HashKey`] turns identifiers a client controls or must not learn (its address, the
//! conversation id it chose) into values it cannot predict.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A secret setting (`CHATBOT_ORIGIN_SECRETS`, `CHATBOT_HASH_KEY`): its value is used, never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The clap value parser: any non-empty value.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Secret(value.to_owned()))
    }

    /// Compare with `candidate` in time independent of where they differ (the value arrives in
    /// a request header; an early exit would tell an attacker how much of a guess was right).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let secret = self.0.as_bytes();
        if secret.len() != candidate.len() {
            return false;
        }
        secret
            .iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// HMAC-SHA256 under the deploy's hash key. Each use has its own label, so the same input
/// hashes differently for different purposes.
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

impl HashKey {
    pub fn new(key: &Secret) -> Self {
        HashKey(key.expose().as_bytes().to_vec())
    }

    /// A key for this process only (local runs without `CHATBOT_HASH_KEY`).
    pub fn random() -> Self {
        HashKey(rand::random::<[u8; 32]>().to_vec())
    }

    pub fn digest(&self, label: &str, input: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// The first 64 bits of [`digest`](Self::digest), for bucketing.
    pub fn number(&self, label: &str, input: &[u8]) -> u64 {
        let d = self.digest(label, input);
        u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole_values_and_never_print() {
        let s = Secret::parse(" abc123 ").unwrap();
        assert!(s.matches(b"abc123"));
        assert!(!s.matches(b"abc124"));
        assert!(!s.matches(b"abc12"));
        assert!(!s.matches(b""));
        assert_eq!(format!("{s:?}"), "Secret(…)");
        assert!(Secret::parse("  ").is_err());
    }

    #[test]
    fn digests_depend_on_key_and_label() {
        let a = HashKey::new(&Secret::parse("key-a").unwrap());
        let b = HashKey::new(&Secret::parse("key-b").unwrap());
        assert_eq!(a.digest("x", b"1"), a.digest("x", b"1"));
        assert_ne!(a.digest("x", b"1"), b.digest("x", b"1"));
        assert_ne!(a.digest("x", b"1"), a.digest("y", b"1"));
        // HMAC-SHA256 is the contract (ids and variants must not move between releases).
        assert_eq!(
            hex::encode(a.digest("client", b"192.0.2.1")),
            hex::encode({
                let mut m = Hmac::<Sha256>::new_from_slice(b"key-a").unwrap();
                m.update(b"client\x00192.0.2.1");
                <[u8; 32]>::from(m.finalize().into_bytes())
            })
        );
    }
}
