//! The state store: one DynamoDB table when deployed (`CHATBOT_STATE_TABLE`), an in-process
//! store locally, with one behaviour behind both. The tests run the same bodies against both
//! (the DynamoDB one through the real SDK against moto).
//!
//! What the service keeps there, by partition-key prefix:
//! - `budget#…` — a daily spend counter per budget scope (see [`crate::budget`]);
//! - `conv#<id>` — a conversation: its head (`SK = head`: version, size, expiry, the turn in
//!   progress) and one item per turn (`SK = turn#000001`, …), see [`crate::conversations`].
//!
//! The table's schema is declared here once ([`schema`]); `chatbot create-table` creates
//! exactly this, and the template test keeps `serverless.yml`'s `StateTable` equal to it.

pub mod dynamo;
pub mod in_process;

use rust_decimal::Decimal;

pub use dynamo::DynamoStore;
pub use in_process::InProcessStore;

/// The table's keys and TTL attribute. Both keys are strings; items of different kinds share
/// the table, told apart by their partition-key prefix.
pub mod schema {
    pub const PARTITION_KEY: &str = "PK";
    pub const SORT_KEY: &str = "SK";
    /// Epoch seconds after which DynamoDB may delete the item (lazily: readers check it too).
    pub const TTL_ATTRIBUTE: &str = "expiresAt";
}

/// Every DynamoDB action the service calls, for least-privilege IAM on the table (the template
/// test compares `serverless.yml` with this list). Transactions are authorised per item action.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
];

/// A store call that failed after its retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("state store {operation} failed ({kind}): {message}")]
pub struct StoreError {
    pub operation: &'static str,
    /// DynamoDB's error name, or the SDK's failure class (`TimeoutError`, `DispatchFailure`).
    pub kind: String,
    pub message: String,
}

/// Reserve `amount` on the counter `key` if what it holds plus `amount` stays within `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub key: String,
    pub amount: Decimal,
    pub limit: Decimal,
    /// When the counter may be deleted (epoch seconds).
    pub expires_at: i64,
}

/// Turn a reservation of `reserved` on the counter `key` into a spend of `actual`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    pub key: String,
    pub reserved: Decimal,
    pub actual: Decimal,
}

/// A counter's state: `committed` = `spent` + `reserved` (what the budget check compares).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub committed: Decimal,
    pub reserved: Decimal,
    pub spent: Decimal,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReserveError {
    /// The reservation at this index would cross its limit; nothing was reserved.
    #[error("over the limit of counter {0}")]
    Refused(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A conversation's head: what a turn checks and moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationHead {
    /// Turns stored (the next turn is `version + 1`).
    pub version: u64,
    /// UTF-8 bytes of text stored.
    pub bytes: u64,
    /// Epoch seconds of the last stored turn.
    pub updated_at: i64,
    /// Epoch seconds after which the conversation is gone (sliding: each turn moves it).
    pub expires_at: i64,
}

/// One exchange: the user's message and the reply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTurn {
    pub user: String,
    pub assistant: String,
    /// Epoch seconds when it was stored.
    pub at: i64,
}

impl StoredTurn {
    pub fn bytes(&self) -> u64 {
        (self.user.len() + self.assistant.len()) as u64
    }
}

/// Storing a turn, with its lease (`None` for a conversation's first turn).
#[derive(Debug, Clone)]
pub struct Append<'a> {
    pub id: &'a str,
    /// The head the turn began from and the lease it holds; `None` creates the conversation.
    pub after: Option<(ConversationHead, &'a str)>,
    pub turn: &'a StoredTurn,
    /// The conversation's new expiry.
    pub expires_at: i64,
    /// When the turn item itself may be deleted: past any expiry the conversation can reach.
    pub turn_expires_at: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BeginError {
    /// No such conversation, or it expired.
    #[error("no such conversation")]
    NotFound,
    /// Another turn holds the conversation.
    #[error("another turn is in progress")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The head moved (the lease was lost) or the turn exists: nothing was written.
    #[error("the conversation changed while the turn ran")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store the service was configured with.
#[derive(Clone)]
pub enum Store {
    InProcess(InProcessStore),
    Dynamo(DynamoStore),
}

impl Store {
    /// Reserve on every counter, all or nothing, in one round trip.
    pub async fn reserve(&self, reservations: &[Reserve]) -> Result<(), ReserveError> {
        match self {
            Store::InProcess(s) => s.reserve(reservations),
            Store::Dynamo(s) => s.reserve(reservations).await,
        }
    }

    /// Settle every counter, in one round trip.
    pub async fn settle(&self, settlements: &[Settle]) -> Result<(), StoreError> {
        match self {
            Store::InProcess(s) => {
                s.settle(settlements);
                Ok(())
            }
            Store::Dynamo(s) => s.settle(settlements).await,
        }
    }

    /// A counter as it stands (for tests and operators; not on the request path).
    pub async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
        match self {
            Store::InProcess(s) => Ok(s.counter(key)),
            Store::Dynamo(s) => s.counter(key).await,
        }
    }

    /// Take conversation `id` for one turn: the lease `lease` holds it until `busy_until` (or
    /// until the turn is stored or given up). One round trip.
    pub async fn begin_turn(
        &self,
        id: &str,
        lease: &str,
        busy_until: i64,
        now: i64,
    ) -> Result<ConversationHead, BeginError> {
        match self {
            Store::InProcess(s) => s.begin_turn(id, lease, busy_until, now),
            Store::Dynamo(s) => s.begin_turn(id, lease, busy_until, now).await,
        }
    }

    /// The stored turns of `id`, oldest first.
    pub async fn turns(&self, id: &str) -> Result<Vec<StoredTurn>, StoreError> {
        match self {
            Store::InProcess(s) => Ok(s.turns(id)),
            Store::Dynamo(s) => s.turns(id).await,
        }
    }

    /// Store a turn and move the head on, all or nothing, in one round trip; releases the lease.
    pub async fn append_turn(&self, append: &Append<'_>) -> Result<(), AppendError> {
        match self {
            Store::InProcess(s) => s.append_turn(append),
            Store::Dynamo(s) => s.append_turn(append).await,
        }
    }

    /// Give the conversation back without storing a turn (a failed or aborted turn).
    pub async fn end_turn(&self, id: &str, lease: &str) -> Result<(), StoreError> {
        match self {
            Store::InProcess(s) => {
                s.end_turn(id, lease);
                Ok(())
            }
            Store::Dynamo(s) => s.end_turn(id, lease).await,
        }
    }

    /// A whole conversation, if it exists and has not expired.
    pub async fn conversation(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(ConversationHead, Vec<StoredTurn>)>, StoreError> {
        match self {
            Store::InProcess(s) => Ok(s.conversation(id, now)),
            Store::Dynamo(s) => s.conversation(id, now).await,
        }
    }

    /// Forget a conversation now. False when there was none (or it had expired).
    pub async fn delete_conversation(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        match self {
            Store::InProcess(s) => Ok(s.delete_conversation(id, now)),
            Store::Dynamo(s) => s.delete_conversation(id, now).await,
        }
    }

    /// `in-process` or `dynamodb`, for the health endpoint and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::InProcess(_) => "in-process",
            Store::Dynamo(_) => "dynamodb",
        }
    }
}
