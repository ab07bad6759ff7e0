//! The deploy issue's rules as checks over the packaged template. Each returns its problems as
//! sentences (empty = fine), so a test can show one fails on a broken copy.
//!
//! - [`stage`]: the functions (runtime, tracing, timeouts, environment) and their log groups.
//! - [`iam`]: least privilege, Bedrock scoped to exactly the configured models.
//! - [`alarms`]: SNS actions, runbook links, periods, metric math, metric names.
//! - [`dashboard`]: metric names against the catalog, alarm and Logs Insights widgets.
//! - [`endpoints`]: the Function URL, the HTTP API, the private site behind CloudFront, `/api/*`
//!   and the stream behind CloudFront with the origin secret, the optional WAF, outputs.
//! - [`guardrail`]: the optional Bedrock guardrail, its version, its alarm and dashboard row.
//! - [`spend`]: the state table (equal to `chatbot_service::store::schema`), the budgets and the
//!   generated secrets the functions read.

use std::collections::BTreeSet;

use super::template::Template;

pub mod alarms;
pub mod dashboard;
pub mod endpoints;
pub mod guardrail;
pub mod iam;
pub mod spend;
pub mod stage;

pub use dashboard::dashboard_body;
pub use stage::configured_models;

/// What the template is checked against, besides itself.
pub struct Expect {
    /// Heading anchors of docs/runbooks.md.
    pub runbook_anchors: BTreeSet<String>,
    /// Logs Insights queries in docs/runbooks.md (```logsinsights blocks).
    pub runbook_queries: Vec<String>,
    pub log_retention_days: u64,
    pub memory_mb: u64,
    /// Where a `us.` inference profile routes (reference.md: Nova in the US).
    pub us_route_regions: Vec<&'static str>,
}

const STREAM_PATH: &str = "/api/chat/stream";
/// Every other API path, to the HTTP API's execute-api origin.
const API_PATH: &str = "/api/*";
/// The header CloudFront adds to API requests with the active origin secret.
const ORIGIN_SECRET_HEADER: &str = "x-origin-verify";
/// The header the function identifies a client by behind CloudFront (reference.md §8).
const VIEWER_ADDRESS_HEADER: &str = "CloudFront-Viewer-Address";
const BEDROCK_ACTIONS: [&str; 2] = [
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
];
/// X-Ray's write actions support no resource-level permissions: `Resource: "*"` is required.
const XRAY_ACTIONS: [&str; 2] = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

pub fn all(t: &Template, x: &Expect) -> Vec<String> {
    let mut p = Vec::new();
    p.extend(stage::functions(t, x));
    p.extend(stage::log_groups(t, x));
    p.extend(iam::check(t, x));
    p.extend(alarms::check(t, x));
    p.extend(dashboard::check(t));
    p.extend(dashboard::runbook_queries(t, x));
    p.extend(endpoints::function_url(t));
    p.extend(endpoints::http_api(t));
    p.extend(endpoints::site(t));
    p.extend(endpoints::api_behind_cloudfront(t));
    p.extend(endpoints::waf(t));
    p.extend(endpoints::outputs(t));
    p.extend(spend::table(t));
    p.extend(spend::budgets(t));
    p.extend(spend::secrets(t));
    p.extend(guardrail::check(t));
    p
}
