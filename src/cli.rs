//! The `chatbot` command: `serve` (the default) runs the local server; `offline-model` runs the
//! offline Bedrock-compatible endpoint alone. With `AWS_LAMBDA_RUNTIME_API` in the environment
//! the process is a Lambda function whatever its arguments, so the same binary is `bootstrap`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::app::app;
use crate::config::{Backend, ServiceConfig, args_from_env};
use crate::hosts::lambda::LambdaMode;
use crate::hosts::{self, local};
use crate::offline::{self, OfflineConfig};
use crate::telemetry::{EmfSink, logging};

#[derive(Parser)]
#[command(
    name = "chatbot",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the chat service and page locally (the default).
    Serve(ServeArgs),
    /// Run only the offline Bedrock-compatible endpoint (for load tests and other tools).
    OfflineModel(OfflineModelArgs),
    /// Report what the deployed function cost, from its CloudWatch metrics and logs: per model,
    /// day or hour — requests, errors, tokens, USD, USD per request and per 1K tokens, a 30-day
    /// projection; `--top N` lists the most expensive requests.
    CostReport(crate::cost::report::ReportArgs),
    /// Estimate a month's bill for a traffic scenario (Bedrock tokens, Lambda, API Gateway) with
    /// the function's own price table.
    CostEstimate(crate::cost::estimate::EstimateArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CHATBOT_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where model calls go: the embedded offline model, or Amazon Bedrock.
    #[arg(long, env = "CHATBOT_BACKEND", value_enum, default_value = "offline")]
    backend: Backend,
    /// Folder with the chat page (default: ./frontend, else the source tree's).
    #[arg(long, env = "CHATBOT_FRONTEND_DIR")]
    frontend_dir: Option<PathBuf>,
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    offline: OfflineConfig,
}

#[derive(Args)]
struct OfflineModelArgs {
    /// Address to listen on.
    #[arg(long, env = "CHATBOT_OFFLINE_LISTEN", default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    #[command(flatten)]
    offline: OfflineConfig,
}

/// What the Lambda host reads (environment only).
#[derive(Args)]
struct LambdaArgs {
    #[arg(long, env = "CHATBOT_BACKEND", value_enum, default_value = "bedrock")]
    backend: Backend,
    #[arg(
        long,
        env = "CHATBOT_LAMBDA_MODE",
        value_enum,
        default_value = "buffered"
    )]
    mode: LambdaMode,
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    offline: OfflineConfig,
}

pub fn main() -> ExitCode {
    let started = Instant::now();
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        // One invocation at a time: a single-threaded runtime starts faster and uses less memory.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        return report(
            rt.map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(lambda())),
        );
    }
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => return report(Err(e.to_string())),
    };
    report(rt.block_on(async move {
        match cli.command {
            Some(Command::OfflineModel(args)) => offline::run(args.offline, args.listen)
                .await
                .map_err(|e| format!("offline model: {e}")),
            Some(Command::Serve(args)) => serve(args, started).await,
            Some(Command::CostReport(args)) => crate::cost::report::run(args).await,
            Some(Command::CostEstimate(args)) => crate::cost::estimate::run(args),
            None => serve(cli.serve, started).await,
        }
    }))
}

fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatbot: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn lambda() -> Result<(), String> {
    let args: LambdaArgs = args_from_env().map_err(|e| e.to_string())?;
    let _guard = logging::init(&args.service, true)?;
    let started = hosts::start(args.service, args.backend, args.offline, EmfSink::Stdout).await?;
    let _offline = started.offline;
    hosts::lambda::run(app(started.state), args.mode)
        .await
        .map_err(|e| format!("lambda runtime: {e}"))
}

async fn serve(args: ServeArgs, started_at: Instant) -> Result<(), String> {
    let _guard = logging::init(&args.service, false)?;
    let started = hosts::start(args.service, args.backend, args.offline, EmfSink::Stdout).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let api = app(started.state.clone());
    let router = match local::frontend_dir(args.frontend_dir) {
        Some(dir) => local::with_frontend(api, dir),
        None => {
            eprintln!("note: frontend/ not found; serving the API only");
            api
        }
    };
    banner(addr, &started);
    tracing::info!(
        url = %format!("http://{addr}"),
        startupMs = started_at.elapsed().as_secs_f64() * 1000.0,
        "server started"
    );
    local::serve(listener, router)
        .await
        .map_err(|e| e.to_string())
}

fn banner(addr: SocketAddr, started: &hosts::Started) {
    let model = started.state.model_id();
    let backend = match &started.offline {
        Some(server) => format!(
            "  model: OFFLINE — canned answers from the built-in offline model at {} (no AWS call).\n  \
             To use Amazon Bedrock ({model}): cargo run --release -- --backend bedrock\n  \
             (uses your AWS credentials and AWS_REGION, default us-east-2)\n",
            server.endpoint_url()
        ),
        None => format!(
            "  model: Amazon Bedrock {model} in {}\n",
            started.state.model().region()
        ),
    };
    let text = format!(
        "\n  chatbot {} — open http://{addr} to chat\n\n{backend}",
        env!("CARGO_PKG_VERSION")
    );
    // A closed stderr must not stop the server (eprintln! would panic).
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
}

/// Every environment variable the binary's hosts read, for the check that the README's
/// configuration table is complete.
pub fn environment_variables() -> Vec<String> {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &mut out);
    walk(
        &LambdaArgs::augment_args(clap::Command::new("lambda")),
        &mut out,
    );
    out.sort();
    out.dedup();
    out
}
