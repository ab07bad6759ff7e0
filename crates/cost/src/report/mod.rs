//! `chatbot cost-report`: what the deployed function cost over a window, read back from its own
//! CloudWatch metrics (per model, variant, day or hour) and, with `--log-group`, from its summary
//! log lines through Logs Insights (requests with an unknown cost; `--top`, its most expensive
//! requests). `--reconcile` compares its token counts with `AWS/Bedrock`'s instead.
//!
//! - [`args`]: the flags; [`window`]: `--since/--start/--end`, period and buckets.
//! - [`aws`]: SDK set-up and error mapping; [`query`]: ListMetrics + GetMetricData.
//! - [`rows`]: sums and derived figures; [`logs`]: Logs Insights; [`output`] / [`format`]:
//!   rendering; [`reconcile`]: `--reconcile`.
//!
//! The report prints to stdout; progress and errors go to stderr. Exit status: 0, 1 on errors,
//! [`EXIT_NO_DATA`] when the window holds no data, [`EXIT_DRIFT`] when `--reconcile` finds a
//! drift above `--max-drift`.

pub mod args;
pub mod aws;
pub mod format;
pub mod logs;
pub mod output;
pub mod progress;
pub mod query;
pub mod reconcile;
pub mod rows;
pub mod window;

use std::io::Write;
use std::time::{Duration, SystemTime};

pub use args::{AwsArgs, GroupBy, Grouping, ReportArgs};

use logs::Insights;
use output::Report;
use progress::Progress;
use query::{Scope, SeriesKey};
use reconcile::ReconcileReport;
use rust_decimal::Decimal;
use window::{Window, WindowError, rfc3339};

/// Exit status when the window has no data, [`ReportError::NoData`] (distinct from 1 so scripts
/// can tell "quiet period" from "broken"); the command maps it.
pub const EXIT_NO_DATA: u8 = 3;

/// Exit status when `--reconcile` finds a token drift above `--max-drift`
/// ([`ReportError::DriftExceeded`]), after printing the comparison.
pub const EXIT_DRIFT: u8 = 4;

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
    #[error("token drift above {max}%: {detail}")]
    DriftExceeded { max: Decimal, detail: String },
}

impl ReportError {
    /// The process exit status this error ends the command with.
    pub fn exit_status(&self) -> u8 {
        match self {
            ReportError::NoData { .. } => EXIT_NO_DATA,
            ReportError::DriftExceeded { .. } => EXIT_DRIFT,
            _ => 1,
        }
    }
}

/// Builds and prints the report (or, with `--reconcile`, the token comparison, then a drift
/// above `--max-drift` is an error: exit [`EXIT_DRIFT`] through [`ReportError::exit_status`]).
pub async fn run(args: ReportArgs) -> Result<(), ReportError> {
    let window = Window::resolve(args.since, args.start, args.end, SystemTime::now())?;
    let progress = Progress::new(!args.quiet);
    let result = if args.reconcile {
        build_reconcile(&args, window, &progress)
            .await
            .map(|r| (reconcile::render(&r, args.format), Some(r)))
    } else {
        build(&args, window, &progress)
            .await
            .map(|r| (output::render(&r, args.format), None))
    };
    progress.finish();
    let (text, reconciled) = result?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    if let Some(r) = reconciled {
        let exceeded = r.result.exceeded();
        if !exceeded.is_empty() {
            let detail = exceeded
                .iter()
                .map(|(model, kind, drift)| match drift {
                    Some(d) => format!("{model} {} {:+.2}%", kind.label(), d),
                    None => format!("{model} {} (none at AWS/Bedrock)", kind.label()),
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ReportError::DriftExceeded {
                max: r.result.max_drift_pct.normalize(),
                detail,
            });
        }
    }
    Ok(())
}

fn insights<'a>(
    args: &'a ReportArgs,
    clients: &'a aws::Clients,
    window: &'a Window,
    progress: &'a Progress,
) -> Insights<'a> {
    Insights {
        client: &clients.logs,
        log_groups: &args.log_groups,
        window,
        timeout: Duration::from_secs(args.query_timeout),
        progress,
    }
}

/// The service's request count under `[Service]` (what "no data" is judged on).
fn requests_key() -> SeriesKey {
    SeriesKey {
        scope: Scope::Service,
        metric: chatbot_service::telemetry::catalog::LATENCY,
    }
}

async fn build(
    args: &ReportArgs,
    window: Window,
    progress: &Progress,
) -> Result<Report, ReportError> {
    progress.update("loading AWS configuration");
    let clients = aws::connect(&args.aws).await?;
    let grouping = args.by.grouping();
    progress.update("listing model × variant pairs with metrics");
    let pairs = query::pairs(&clients.cloudwatch, &args.namespace, &args.service).await?;
    let per_pair_rows = matches!(grouping, Grouping::Dimension(_));
    let keys = query::series(per_pair_rows, &pairs);
    let series = query::fetch(
        &clients.cloudwatch,
        &args.namespace,
        &args.service,
        &keys,
        &window,
        progress,
    )
    .await?;
    if !rows::has_requests(&series) {
        return Err(no_data_error(args, &clients, &window).await);
    }
    let logs = insights(args, &clients, &window, progress);
    let unknown = if args.log_groups.is_empty() {
        None
    } else {
        let hourly = matches!(grouping, Grouping::Time(_));
        Some(logs.cost_unknown(hourly).await?)
    };
    let rows = rows::build(grouping, &window, &series, unknown.as_deref());
    let top = match args.top {
        Some(n) => Some(logs.top_requests(n).await?),
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

async fn build_reconcile(
    args: &ReportArgs,
    window: Window,
    progress: &Progress,
) -> Result<ReconcileReport, ReportError> {
    progress.update("loading AWS configuration");
    let clients = aws::connect(&args.aws).await?;
    progress.update("listing model × variant pairs with metrics");
    let pairs = query::pairs(&clients.cloudwatch, &args.namespace, &args.service).await?;
    progress.update("listing AWS/Bedrock token metrics");
    let mut keys = vec![requests_key()];
    keys.extend(query::token_series(&pairs));
    keys.extend(query::bedrock_series(&clients.cloudwatch).await?);
    let series = query::fetch(
        &clients.cloudwatch,
        &args.namespace,
        &args.service,
        &keys,
        &window,
        progress,
    )
    .await?;
    if !rows::has_requests(&series) {
        return Err(no_data_error(args, &clients, &window).await);
    }
    let cache = if args.log_groups.is_empty() {
        None
    } else {
        Some(
            insights(args, &clients, &window, progress)
                .cache_tokens()
                .await?,
        )
    };
    Ok(ReconcileReport {
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        window,
        result: reconcile::reconcile(&series, cache.as_ref(), args.max_drift),
    })
}

async fn no_data_error(args: &ReportArgs, clients: &aws::Clients, window: &Window) -> ReportError {
    let services = query::services(&clients.cloudwatch, &args.namespace)
        .await
        .unwrap_or_default();
    no_data(args, window, &services)
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
        metric: chatbot_service::telemetry::catalog::LATENCY,
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        start: rfc3339(window.start),
        end: rfc3339(window.end),
        hint,
    }
}
