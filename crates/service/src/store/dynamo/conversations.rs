//! Conversations: a head item and one item per turn, so no item grows with the conversation
//! (DynamoDB's item limit is 400 KB; a turn is at most a few tens of KB).
//!
//! ```text
//! PK = conv#<id>  SK = head         version, bytes, createdAt, updatedAt, expiresAt,
//!                                   lease, busyUntil (while a turn runs)
//! PK = conv#<id>  SK = turn#000001  user, assistant, at, expiresAt
//! ```
//!
//! A turn takes the head with a conditional `UpdateItem` (exists, not expired, no live lease),
//! and stores itself with one `TransactWriteItems`: the head moves from its version to the next
//! only if the version and the lease are still the ones the turn began with, and the turn item
//! is written only if it does not exist. Either both happen or neither.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};

use tracing::Instrument;

use super::{DynamoStore, error, failed, names, s};
use crate::store::schema::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use crate::store::{Append, AppendError, BeginError, ConversationHead, StoreError, StoredTurn};

const HEAD_SK: &str = "head";
const TURN_PREFIX: &str = "turn#";
/// BatchWriteItem takes at most 25 requests.
const BATCH: usize = 25;

fn pk(id: &str) -> String {
    format!("conv#{id}")
}

fn turn_sk(index: u64) -> String {
    format!("{TURN_PREFIX}{index:06}")
}

fn head_key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), s(&pk(id))),
        (SORT_KEY.to_owned(), s(HEAD_SK)),
    ])
}

