//! The in-process store: the local default, with the DynamoDB store's behaviour (conditional
//! reservations, all or nothing; expiry by the TTL attribute). One mutex: every operation is a
//! few map updates, far shorter than any request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Counter, Reserve, ReserveError, Settle};

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    counters: HashMap<String, (Counter, i64)>,
    /// Operations since the last sweep of expired items.
    since_sweep: u32,
}

/// Sweep expired items every this many writes (they are also ignored when read).
const SWEEP_EVERY: u32 = 1024;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Inner {
    fn live(&mut self, key: &str, now: i64) -> Counter {
        match self.counters.get(key) {
            Some((c, expires)) if *expires > now => *c,
            _ => Counter::default(),
        }
    }

    fn sweep(&mut self, now: i64) {
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            self.counters.retain(|_, (_, expires)| *expires > now);
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn reserve(&self, reservations: &[Reserve]) -> Result<(), ReserveError> {
        let now = now();
        let mut inner = self.lock();
        inner.sweep(now);
        // Check every condition first: all or nothing, as a DynamoDB transaction.
        for (i, r) in reservations.iter().enumerate() {
            if inner.live(&r.key, now).committed + r.amount > r.limit {
                return Err(ReserveError::Refused(i));
            }
        }
        for r in reservations {
            let mut c = inner.live(&r.key, now);
            c.committed += r.amount;
            c.reserved += r.amount;
            inner.counters.insert(r.key.clone(), (c, r.expires_at));
        }
        Ok(())
    }

    pub fn settle(&self, settlements: &[Settle]) {
        let now = now();
        let mut inner = self.lock();
        for s in settlements {
            let expires = inner.counters.get(&s.key).map(|(_, e)| *e);
            let (mut c, expires) = match expires {
                Some(e) if e > now => (inner.live(&s.key, now), e),
                // The counter expired (settled long after its day): nothing left to correct.
                _ => continue,
            };
            c.committed += s.actual - s.reserved;
            c.reserved -= s.reserved;
            c.spent += s.actual;
            inner.counters.insert(s.key.clone(), (c, expires));
        }
    }

    pub fn counter(&self, key: &str) -> Option<Counter> {
        let now = now();
        let inner = self.lock();
        match inner.counters.get(key) {
            Some((c, expires)) if *expires > now => Some(*c),
            _ => None,
        }
    }
}
