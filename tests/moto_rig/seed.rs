//! Puts data into moto the way the function does: per-request metrics under `[Service]` and
//! `[Service, Model]` (PutMetricData through the SDK, as the EMF documents would become), and
//! summary log lines in a log group.

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_smithy_types::DateTime;

pub const NAMESPACE: &str = "ServerlessChatbot";

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
    /// The A/B variant assigned (published under `[Service, Variant]`).
    pub variant: Option<&'static str>,
    pub input: u64,
    pub output: u64,
    /// CostUSD as the function emits it (a double).
    pub cost: f64,
    pub error: bool,
}

/// The metrics of one request, like one EMF document: each under `[Service]` and, when the
/// request reached a model, `[Service, Model]` and `[Service, Variant]`.
pub async fn put_request(cw: &aws_sdk_cloudwatch::Client, service: &str, r: &Req) {
    let mut sets = vec![vec![("Service", service)]];
    if let Some(m) = r.model {
        sets.push(vec![("Service", service), ("Model", m)]);
    }
    if let Some(v) = r.variant {
        sets.push(vec![("Service", service), ("Variant", v)]);
    }
    let mut values = vec![
        ("Requests", 1.0, StandardUnit::Count),
        ("Errors", f64::from(u8::from(r.error)), StandardUnit::Count),
        ("CostUSD", r.cost, StandardUnit::None),
    ];
    if r.model.is_some() {
        values.push(("InputTokens", r.input as f64, StandardUnit::Count));
        values.push(("OutputTokens", r.output as f64, StandardUnit::Count));
    }
    let mut request = cw.put_metric_data().namespace(NAMESPACE);
    for set in &sets {
        for (name, value, unit) in &values {
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
