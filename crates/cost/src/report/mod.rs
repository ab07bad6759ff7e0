//! `chatbot cost-report`: what the deployed function cost over a window, read back from its own
//! CloudWatch metrics (per model, variant, day or hour) and, with `--top`, its most expensive requests
//! from the summary log lines through Logs Insights.
//!
//! - [`args`]: the flags; [`window`]: `--since/--start/--end`, period and buckets.
//! - [`aws`]: SDK set-up and error mapping; [`query`]: ListMetrics + GetMetricData.
//! - [`rows`]: sums and derived figures; [`logs`]: `--top`; [`output`] / [`format`]: rendering.
//!
//! The report prints to stdout; progress and errors go to stderr. Exit status: 0, 1 on errors,
//! [`EXIT_NO_DATA`] when the window holds no data.

pub mod args;
pub mod aws;
pub mod format;
pub mod logs;
pub mod output;
pub mod progress;
pub mod query;
pub mod rows;
pub mod window;

use std::io::Write;
use std::time::{Duration, SystemTime};

pub use args::{AwsArgs, GroupBy, Grouping, ReportArgs};

use output::Report;
use progress::Progress;
use window::{Window, WindowError, rfc3339};

/// Exit status when the window has no data, [`ReportError::NoData`] (distinct from 1 so scripts
/// can tell "quiet period" from "broken"); the command maps it.
pub const EXIT_NO_DATA: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("no AWS region: pass --region, set AWS_REGION, or set a region in your AWS profile")]
    NoRegion,
    #[error(
        "no AWS credentials found: set AWS_PROFILE (after `aws sso login` for SSO profiles) or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile ({0})"
    )]
    NoCredentials(String),
    #[error("AWS rejected the credentials on {action}: {message}")]
    CredentialsRejected {
        action: &'static str,
        message: String,
    },
    #[error("access denied on {action}: {message}. The caller needs {needs}")]
    AccessDenied {
        action: &'static str,
        message: String,
        needs: &'static str,
    },
    #[error("{action}: not found: {message} (check --log-group and --region)")]
    NotFound {
        action: &'static str,
        message: String,
    },
    #[error(
        "cannot reach AWS for {action} (check --region, --endpoint-url, the network): {message}"
    )]
    Unreachable {
        action: &'static str,
        message: String,
    },
    #[error("{action} failed: {message}")]
    Aws {
        action: &'static str,
        message: String,
    },
    #[error("--log-group given {0} times; Logs Insights takes at most 50 log groups")]
    TooManyLogGroups(usize),
    #[error("the Logs Insights query ended with status {status}")]
    QueryFailed { status: String },
    #[error(
        "the Logs Insights query was still running after {0} s (stopped); raise --query-timeout or shorten the window"
    )]
    QueryTimeout(u64),
    #[error(
        "no data: no {metric} metric for Service={service} in namespace {namespace} between {start} and {end}. \
         {hint}"
    )]
    NoData {
        metric: &'static str,
        service: String,
        namespace: String,
        start: String,
        end: String,
        hint: String,
    },
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Builds and prints the report.
pub async fn report(args: ReportArgs) -> Result<(), ReportError> {
    let window = Window::resolve(args.since, args.start, args.end, SystemTime::now())?;
    let progress = Progress::new(!args.quiet);
    let result = build(&args, window, &progress).await;
    progress.finish();
    let report = result?;
    let text = output::render(&report, args.format);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

async fn build(
    args: &ReportArgs,
    window: Window,
    progress: &Progress,
) -> Result<Report, ReportError> {
    progress.update("loading AWS configuration");
    let clients = aws::connect(&args.aws).await?;
    let grouping = args.by.grouping();
    let dimension = match grouping {
        Grouping::Dimension(d) => Some(d),
        Grouping::Time(_) => None,
    };
    let groups = match dimension {
        Some(d) => {
            progress.update(&format!("listing {d} values with metrics"));
            query::discover(&clients.cloudwatch, &args.namespace, &args.service, d).await?
        }
        None => Vec::new(),
    };
    let keys = query::series(dimension, &groups);
    let series = query::fetch(
        &clients.cloudwatch,
        &args.namespace,
        &args.service,
        dimension,
        &keys,
        &window,
        progress,
    )
    .await?;
    let rows = rows::build(grouping, &window, &groups, &series);
    if !rows.has_data {
        let services = query::services(&clients.cloudwatch, &args.namespace)
            .await
            .unwrap_or_default();
        return Err(no_data(args, &window, &services));
    }
    let top = match args.top {
        Some(n) => Some(
            logs::top_requests(
                &clients.logs,
                &args.log_groups,
                &window,
                n,
                Duration::from_secs(args.query_timeout),
                progress,
            )
            .await?,
        ),
        None => None,
    };
    Ok(Report {
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        window,
        by: args.by,
        rows,
        top,
    })
}

fn no_data(args: &ReportArgs, window: &Window, services: &[String]) -> ReportError {
    let others: Vec<&str> = services
        .iter()
        .map(String::as_str)
        .filter(|s| *s != args.service)
        .collect();
    let hint = if others.is_empty() {
        "Check --service (the stage's service name, e.g. chatbot-dev), --namespace, --region and the window.".to_owned()
    } else {
        format!(
            "Services with metrics in this namespace: {}. Pass one with --service.",
            others.join(", ")
        )
    };
    ReportError::NoData {
        metric: "Requests",
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        start: rfc3339(window.start),
        end: rfc3339(window.end),
        hint,
    }
}
