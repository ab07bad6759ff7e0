//! The chatbot's cost tools, apart from the request path so that the Lambda artifact links
//! neither these nor the CloudWatch / CloudWatch Logs SDKs:
//!
//! - [`report`]: `chatbot cost-report` — what the deployed function cost, from its EMF metrics
//!   (GetMetricData) and its summary lines (Logs Insights), per model, variant, day or hour;
//! - [`estimate`]: `chatbot cost-estimate` — a month's bill for a traffic scenario, with
//!   [`observability`]: what the deploy's metrics, alarms, dashboard, logs and traces cost.
//!
//! Both price tokens with the function's own table (`chatbot_service::pricing`), so a report,
//! an estimate and a request's own cost never disagree.

pub mod estimate;
pub mod observability;
pub mod report;
