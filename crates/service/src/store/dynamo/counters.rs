//! Budget counters: `{PK: key, SK: "counter", committed, reserved, spent, expiresAt}`.
//!
//! DynamoDB condition expressions cannot add, so "what it holds plus `amount` stays within
//! `limit`" is `committed <= limit - amount`, with `limit - amount` computed here. Several
//! counters change in one `TransactWriteItems` (all or nothing); one counter in one `UpdateItem`.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use tracing::Instrument;

use super::{DynamoStore, amount, epoch_seconds, error, failed, n, names, s, units};
use crate::store::schema::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use crate::store::{Counter, Reserve, ReserveError, Settle, StoreError};

const COUNTER_SK: &str = "counter";

fn key(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), s(pk)),
        (SORT_KEY.to_owned(), s(COUNTER_SK)),
    ])
}

fn reserve_names() -> HashMap<String, String> {
    names(&[
        ("#c", "committed"),
        ("#r", "reserved"),
        ("#e", TTL_ATTRIBUTE),
    ])
}

fn settle_names() -> HashMap<String, String> {
    names(&[
        ("#c", "committed"),
        ("#r", "reserved"),
        ("#s", "spent"),
        ("#pk", PARTITION_KEY),
    ])
}

const RESERVE_UPDATE: &str = "ADD #c :x, #r :x SET #e = if_not_exists(#e, :e)";
const RESERVE_CONDITION: &str = "attribute_not_exists(#c) OR #c <= :room";
const SETTLE_UPDATE: &str = "ADD #c :delta, #r :release, #s :actual";
const SETTLE_CONDITION: &str = "attribute_exists(#pk)";

fn reserve_values(r: &Reserve) -> HashMap<String, AttributeValue> {
    let x = units(r.amount);
    // The limit rounded down, so rounding never lets a reservation past it.
    let limit = -units(-r.limit);
    HashMap::from([
        (":x".to_owned(), n(x)),
        (":e".to_owned(), AttributeValue::N(r.expires_at.to_string())),
        (":room".to_owned(), n(limit - x)),
    ])
}

fn settle_values(s: &Settle) -> HashMap<String, AttributeValue> {
    // The same rounding of the reservation as when it was made, so release cancels it exactly.
    let (reserved, actual) = (units(s.reserved), units(s.actual));
    HashMap::from([
        (":delta".to_owned(), n(actual - reserved)),
        (":release".to_owned(), n(-reserved)),
        (":actual".to_owned(), n(actual)),
    ])
}

impl DynamoStore {
    pub async fn reserve(&self, reservations: &[Reserve]) -> Result<(), ReserveError> {
        let span = self.span(if reservations.len() > 1 {
            "TransactWriteItems"
        } else {
            "UpdateItem"
        });
        let result = self
            .reserve_call(reservations)
            .instrument(span.clone())
            .await;
        if let Err(ReserveError::Store(e)) = &result {
            failed(&span, e);
        }
        result
    }

    async fn reserve_call(&self, reservations: &[Reserve]) -> Result<(), ReserveError> {
        // A reservation larger than its whole limit can never fit.
        if let Some(i) = reservations.iter().position(|r| r.amount > r.limit) {
            return Err(ReserveError::Refused(i));
        }
        match reservations {
            [] => Ok(()),
            [one] => {
                let sent = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(&one.key)))
                    .update_expression(RESERVE_UPDATE)
                    .condition_expression(RESERVE_CONDITION)
                    .set_expression_attribute_names(Some(reserve_names()))
                    .set_expression_attribute_values(Some(reserve_values(one)))
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        Err(ReserveError::Refused(0))
                    }
                    Err(e) => Err(error("UpdateItem", e).into()),
                }
            }
            many => {
                let items = self.updates(
                    many.iter().map(|r| (key(&r.key), reserve_values(r))),
                    RESERVE_UPDATE,
                    RESERVE_CONDITION,
                    reserve_names,
                )?;
                let sent = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        // Which condition failed, from the cancellation reasons (in order).
                        let refused = match e.as_service_error() {
                            Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                                .cancellation_reasons()
                                .iter()
                                .position(|r| r.code() == Some("ConditionalCheckFailed")),
                            _ => None,
                        };
                        match refused {
                            Some(i) => Err(ReserveError::Refused(i)),
                            None => Err(error("TransactWriteItems", e).into()),
                        }
                    }
                }
            }
        }
    }

    pub async fn settle(&self, settlements: &[Settle]) -> Result<(), StoreError> {
        let span = self.span(if settlements.len() > 1 {
            "TransactWriteItems"
        } else {
            "UpdateItem"
        });
        let result = self.settle_call(settlements).instrument(span.clone()).await;
        if let Err(e) = &result {
            failed(&span, e);
        }
        result
    }

    async fn settle_call(&self, settlements: &[Settle]) -> Result<(), StoreError> {
        match settlements {
            [] => Ok(()),
            [one] => {
                let sent = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(&one.key)))
                    .update_expression(SETTLE_UPDATE)
                    .condition_expression(SETTLE_CONDITION)
                    .set_expression_attribute_names(Some(settle_names()))
                    .set_expression_attribute_values(Some(settle_values(one)))
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    // The counter expired (settled long after its day): nothing left to correct.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(error("UpdateItem", e)),
                }
            }
            many => {
                let items = self.updates(
                    many.iter().map(|s| (key(&s.key), settle_values(s))),
                    SETTLE_UPDATE,
                    SETTLE_CONDITION,
                    settle_names,
                )?;
                let sent = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_transaction_canceled_exception()) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(error("TransactWriteItems", e)),
                }
            }
        }
    }

    /// One transaction item per counter: the same update and condition, each its own key and
    /// values (reservations and settlements of several budgets at once).
    fn updates(
        &self,
        rows: impl Iterator<
            Item = (
                HashMap<String, AttributeValue>,
                HashMap<String, AttributeValue>,
            ),
        >,
        update: &str,
        condition: &str,
        names: fn() -> HashMap<String, String>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        rows.map(|(key, values)| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names()))
                .set_expression_attribute_values(Some(values))
                .build()
                .map(|u| TransactWriteItem::builder().update(u).build())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError {
            operation: "TransactWriteItems",
            kind: "BuildError".into(),
            message: e.to_string(),
        })
    }

    pub async fn counter(&self, pk: &str) -> Result<Option<Counter>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk = :sk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":sk", s(COUNTER_SK))
            .send()
            .await
            .map_err(|e| error("Query", e))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        // TTL deletion is lazy: an expired item may still be returned.
        Ok(out
            .items()
            .iter()
            .find(|item| epoch_seconds(item) > now)
            .map(|item| Counter {
                committed: amount(item, "committed"),
                reserved: amount(item, "reserved"),
                spent: amount(item, "spent"),
            }))
    }
}
