//! The state store: one DynamoDB table when deployed (`CHATBOT_STATE_TABLE`), an in-process
//! store locally, with one behaviour behind both.
//!
//! The table's schema is declared here once; `chatbot create-table` creates exactly this, and the
//! template test keeps `serverless.yml`'s `StateTable` equal to it.

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
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
];
