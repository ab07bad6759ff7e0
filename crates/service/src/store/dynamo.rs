//! The DynamoDB store: the real SDK, one table, every operation one round trip.
//!
//! Counters are items `{PK: key, SK: "counter", committed, reserved, spent, expiresAt}`.
//! DynamoDB condition expressions cannot add, so "what it holds plus `amount` stays within
//! `limit`" is `committed <= limit - amount`, with `limit - amount` computed here in decimal.
//! Several counters change in one `TransactWriteItems` (all or nothing); one counter in one
//! `UpdateItem`.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, ScalarAttributeType, SseSpecification,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use rust_decimal::Decimal;

use super::schema::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use super::{Counter, Reserve, ReserveError, Settle, StoreError};

const COUNTER_SK: &str = "counter";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// Bounded retries inside the request's time: the SDK's standard mode, 3 attempts, each cut off
/// at half the operation timeout.
pub fn client(shared: &aws_config::SdkConfig, timeout: Duration) -> Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(shared)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout / 2)
                .operation_attempt_timeout(timeout / 2)
                .operation_timeout(timeout)
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

fn error<E, R>(operation: &'static str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (kind, message) = match &e {
        SdkError::ServiceError(s) => (
            s.err().code().unwrap_or("UnknownServiceError").to_owned(),
            s.err().message().unwrap_or_default().to_owned(),
        ),
        SdkError::TimeoutError(_) => ("TimeoutError".to_owned(), String::new()),
        SdkError::DispatchFailure(f) if f.is_timeout() => {
            ("TimeoutError".to_owned(), String::new())
        }
        SdkError::DispatchFailure(_) => ("DispatchFailure".to_owned(), format!("{e:?}")),
        _ => ("SdkError".to_owned(), e.to_string()),
    };
    StoreError {
        operation,
        kind,
        message: message.chars().take(300).collect(),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// Amounts are stored as whole attodollars (10⁻¹⁸ USD): integers are exact in DynamoDB's
/// number type, every cost this service computes has at most 18 decimals, and a budget of a
/// million dollars is 25 digits (DynamoDB keeps 38). Rounding, if a price table ever had more
/// decimals, is upwards: a counter may then overstate by 10⁻¹⁸ per request, never understate.
/// (Decimal fractions also tripped moto: a sum that reaches zero is stored as `0E-9`, which its
/// next `ADD` cannot parse.)
const SCALE: u32 = 18;

/// `d` in attodollars, rounded up.
fn units(d: Decimal) -> i128 {
    let scaled = (d * Decimal::from(10u64.pow(SCALE))).ceil();
    scaled.mantissa() / 10i128.pow(scaled.scale())
}

fn n(units: i128) -> AttributeValue {
    AttributeValue::N(units.to_string())
}

fn from_units(text: &str) -> Option<Decimal> {
    let units: i128 = text.parse().ok()?;
    Decimal::try_from_i128_with_scale(units, SCALE)
        .ok()
        .map(|d| d.normalize())
}

fn key(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), s(pk)),
        (SORT_KEY.to_owned(), s(COUNTER_SK)),
    ])
}

/// The attribute names an expression uses (DynamoDB refuses unused ones).
fn names(used: &[(&str, &str)]) -> HashMap<String, String> {
    used.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
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

fn amount(item: &HashMap<String, AttributeValue>, name: &str) -> Decimal {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| from_units(v))
        .unwrap_or_default()
}

fn epoch_seconds(item: &HashMap<String, AttributeValue>) -> i64 {
    item.get(TTL_ATTRIBUTE)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> Self {
        DynamoStore { client, table }
    }

    pub async fn reserve(&self, reservations: &[Reserve]) -> Result<(), ReserveError> {
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
                let items = many
                    .iter()
                    .map(|r| {
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(&r.key)))
                            .update_expression(RESERVE_UPDATE)
                            .condition_expression(RESERVE_CONDITION)
                            .set_expression_attribute_names(Some(reserve_names()))
                            .set_expression_attribute_values(Some(reserve_values(r)))
                            .build()
                            .map(|u| TransactWriteItem::builder().update(u).build())
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| StoreError {
                        operation: "TransactWriteItems",
                        kind: "BuildError".into(),
                        message: e.to_string(),
                    })?;
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
                let items = many
                    .iter()
                    .map(|s| {
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(&s.key)))
                            .update_expression(SETTLE_UPDATE)
                            .condition_expression(SETTLE_CONDITION)
                            .set_expression_attribute_names(Some(settle_names()))
                            .set_expression_attribute_values(Some(settle_values(s)))
                            .build()
                            .map(|u| TransactWriteItem::builder().update(u).build())
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| StoreError {
                        operation: "TransactWriteItems",
                        kind: "BuildError".into(),
                        message: e.to_string(),
                    })?;
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

/// `chatbot create-table --table NAME`, with region, credentials and endpoint from the standard
/// AWS configuration (`AWS_ENDPOINT_URL_DYNAMODB` for moto).
pub async fn create_table_from_environment(table: &str) -> Result<(), String> {
    let shared =
        crate::model::client::shared_config(&crate::config::ServiceConfig::defaults()).await;
    create_table(&client(&shared, Duration::from_secs(10)), table).await
}

/// `chatbot create-table`: the table exactly as `serverless.yml` declares it (keys, on-demand,
/// encryption at rest, TTL, point-in-time recovery), for local runs and tests. An existing table
/// is an error that says so.
pub async fn create_table(client: &Client, table: &str) -> Result<(), String> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr(PARTITION_KEY)?)
        .attribute_definitions(attr(SORT_KEY)?)
        .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SORT_KEY, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await
        .map_err(|e| format!("CreateTable {table}: {}", error("CreateTable", e)))?;
    // A new table is CREATING for a few seconds on AWS (at once on moto).
    for _ in 0..120 {
        let status = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("DescribeTable {table}: {}", error("DescribeTable", e)))?
            .table()
            .and_then(|t| t.table_status().cloned());
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| format!("UpdateTimeToLive {table}: {}", error("UpdateTimeToLive", e)))?;
    client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| {
            format!(
                "UpdateContinuousBackups {table}: {}",
                error("UpdateContinuousBackups", e)
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_are_whole_attodollars_rounded_up() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(units(d("0.000029505")), 29_505_000_000_000);
        assert_eq!(units(d("-0.000029505")), -29_505_000_000_000);
        assert_eq!(units(Decimal::from_scientific("1e-19").unwrap()), 1);
        assert_eq!(units(d("1000000")), 10i128.pow(24));
        assert_eq!(from_units("29505000000000"), Some(d("0.000029505")));
        assert_eq!(from_units("0"), Some(Decimal::ZERO));
    }
}
