//! Prompt caching: `cachePoint` blocks mark prefixes that are kept, per model, for a while.
//!
//! A cache point's prefix is every text block before it (system, then messages, in order). It
//! is *eligible* when it holds at least `cache_min_tokens` tokens; a smaller one caches nothing
//! and is no error (like Bedrock). For a request:
//! - `read` = tokens of the longest eligible prefix found in the cache (unexpired);
//! - `write` = tokens of the last eligible prefix minus `read` (0 if that prefix was read);
//! - every eligible prefix is then stored or refreshed: it expires `ttl` (5 min, or 1 h with
//!   `"ttl": "1h"`) after this request, so each hit resets the timer.
//!
//! With one cache point that is simply: first request writes the prefix, a repeat within the
//! TTL reads it. Keys are a hash of the model id and the exact prefix content.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use tokio::time::Instant;

use crate::request::CachePoint;

/// Cache tokens of one request (both 0 when no prefix was eligible).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheUsage {
    pub read: u64,
    pub write: u64,
}

/// The in-memory prompt cache of one offline model.
#[derive(Debug)]
pub struct PromptCache {
    min_tokens: u64,
    /// Key → expiry.
    entries: Mutex<HashMap<u64, Instant>>,
}

impl PromptCache {
    /// Most entries kept; when full, expired entries go first, then the one expiring soonest.
    pub const CAPACITY: usize = 4096;

    pub fn new(min_tokens: u64) -> Self {
        Self {
            min_tokens,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Looks up and updates the cache for a request's cache points; `None` when it has none
    /// (then the usage carries no cache fields).
    pub fn apply(&self, model_id: &str, points: &[CachePoint], now: Instant) -> Option<CacheUsage> {
        if points.is_empty() {
            return None;
        }
        let eligible: Vec<(u64, &CachePoint)> = points
            .iter()
            .filter(|p| p.prefix_tokens > 0 && p.prefix_tokens >= self.min_tokens)
            .map(|p| (key(model_id, p.prefix_hash), p))
            .collect();
        let Some(&(_, last)) = eligible.last() else {
            return Some(CacheUsage::default());
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let read = eligible
            .iter()
            .filter(|(k, _)| entries.get(k).is_some_and(|exp| *exp > now))
            .map(|(_, p)| p.prefix_tokens)
            .max()
            .unwrap_or(0);
        for (k, p) in &eligible {
            if !entries.contains_key(k) && entries.len() >= Self::CAPACITY {
                entries.retain(|_, exp| *exp > now);
                if entries.len() >= Self::CAPACITY
                    && let Some(oldest) =
                        entries.iter().min_by_key(|(_, exp)| **exp).map(|(k, _)| *k)
                {
                    entries.remove(&oldest);
                }
            }
            entries.insert(*k, now + p.ttl);
        }
        Some(CacheUsage {
            read,
            write: last.prefix_tokens.saturating_sub(read),
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

fn key(model_id: &str, prefix_hash: u64) -> u64 {
    let mut h = DefaultHasher::new();
    (model_id, prefix_hash).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::CACHE_TTL_DEFAULT;
    use std::time::Duration;

    fn point(hash: u64, tokens: u64) -> CachePoint {
        CachePoint {
            prefix_hash: hash,
            prefix_tokens: tokens,
            ttl: CACHE_TTL_DEFAULT,
        }
    }

    fn usage(read: u64, write: u64) -> Option<CacheUsage> {
        Some(CacheUsage { read, write })
    }

    #[test]
    fn writes_then_reads_and_each_hit_resets_the_ttl() {
        let cache = PromptCache::new(20);
        let t0 = Instant::now();
        let p = [point(1, 30)];
        assert_eq!(cache.apply("m", &[], t0), None);
        assert_eq!(cache.apply("m", &p, t0), usage(0, 30));
        assert_eq!(
            cache.apply("m", &p, t0 + Duration::from_secs(1)),
            usage(30, 0)
        );
        // Another model has its own cache.
        assert_eq!(cache.apply("other", &p, t0), usage(0, 30));
        // A hit at 4 min keeps it alive past 5 min after the write...
        let t4 = t0 + Duration::from_secs(240);
        assert_eq!(cache.apply("m", &p, t4), usage(30, 0));
        assert_eq!(
            cache.apply("m", &p, t4 + Duration::from_secs(299)),
            usage(30, 0)
        );
        // ...but 5 min without a hit expires it.
        let later = t4 + Duration::from_secs(299 + 300);
        assert_eq!(cache.apply("m", &p, later), usage(0, 30));
    }

    #[test]
    fn below_the_minimum_nothing_is_cached() {
        let cache = PromptCache::new(20);
        let t0 = Instant::now();
        let p = [point(1, 19)];
        assert_eq!(cache.apply("m", &p, t0), usage(0, 0));
        assert_eq!(cache.apply("m", &p, t0), usage(0, 0));
        assert_eq!(cache.len(), 0);
        // A prefix of 0 tokens caches nothing even with no minimum.
        assert_eq!(
            PromptCache::new(0).apply("m", &[point(1, 0)], t0),
            usage(0, 0)
        );
    }

    #[test]
    fn several_cache_points_read_the_longest_cached_prefix() {
        let cache = PromptCache::new(20);
        let t0 = Instant::now();
        // Turn 1: system (25 tokens) and conversation (40) checkpoints: writes all 40.
        assert_eq!(
            cache.apply("m", &[point(1, 25), point(2, 40)], t0),
            usage(0, 40)
        );
        // Turn 2: same system, the conversation grew: reads 40, writes 60 - 40.
        assert_eq!(
            cache.apply("m", &[point(1, 25), point(2, 40), point(3, 60)], t0),
            usage(40, 20)
        );
        // Another conversation with the same system prompt: reads the system prefix.
        assert_eq!(
            cache.apply("m", &[point(1, 25), point(9, 50)], t0),
            usage(25, 25)
        );
        // A small first checkpoint is skipped, the later one still counts.
        assert_eq!(
            cache.apply("m", &[point(7, 5), point(8, 30)], t0),
            usage(0, 30)
        );
    }

    #[test]
    fn is_bounded() {
        let cache = PromptCache::new(1);
        let t0 = Instant::now();
        for i in 0..(PromptCache::CAPACITY as u64 + 10) {
            cache.apply("m", &[point(i, 5)], t0 + Duration::from_millis(i));
        }
        assert_eq!(cache.len(), PromptCache::CAPACITY);
        // The most recent entry survived; the first ones were evicted.
        let last = PromptCache::CAPACITY as u64 + 9;
        assert_eq!(
            cache.apply("m", &[point(last, 5)], t0 + Duration::from_secs(10)),
            usage(5, 0)
        );
        assert_eq!(
            cache.apply("m", &[point(0, 5)], t0 + Duration::from_secs(10)),
            usage(0, 5)
        );
    }
}
