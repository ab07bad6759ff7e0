//! The DynamoDB store: the real SDK, one table, every operation one round trip.
//!
//! - [`counters`]: the budgets' daily counters; [`conversations`]: conversation memory;
//! - this file: the client, error mapping, amounts, and `chatbot create-table`.

mod conversations;
mod counters;

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, ScalarAttributeType, SseSpecification,
    TimeToLiveSpecification,
};
use rust_decimal::Decimal;

use super::StoreError;
use super::schema::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    region: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        DynamoStore {
            client,
            table,
            region,
        }
    }

    /// The X-Ray subsegment of one DynamoDB call: `namespace: aws` (from `rpc.system`), named
    /// `DynamoDB`, the operation, the region, and the table as the resource.
    fn span(&self, operation: &'static str) -> tracing::Span {
        tracing::info_span!(
            target: "chatbot::store",
            "DynamoDB",
            otel.name = "DynamoDB",
            otel.kind = "client",
            rpc.system = "aws-api",
            rpc.service = "DynamoDB",
            rpc.method = operation,
            aws.region = %self.region,
            aws.table.name = %self.table,
        )
    }
}

/// Marks the call's span failed when the store failed (a condition that did not hold is an
/// answer, not a failure).
fn failed(span: &tracing::Span, e: &StoreError) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.set_status(opentelemetry::trace::Status::error(e.kind.clone()));
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
        );
    let conf = match crate::aws::endpoint_override("DYNAMODB") {
        Some(url) => conf.endpoint_url(url),
        None => conf,
    };
    Client::from_conf(conf.build())
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

/// The attribute names an expression uses (DynamoDB refuses unused ones).
fn names(used: &[(&str, &str)]) -> HashMap<String, String> {
    used.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
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

/// `chatbot create-table --table NAME`, with region, credentials and endpoint from the standard
/// AWS configuration (`AWS_ENDPOINT_URL_DYNAMODB` for moto).
pub async fn create_table_from_environment(table: &str) -> Result<(), String> {
    let shared = crate::aws::sdk_config(&crate::config::ServiceConfig::defaults()).await;
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