fn num(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_i64(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

fn get_str(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn head_of(item: &HashMap<String, AttributeValue>) -> ConversationHead {
    ConversationHead {
        version: get_i64(item, "version").max(0) as u64,
        bytes: get_i64(item, "bytes").max(0) as u64,
        updated_at: get_i64(item, "updatedAt"),
        expires_at: get_i64(item, TTL_ATTRIBUTE),
    }
}

fn turn_of(item: &HashMap<String, AttributeValue>) -> StoredTurn {
    StoredTurn {
        user: get_str(item, "user"),
        assistant: get_str(item, "assistant"),
        at: get_i64(item, "at"),
    }
}

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError {
        operation: "TransactWriteItems",
        kind: "BuildError".into(),
        message: e.to_string(),
    }
}

impl DynamoStore {
    pub async fn begin_turn(
        &self,
        id: &str,
        lease: &str,
        busy_until: i64,
        now: i64,
    ) -> Result<ConversationHead, BeginError> {
        let span = self.span("UpdateItem");
        let result = self
            .begin_turn_call(id, lease, busy_until, now)
            .instrument(span.clone())
            .await;
        if let Err(BeginError::Store(e)) = &result {
            failed(&span, e);
        }
        result
    }

    async fn begin_turn_call(
        &self,
        id: &str,
        lease: &str,
        busy_until: i64,
        now: i64,
    ) -> Result<ConversationHead, BeginError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(head_key(id)))
            .update_expression("SET #lease = :lease, #busy = :busy")
            .condition_expression(
                "attribute_exists(#pk) AND #exp > :now AND (attribute_not_exists(#busy) OR #busy < :now)",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#lease", "lease"),
                ("#busy", "busyUntil"),
                ("#pk", PARTITION_KEY),
                ("#exp", TTL_ATTRIBUTE),
            ])))
            .expression_attribute_values(":lease", s(lease))
            .expression_attribute_values(":busy", num(busy_until))
            .expression_attribute_values(":now", num(now))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(head_of(out.attributes().unwrap_or(&HashMap::new()))),
            Err(e) => match e.as_service_error() {
                Some(err) if err.is_conditional_check_failed_exception() => {
                    let old = match err {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
                        _ => None,
                    };
                    match old {
                        // Missing, or expired but not yet deleted (TTL deletion is lazy).
                        None => Err(BeginError::NotFound),
                        Some(item) if get_i64(item, TTL_ATTRIBUTE) <= now => {
                            Err(BeginError::NotFound)
                        }
                        Some(_) => Err(BeginError::Busy),
                    }
                }
                _ => Err(error("UpdateItem", e).into()),
            },
        }
    }

    /// The items of a conversation (`turns_only`: its turns), across pages.
    async fn items(
        &self,
        id: &str,
        turns_only: bool,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", s(&pk(id)))
            .consistent_read(true);
        query = if turns_only {
            query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :turn)")
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":turn", s(TURN_PREFIX))
        } else {
            query.key_condition_expression("#pk = :pk")
        };
        let mut pages = query.into_paginator().send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("Query", e))?;
            items.extend(page.items().iter().cloned());
        }
        Ok(items)
    }

    pub async fn turns(&self, id: &str) -> Result<Vec<StoredTurn>, StoreError> {
        let span = self.span("Query");
        let result = self.turns_call(id).instrument(span.clone()).await;
        if let Err(e) = &result {
            failed(&span, e);
        }
        result
    }

    async fn turns_call(&self, id: &str) -> Result<Vec<StoredTurn>, StoreError> {
        Ok(self.items(id, true).await?.iter().map(turn_of).collect())
    }

    pub async fn append_turn(&self, a: &Append<'_>) -> Result<(), AppendError> {
        let span = self.span("TransactWriteItems");
        let result = self.append_turn_call(a).instrument(span.clone()).await;
        if let Err(AppendError::Store(e)) = &result {
            failed(&span, e);
        }
        result
    }

    async fn append_turn_call(&self, a: &Append<'_>) -> Result<(), AppendError> {
        let next = a.after.map_or(1, |(head, _)| head.version + 1);
        let turn_item = HashMap::from([
            (PARTITION_KEY.to_owned(), s(&pk(a.id))),
            (SORT_KEY.to_owned(), s(&turn_sk(next))),
            ("user".to_owned(), s(&a.turn.user)),
            ("assistant".to_owned(), s(&a.turn.assistant)),
            ("at".to_owned(), num(a.turn.at)),
            (TTL_ATTRIBUTE.to_owned(), num(a.turn_expires_at)),
        ]);
        let put_turn = Put::builder()
            .table_name(&self.table)
            .set_item(Some(turn_item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build()
            .map_err(build_error)?;
        let head = match a.after {
            // The first turn creates the head.
            None => {
                let mut item = head_key(a.id);
                item.extend([
                    ("version".to_owned(), num(1)),
                    ("bytes".to_owned(), num(a.turn.bytes())),
                    ("createdAt".to_owned(), num(a.turn.at)),
                    ("updatedAt".to_owned(), num(a.turn.at)),
                    (TTL_ATTRIBUTE.to_owned(), num(a.expires_at)),
                ]);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PARTITION_KEY)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            }
            Some((head, lease)) => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(head_key(a.id)))
                    .update_expression(
                        "SET #v = :next, #b = #b + :bytes, #u = :at, #exp = :exp REMOVE #lease, #busy",
                    )
                    .condition_expression("#v = :version AND #lease = :lease")
                    .set_expression_attribute_names(Some(names(&[
                        ("#v", "version"),
                        ("#b", "bytes"),
                        ("#u", "updatedAt"),
                        ("#exp", TTL_ATTRIBUTE),
                        ("#lease", "lease"),
                        ("#busy", "busyUntil"),
                    ])))
                    .expression_attribute_values(":next", num(next))
                    .expression_attribute_values(":version", num(head.version))
                    .expression_attribute_values(":bytes", num(a.turn.bytes()))
                    .expression_attribute_values(":at", num(a.turn.at))
                    .expression_attribute_values(":exp", num(a.expires_at))
                    .expression_attribute_values(":lease", s(lease))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(update).build()
            }
        };
        let sent = self
            .client
            .transact_write_items()
            .transact_items(head)
            .transact_items(TransactWriteItem::builder().put(put_turn).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Err(AppendError::Conflict)
            }
            Err(e) => Err(error("TransactWriteItems", e).into()),
        }
    }

    pub async fn end_turn(&self, id: &str, lease: &str) -> Result<(), StoreError> {
        let span = self.span("UpdateItem");
        let result = self.end_turn_call(id, lease).instrument(span.clone()).await;
        if let Err(e) = &result {
            failed(&span, e);
        }
        result
    }

    async fn end_turn_call(&self, id: &str, lease: &str) -> Result<(), StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(head_key(id)))
            .update_expression("REMOVE #lease, #busy")
            .condition_expression("#lease = :lease")
            .set_expression_attribute_names(Some(names(&[
                ("#lease", "lease"),
                ("#busy", "busyUntil"),
            ])))
            .expression_attribute_values(":lease", s(lease))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Another turn took it after our lease ran out: nothing of ours to give back.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(error("UpdateItem", e)),
        }
    }

    pub async fn conversation(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(ConversationHead, Vec<StoredTurn>)>, StoreError> {
        let span = self.span("Query");
        let result = self
            .conversation_call(id, now)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            failed(&span, e);
        }
        result
    }

    async fn conversation_call(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(ConversationHead, Vec<StoredTurn>)>, StoreError> {
        let items = self.items(id, false).await?;
        let Some(head) = items
            .iter()
            .find(|i| get_str(i, SORT_KEY) == HEAD_SK)
            .map(head_of)
            .filter(|h| h.expires_at > now)
        else {
            return Ok(None);
        };
        let turns = items
            .iter()
            .filter(|i| get_str(i, SORT_KEY).starts_with(TURN_PREFIX))
            .map(turn_of)
            .collect();
        Ok(Some((head, turns)))
    }

    pub async fn delete_conversation(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let span = self.span("DeleteItem");
        let result = self
            .delete_conversation_call(id, now)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            failed(&span, e);
        }
        result
    }

    async fn delete_conversation_call(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        // The head first: from then on the conversation is gone for every reader, whatever
        // happens to the turn deletes.
        let old = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(head_key(id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| error("DeleteItem", e))?;
        let existed = old
            .attributes()
            .is_some_and(|h| get_i64(h, TTL_ATTRIBUTE) > now);
        let keys: Vec<HashMap<String, AttributeValue>> = self
            .items(id, true)
            .await?
            .into_iter()
            .map(|item| {
                item.into_iter()
                    .filter(|(k, _)| k == PARTITION_KEY || k == SORT_KEY)
                    .collect()
            })
            .collect();
        for chunk in keys.chunks(BATCH) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(build_error)
                })
                .collect::<Result<_, _>>()?;
            // Unprocessed items (throttling) are retried a few times, then left to the TTL.
            for _ in 0..5 {
                if requests.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| error("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
            }
        }
        Ok(existed)
    }
}
