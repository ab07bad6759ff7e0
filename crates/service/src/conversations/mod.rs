//! Conversation memory on the server: a client sends only its new `message`; the service keeps
//! the history in the state store (DynamoDB when deployed, in-process locally).
//!
//! - **Ids** are issued by the server: 128 random bits (32 hex characters), derived from nothing
//!   the client sent. An id is what lets a client read, continue and delete its conversation.
//! - **A turn** takes the conversation (a lease until the request's deadline: a second turn at
//!   the same time gets `409 conversation_busy` at once, before any model call), loads its
//!   history, and — only when the reply completed — stores the user message and the reply
//!   together with one versioned, conditional write. A failed or aborted turn stores nothing
//!   and gives the conversation back: no half turn, no lost or duplicated turn.
//! - **Expiry**: `CHATBOT_MEMORY_TTL_HOURS` after the last stored turn (DynamoDB TTL, plus a
//!   read-side check because TTL deletion is lazy). A turn item's own TTL is set past any expiry
//!   the conversation can reach (`max turns × TTL`), so history never expires under an active
//!   conversation.
//! - **Size**: one item per turn (never a growing item); at most `CHATBOT_MEMORY_MAX_TURNS`
//!   turns and `CHATBOT_MEMORY_MAX_BYTES` of text, checked before a turn starts
//!   (`409 conversation_full`).

pub mod history;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ApiError;
use crate::store::{
    Append, AppendError, BeginError, ConversationHead, Store, StoreError, StoredTurn,
};
use crate::telemetry::context::RequestCtx;

/// A new conversation id: 128 random bits, hex.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The settings and the store behind conversation memory.
#[derive(Clone)]
pub struct Conversations {
    store: Store,
    enabled: bool,
    ttl: Duration,
    max_turns: u64,
    max_bytes: u64,
}

/// A stored conversation, for `GET /api/conversations/{id}`.
pub struct Transcript {
    pub head: ConversationHead,
    pub turns: Vec<StoredTurn>,
}

impl Conversations {
    pub fn new(store: Store, enabled: bool, ttl: Duration, max_turns: u64, max_bytes: u64) -> Self {
        Conversations {
            store,
            enabled,
            ttl,
            max_turns,
            max_bytes,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn max_turns(&self) -> u64 {
        self.max_turns
    }

    fn unavailable(ctx: &RequestCtx, e: StoreError) -> ApiError {
        tracing::warn!(storeError = %e, "conversation store failed");
        ctx.record().store_errors += 1;
        ApiError::ConversationUnavailable
    }

    /// Open a turn: a new conversation (`id` = `None`), or the stored one, taken for this turn
    /// until `hold` from now at the latest, with its history.
    pub async fn open(
        &self,
        ctx: &RequestCtx,
        id: Option<&str>,
        hold: Duration,
    ) -> Result<OpenTurn, ApiError> {
        let Some(id) = id else {
            return Ok(OpenTurn::new(self, new_id(), None, Vec::new()));
        };
        let lease = new_id();
        let now = now();
        let busy_until = now + hold.as_secs().max(1) as i64;
        let head = match self.store.begin_turn(id, &lease, busy_until, now).await {
            Ok(head) => head,
            Err(BeginError::NotFound) => return Err(ApiError::ConversationNotFound),
            Err(BeginError::Busy) => return Err(ApiError::ConversationBusy),
            Err(BeginError::Store(e)) => return Err(Self::unavailable(ctx, e)),
        };
        // From here the conversation is ours: give it back if the turn cannot go on.
        let mut turn = OpenTurn::new(self, id.to_owned(), Some((head, lease)), Vec::new());
        if head.version >= self.max_turns || head.bytes >= self.max_bytes {
            return Err(ApiError::ConversationFull {
                turns: self.max_turns,
            });
        }
        turn.history = self
            .store
            .turns(id)
            .await
            .map_err(|e| Self::unavailable(ctx, e))?;
        Ok(turn)
    }

    /// The whole stored conversation.
    pub async fn get(&self, ctx: &RequestCtx, id: &str) -> Result<Transcript, ApiError> {
        match self.store.conversation(id, now()).await {
            Ok(Some((head, turns))) => Ok(Transcript { head, turns }),
            Ok(None) => Err(ApiError::ConversationNotFound),
            Err(e) => Err(Self::unavailable(ctx, e)),
        }
    }

    /// Forget a conversation now.
    pub async fn delete(&self, ctx: &RequestCtx, id: &str) -> Result<(), ApiError> {
        match self.store.delete_conversation(id, now()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError::ConversationNotFound),
            Err(e) => Err(Self::unavailable(ctx, e)),
        }
    }
}

/// A turn in progress on a conversation. [`OpenTurn::save`] stores it; dropped unsaved (the
/// model failed, the client left), it gives the conversation back and stores nothing.
pub struct OpenTurn {
    store: Store,
    ttl: Duration,
    max_turns: u64,
    id: String,
    /// The head the turn began from and its lease; `None` for a new conversation.
    began: Option<(ConversationHead, String)>,
    history: Vec<StoredTurn>,
    done: bool,
}

impl OpenTurn {
    fn new(
        c: &Conversations,
        id: String,
        began: Option<(ConversationHead, String)>,
        history: Vec<StoredTurn>,
    ) -> Self {
        OpenTurn {
            store: c.store.clone(),
            ttl: c.ttl,
            max_turns: c.max_turns,
            id,
            began,
            history,
            done: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stored turns, oldest first.
    pub fn history(&self) -> &[StoredTurn] {
        &self.history
    }

    /// Store the user's message and the reply as the next turn.
    pub async fn save(
        mut self,
        ctx: &RequestCtx,
        user: &str,
        assistant: &str,
    ) -> Result<(), ApiError> {
        self.done = true;
        let now = now();
        let ttl = self.ttl.as_secs().max(1) as i64;
        let turn = StoredTurn {
            user: user.to_owned(),
            assistant: assistant.to_owned(),
            at: now,
        };
        let append = Append {
            id: &self.id,
            after: self
                .began
                .as_ref()
                .map(|(head, lease)| (*head, lease.as_str())),
            turn: &turn,
            expires_at: now + ttl,
            // Past any expiry the conversation can reach: each turn moves it by at most `ttl`.
            turn_expires_at: now + ttl * (self.max_turns as i64 + 1),
        };
        match self.store.append_turn(&append).await {
            Ok(()) => Ok(()),
            // Our lease ran out and another turn moved the conversation on.
            Err(AppendError::Conflict) => Err(ApiError::ConversationBusy),
            Err(AppendError::Store(e)) => Err(Conversations::unavailable(ctx, e)),
        }
    }
}

impl Drop for OpenTurn {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some((_, lease)) = self.began.take() else {
            return;
        };
        let (store, id) = (self.store.clone(), self.id.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.end_turn(&id, &lease).await {
                    // The lease runs out by itself at the request's deadline.
                    tracing::warn!(storeError = %e, "could not release a conversation");
                }
            });
        }
    }
}
