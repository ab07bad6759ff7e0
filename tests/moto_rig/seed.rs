//! Puts data into moto the way the function (and Bedrock) does: per-request metrics as one EMF
//! document becomes them (PutMetricData through the SDK) — `Latency`, `Errors` and `CostUSD`
//! under `[Service]`, and all of a request's metrics under `[Service, Model, Variant]` when it
//! reached a model — Bedrock's own token counts under `AWS/Bedrock` `[ModelId]`, and log lines
//! in a log group.

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_smithy_types::DateTime;

pub const NAMESPACE: &str = "ServerlessChatbot";
pub const BEDROCK_NAMESPACE: &str = "AWS/Bedrock";

pub async fn config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(chatbot_service::aws::https_client())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// One request as the function measured it.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    /// Epoch seconds.
    pub at: i64,
    pub model: Option<&'static str>,
    /// The A/B variant assigned (every request that reaches a model has one; `default`
    /// without A/B tests).
    pub variant: Option<&'static str>,
    pub input: u64,
    pub output: u64,
    /// CostUSD as the function emits it (a double).
    pub cost: f64,
    pub error: bool,
    /// The model had no price: no CostUSD (the summary line says `costUnknown`).
    pub cost_unknown: bool,
}

/// A dimension set (name, value) and the values published under it (name, value, unit).
type SetValues<'a> = (Vec<(&'a str, &'a str)>, Vec<(&'a str, f64, StandardUnit)>);

/// The request's latency, ms (one value per request: its sample count is the request count).
pub const LATENCY_MS: f64 = 850.0;

/// The metrics of one request, like one EMF document.
pub async fn put_request(cw: &aws_sdk_cloudwatch::Client, service: &str, r: &Req) {
    let mut common = vec![
        ("Latency", LATENCY_MS, StandardUnit::Milliseconds),
        ("Errors", f64::from(u8::from(r.error)), StandardUnit::Count),
    ];
    if !r.cost_unknown {
        common.push(("CostUSD", r.cost, StandardUnit::None));
    }
    let mut data: Vec<SetValues> = vec![(vec![("Service", service)], common.clone())];
    if let (Some(m), Some(v)) = (r.model, r.variant) {
        let mut values = common;
        values.push(("InputTokens", r.input as f64, StandardUnit::Count));
        values.push(("OutputTokens", r.output as f64, StandardUnit::Count));
        // The catalog's order, as the EMF documents list the dimensions.
        data.push((
            vec![("Service", service), ("Model", m), ("Variant", v)],
            values,
        ));
    }
    let mut request = cw.put_metric_data().namespace(NAMESPACE);
    for (set, values) in &data {
        for (name, value, unit) in values {
            let mut datum = MetricDatum::builder()
                .metric_name(*name)
                .value(*value)
                .unit(unit.clone())
                .timestamp(DateTime::from_secs(r.at));
            for (k, v) in set {
                datum = datum.dimensions(Dimension::builder().name(*k).value(*v).build());
            }
            request = request.metric_data(datum.build());
        }
    }
    request.send().await.expect("PutMetricData");
}

/// Token counts as Bedrock publishes them for one minute of calls: `AWS/Bedrock`, `[ModelId]`
/// (`InputTokenCount`, `OutputTokenCount`, `CacheReadInputTokenCount`,
/// `CacheWriteInputTokenCount`; zero values are not sent).
pub async fn put_bedrock(
    cw: &aws_sdk_cloudwatch::Client,
    model_id: &str,
    at: i64,
    tokens: &[(&str, u64)],
) {
    let mut request = cw.put_metric_data().namespace(BEDROCK_NAMESPACE);
    for (name, value) in tokens.iter().filter(|(_, v)| *v > 0) {
        request = request.metric_data(
            MetricDatum::builder()
                .metric_name(*name)
                .value(*value as f64)
                .unit(StandardUnit::Count)
                .timestamp(DateTime::from_secs(at))
                .dimensions(Dimension::builder().name("ModelId").value(model_id).build())
                .build(),
        );
    }
    request.send().await.expect("PutMetricData AWS/Bedrock");
}

/// A log group with one stream holding `lines` (epoch ms, message), oldest first.
pub async fn put_logs(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, lines: &[(i64, String)]) {
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("2025/07/20/[$LATEST]0123456789abcdef")
        .send()
        .await
        .expect("CreateLogStream");
    let mut put = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name("2025/07/20/[$LATEST]0123456789abcdef");
    for (ms, message) in lines {
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp(*ms)
                .message(message)
                .build()
                .expect("log event"),
        );
    }
    put.send().await.expect("PutLogEvents");
}
