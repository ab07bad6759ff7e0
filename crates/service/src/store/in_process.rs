//! The in-process store: the local default, with the DynamoDB store's behaviour (conditional
//! reservations, all or nothing; leases and versioned appends for conversations; expiry by the
//! TTL attribute). One mutex: every operation is a few map updates, far shorter than any
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{
    Append, AppendError, BeginError, ConversationHead, Counter, Reserve, ReserveError, Settle,
    StoredTurn,
};

#[derive(Clone, Default)]
pub struct InProcessStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    counters: HashMap<String, (Counter, i64)>,
    conversations: HashMap<String, Conversation>,
    /// Operations since the last sweep of expired items.
    since_sweep: u32,
}

struct Conversation {
    head: ConversationHead,
    /// The turn in progress: its lease and until when it holds the conversation.
    lease: Option<(String, i64)>,
    turns: Vec<StoredTurn>,
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
            self.conversations.retain(|_, c| c.head.expires_at > now);
        }
    }
}

impl InProcessStore {
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

/// Conversations: the same conditions as the DynamoDB store's expressions.
impl InProcessStore {
    pub fn begin_turn(
        &self,
        id: &str,
        lease: &str,
        busy_until: i64,
        now: i64,
    ) -> Result<ConversationHead, BeginError> {
        let mut inner = self.lock();
        inner.sweep(now);
        let Some(c) = inner
            .conversations
            .get_mut(id)
            .filter(|c| c.head.expires_at > now)
        else {
            return Err(BeginError::NotFound);
        };
        if c.lease.as_ref().is_some_and(|(_, until)| *until >= now) {
            return Err(BeginError::Busy);
        }
        c.lease = Some((lease.to_owned(), busy_until));
        Ok(c.head)
    }

    pub fn turns(&self, id: &str) -> Vec<StoredTurn> {
        let inner = self.lock();
        inner
            .conversations
            .get(id)
            .map(|c| c.turns.clone())
            .unwrap_or_default()
    }

    pub fn append_turn(&self, a: &Append<'_>) -> Result<(), AppendError> {
        let mut inner = self.lock();
        match (a.after, inner.conversations.get_mut(a.id)) {
            (None, None) => {
                inner.conversations.insert(
                    a.id.to_owned(),
                    Conversation {
                        head: ConversationHead {
                            version: 1,
                            bytes: a.turn.bytes(),
                            updated_at: a.turn.at,
                            expires_at: a.expires_at,
                        },
                        lease: None,
                        turns: vec![a.turn.clone()],
                    },
                );
                Ok(())
            }
            (Some((head, lease)), Some(c))
                if c.head.version == head.version
                    && c.lease.as_ref().is_some_and(|(l, _)| l == lease) =>
            {
                c.head.version += 1;
                c.head.bytes += a.turn.bytes();
                c.head.updated_at = a.turn.at;
                c.head.expires_at = a.expires_at;
                c.lease = None;
                c.turns.push(a.turn.clone());
                Ok(())
            }
            _ => Err(AppendError::Conflict),
        }
    }

    pub fn end_turn(&self, id: &str, lease: &str) {
        let mut inner = self.lock();
        if let Some(c) = inner.conversations.get_mut(id)
            && c.lease.as_ref().is_some_and(|(l, _)| l == lease)
        {
            c.lease = None;
        }
    }

    pub fn conversation(&self, id: &str, now: i64) -> Option<(ConversationHead, Vec<StoredTurn>)> {
        let inner = self.lock();
        inner
            .conversations
            .get(id)
            .filter(|c| c.head.expires_at > now)
            .map(|c| (c.head, c.turns.clone()))
    }

    pub fn delete_conversation(&self, id: &str, now: i64) -> bool {
        let mut inner = self.lock();
        inner
            .conversations
            .remove(id)
            .is_some_and(|c| c.head.expires_at > now)
    }
}
