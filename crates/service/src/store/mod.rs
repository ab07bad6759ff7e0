//! The state store: one DynamoDB table when deployed (`CHATBOT_STATE_TABLE`), an in-process
//! store locally, with one behaviour behind both. The tests run the same bodies against both
//! (the DynamoDB one through the real SDK against moto).
//!
//! What the service keeps there, by partition-key prefix:
//! - `budget#…` — a daily spend counter per budget scope (see [`crate::budget`]).
//!
//! The table's schema is declared here once ([`schema`]); `chatbot create-table` creates
//! exactly this, and the template test keeps `serverless.yml`'s `StateTable` equal to it.

pub mod dynamo;
pub mod memory;

use rust_decimal::Decimal;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

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
pub const IAM_ACTIONS: &[&str] = &["dynamodb:Query", "dynamodb:UpdateItem"];

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

/// The store the service was configured with.
#[derive(Clone)]
pub enum Store {
    Memory(MemoryStore),
    Dynamo(DynamoStore),
}

impl Store {
    /// Reserve on every counter, all or nothing, in one round trip.
    pub async fn reserve(&self, reservations: &[Reserve]) -> Result<(), ReserveError> {
        match self {
            Store::Memory(s) => s.reserve(reservations),
            Store::Dynamo(s) => s.reserve(reservations).await,
        }
    }

    /// Settle every counter, in one round trip.
    pub async fn settle(&self, settlements: &[Settle]) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => {
                s.settle(settlements);
                Ok(())
            }
            Store::Dynamo(s) => s.settle(settlements).await,
        }
    }

    /// A counter as it stands (for tests and operators; not on the request path).
    pub async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
        match self {
            Store::Memory(s) => Ok(s.counter(key)),
            Store::Dynamo(s) => s.counter(key).await,
        }
    }

    /// `memory` or `dynamodb`, for the health endpoint and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Dynamo(_) => "dynamodb",
        }
    }
}
