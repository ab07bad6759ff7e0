//! The `chatbot` command: `serve` (the default) runs the local server with the page; the other
//! subcommands run the offline model alone and the cost tools. The Lambda function is the
//! separate `bootstrap` binary (`chatbot_service::hosts::lambda::main`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bedrock_offline::{OfflineConfig, OfflineServer};
use chatbot_service::config::ServiceConfig;
use chatbot_service::hosts::lambda::LambdaArgs;
use chatbot_service::hosts::{self, ModelEndpoint, local};
use chatbot_service::telemetry::{EmfSink, logging};
use chatbot_service::{AppState, app};
use clap::{Args, Parser, Subcommand};

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
    Serve(Box<ServeArgs>),
    /// Run only the offline Bedrock-compatible endpoint (for load tests and other tools).
    OfflineModel(OfflineModelArgs),
    /// Report what the deployed function cost, from its CloudWatch metrics and logs: per model,
    /// day or hour — requests, errors, tokens, USD, USD per request and per 1K tokens, a 30-day
    /// projection; `--top N` lists the most expensive requests.
    CostReport(chatbot_cost::report::ReportArgs),
    /// Estimate a month's bill for a traffic scenario (Bedrock tokens, Lambda, API Gateway) with
    /// the function's own price table.
    CostEstimate(chatbot_cost::estimate::EstimateArgs),
    /// Create the DynamoDB state table exactly as serverless.yml declares it (keys, on-demand,
    /// encryption, TTL, point-in-time recovery), for local runs against DynamoDB and tests.
    CreateTable(CreateTableArgs),
}

#[derive(Args)]
struct CreateTableArgs {
    /// Table name (then run the service with CHATBOT_STATE_TABLE set to it).
    #[arg(long)]
    table: String,
}

/// Where the local server's model calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The embedded offline model: canned answers, no AWS account needed.
    Offline,
    /// Amazon Bedrock through the AWS SDK and the standard credential chain.
    Bedrock,
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

/// A command's failure: its message, and the exit status it ends with.
struct Failure {
    message: String,
    status: u8,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { message, status: 1 }
    }
}

pub fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = match rt {
        Ok(rt) => rt.block_on(async move {
            match cli.command {
                Some(Command::OfflineModel(args)) => {
                    bedrock_offline::run(args.offline, args.listen)
                        .await
                        .map_err(|e| Failure::from(format!("offline model: {e}")))
                }
                Some(Command::Serve(args)) => Ok(serve(*args, started).await?),
                Some(Command::CostReport(args)) => cost_report(args).await,
                Some(Command::CostEstimate(args)) => Ok(chatbot_cost::estimate::run(args)?),
                Some(Command::CreateTable(args)) => {
                    chatbot_service::store::dynamo::create_table_from_environment(&args.table)
                        .await?;
                    println!("created table {}", args.table);
                    Ok(())
                }
                None => Ok(serve(cli.serve, started).await?),
            }
        }),
        Err(e) => Err(Failure::from(e.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("chatbot: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}

async fn cost_report(args: chatbot_cost::report::ReportArgs) -> Result<(), Failure> {
    chatbot_cost::report::run(args).await.map_err(|e| Failure {
        message: e.to_string(),
        status: e.exit_status(),
    })
}

async fn serve(args: ServeArgs, started_at: Instant) -> Result<(), String> {
    let _guard = logging::init(&args.service, false)?;
    // The offline model lives as long as the server.
    let (offline, endpoint) = match args.backend {
        Backend::Offline => {
            let server =
                bedrock_offline::spawn(args.offline, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                    .await
                    .map_err(|e| format!("cannot start the offline model: {e}"))?;
            let url = server.endpoint_url();
            (Some(server), ModelEndpoint::Local(url))
        }
        Backend::Bedrock => (None, ModelEndpoint::Bedrock),
    };
    let state = hosts::start(args.service, endpoint, EmfSink::Stdout).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let api = app(state.clone());
    let router = match local::frontend_dir(args.frontend_dir) {
        Some(dir) => local::with_frontend(api, dir),
        None => {
            eprintln!("note: frontend/ not found; serving the API only");
            api
        }
    };
    banner(addr, &state, offline.as_ref());
    tracing::info!(
        url = %format!("http://{addr}"),
        startupMs = started_at.elapsed().as_secs_f64() * 1000.0,
        "server started"
    );
    local::serve(listener, router)
        .await
        .map_err(|e| e.to_string())
}

fn banner(addr: SocketAddr, state: &AppState, offline: Option<&OfflineServer>) {
    let model = state.model_id();
    let backend = match offline {
        Some(server) => format!(
            "  model: OFFLINE — canned answers from the built-in offline model at {} (no AWS call).\n  \
             To use Amazon Bedrock ({model}): cargo run --release -- --backend bedrock\n  \
             (uses your AWS credentials and AWS_REGION, default us-east-2)\n",
            server.endpoint_url()
        ),
        None => format!(
            "  model: Amazon Bedrock {model} in {}\n",
            state.model().region()
        ),
    };
    let text = format!(
        "\n  chatbot {} — open http://{addr} to chat\n\n{backend}",
        env!("CARGO_PKG_VERSION")
    );
    // A closed stderr must not stop the server (eprintln! would panic).
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
}

/// Every environment variable the two binaries read (the command's flags and the Lambda host's),
/// for the check that the README's configuration table is complete.
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
