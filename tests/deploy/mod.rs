//! Offline checks of the deploy template (`serverless.yml` packaged by osls) against the rules
//! of the deploy issue. `tests/deploy_template.rs` runs them on the real template and shows each
//! one fails on a deliberately broken copy.
//!
//! - [`tools`]: finds osls and cfn-lint (from `scripts/setup-test-deps`), runs them.
//! - [`artifact`]: the Lambda zip: `scripts/zip-bootstrap` and a reader for its central directory.
//! - [`template`]: the CloudFormation JSON with helpers to read values as text.
//! - [`checks`]: every rule; each returns the problems it found as sentences.
//! - [`metrics`]: the metric references in alarms and the dashboard, checked against the catalog.
//! - [`markdown`]: GitHub heading anchors and fenced code blocks of `docs/runbooks.md`.
//! - [`logs_query`]: field names used by Logs Insights queries.

pub mod artifact;
pub mod checks;
pub mod logs_query;
pub mod markdown;
pub mod metrics;
pub mod template;
pub mod tools;
