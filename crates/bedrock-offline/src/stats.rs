//! Counters of a running offline model, read by tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of an offline model (cheap to clone; all clones share the same counters).
#[derive(Clone, Debug, Default)]
pub struct OfflineStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    active_streams: AtomicU64,
    cancelled_streams: AtomicU64,
    completed_streams: AtomicU64,
    cache_writes: AtomicU64,
    cache_reads: AtomicU64,
    guardrail_input_blocks: AtomicU64,
    guardrail_output_blocks: AtomicU64,
}

impl OfflineStats {
    /// Converse / ConverseStream requests received (every attempt, faulted or not).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// ConverseStream bodies currently being sent.
    pub fn active_streams(&self) -> u64 {
        self.inner.active_streams.load(Ordering::SeqCst)
    }

    /// Streams dropped before they were finished: the client went away.
    pub fn cancelled_streams(&self) -> u64 {
        self.inner.cancelled_streams.load(Ordering::SeqCst)
    }

    /// Streams that sent everything they planned to (including injected in-stream faults).
    pub fn completed_streams(&self) -> u64 {
        self.inner.completed_streams.load(Ordering::SeqCst)
    }

    /// Requests that wrote a prompt prefix to the cache (`cacheWriteInputTokens` > 0).
    pub fn cache_writes(&self) -> u64 {
        self.inner.cache_writes.load(Ordering::SeqCst)
    }

    /// Requests that read a prompt prefix from the cache (`cacheReadInputTokens` > 0).
    pub fn cache_reads(&self) -> u64 {
        self.inner.cache_reads.load(Ordering::SeqCst)
    }

    /// Requests whose input the simulated guardrail blocked (the model was not invoked).
    pub fn guardrail_input_blocks(&self) -> u64 {
        self.inner.guardrail_input_blocks.load(Ordering::SeqCst)
    }

    /// Requests whose output the simulated guardrail blocked.
    pub fn guardrail_output_blocks(&self) -> u64 {
        self.inner.guardrail_output_blocks.load(Ordering::SeqCst)
    }

    pub(crate) fn count_request(&self) {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count_cache(&self, read: bool, write: bool) {
        if read {
            self.inner.cache_reads.fetch_add(1, Ordering::SeqCst);
        }
        if write {
            self.inner.cache_writes.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn count_guardrail_block(&self, input: bool) {
        let c = if input {
            &self.inner.guardrail_input_blocks
        } else {
            &self.inner.guardrail_output_blocks
        };
        c.fetch_add(1, Ordering::SeqCst);
    }
}

/// Held by a stream body; counts the stream as active until dropped. Dropping it without
/// [`StreamGuard::finish`] means hyper dropped the body early, i.e. the client disconnected.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    stats: OfflineStats,
    finished: bool,
}

impl StreamGuard {
    pub(crate) fn new(stats: OfflineStats) -> Self {
        stats.inner.active_streams.fetch_add(1, Ordering::SeqCst);
        Self {
            stats,
            finished: false,
        }
    }

    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let c = &self.stats.inner;
        // Outcome first, gauge last: whoever sees the gauge at 0 also sees the outcome.
        if self.finished {
            c.completed_streams.fetch_add(1, Ordering::SeqCst);
        } else {
            c.cancelled_streams.fetch_add(1, Ordering::SeqCst);
        }
        c.active_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_cancelled_and_completed() {
        let stats = OfflineStats::default();
        let a = StreamGuard::new(stats.clone());
        let mut b = StreamGuard::new(stats.clone());
        assert_eq!(stats.active_streams(), 2);
        b.finish();
        drop(b);
        assert_eq!(stats.active_streams(), 1);
        assert_eq!(stats.completed_streams(), 1);
        assert_eq!(stats.cancelled_streams(), 0);
        drop(a);
        assert_eq!(stats.active_streams(), 0);
        assert_eq!(stats.cancelled_streams(), 1);
    }
}
