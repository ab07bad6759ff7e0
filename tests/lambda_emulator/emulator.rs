//! Runs a compiled Lambda function binary against a loopback Runtime API and invokes it.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use super::child::{ChildProcess, Line};
use super::invocation::{InitError, Invocation, InvokeOptions};
use super::lambda_env::{lambda_environment, set};
use super::runtime_api::{Queued, RuntimeApi};

/// Account id in the invoked function ARN.
pub const ACCOUNT_ID: &str = "123456789012";

/// How long a reply may still arrive after the child is seen to have exited.
const EXIT_GRACE: Duration = Duration::from_millis(300);

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("could not start the Runtime API server: {0}")]
    Bind(#[source] std::io::Error),
    #[error("could not spawn {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no reply to invocation {request_id} within {timeout:?} (function polled it: {polled})"
    )]
    Timeout {
        request_id: String,
        timeout: Duration,
        polled: bool,
    },
    #[error("function exited ({status}) before replying to invocation {request_id}")]
    ChildExited {
        request_id: String,
        status: ExitStatus,
    },
    #[error("the Runtime API server stopped before invocation {request_id} completed")]
    Closed { request_id: String },
}

/// A function process plus the Runtime API it polls. Dropping it kills the process and stops
/// the server.
pub struct Emulator {
    child: ChildProcess,
    api: RuntimeApi,
}

impl Emulator {
    /// Starts the Runtime API and spawns `binary` with the standard Lambda environment, `env`
    /// overriding or extending it. Panics on failure (see `try_start`).
    pub async fn start(binary: impl AsRef<Path>, env: &[(&str, &str)]) -> Emulator {
        let binary = binary.as_ref();
        Self::try_start(binary, env)
            .await
            .unwrap_or_else(|e| panic!("emulator for {} did not start: {e}", binary.display()))
    }

    pub async fn try_start(
        binary: impl AsRef<Path>,
        env: &[(&str, &str)],
    ) -> Result<Emulator, EmulatorError> {
        let binary = binary.as_ref();
        let overrides = env;
        let env = lambda_environment(binary, overrides);
        let setting = |key: &str| {
            env.iter()
                .find(|(k, _)| k == key)
                .map_or("", |(_, v)| v.as_str())
        };
        let function_arn = format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            setting("AWS_REGION"),
            setting("AWS_LAMBDA_FUNCTION_NAME")
        );
        let api = RuntimeApi::start(function_arn).map_err(EmulatorError::Bind)?;
        let mut env = env;
        // A test may point the function elsewhere on purpose.
        if !overrides
            .iter()
            .any(|(k, _)| *k == "AWS_LAMBDA_RUNTIME_API")
        {
            set(&mut env, "AWS_LAMBDA_RUNTIME_API", &api.addr().to_string());
        }
        let child = ChildProcess::spawn(binary, &env).map_err(|source| EmulatorError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
        Ok(Emulator { child, api })
    }

    /// Invokes with default options; panics if no reply comes (see `try_invoke_with`).
    pub async fn invoke(&self, event: Value) -> Invocation {
        self.invoke_with(event, InvokeOptions::default()).await
    }

    /// Invokes; panics with the child's last stderr lines if no reply comes.
    pub async fn invoke_with(&self, event: Value, options: InvokeOptions) -> Invocation {
        match self.try_invoke_with(event, options).await {
            Ok(invocation) => invocation,
            Err(e) => {
                let tail: Vec<String> = self
                    .stderr_lines()
                    .into_iter()
                    .rev()
                    .take(20)
                    .rev()
                    .map(|l| l.text)
                    .collect();
                panic!("{e}\nlast child stderr lines:\n{}", tail.join("\n"))
            }
        }
    }

    /// Queues `event` (fresh uuid v4 request id) and waits for the function's reply.
    pub async fn try_invoke_with(
        &self,
        event: Value,
        options: InvokeOptions,
    ) -> Result<Invocation, EmulatorError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (reply_tx, mut reply_rx) = oneshot::channel();
        let queued_at = Instant::now();
        self.api.enqueue(Queued {
            request_id: request_id.clone(),
            event,
            trace_id: options.trace_id.clone(),
            deadline: options.deadline,
            reply: reply_tx,
        });
        let give_up = tokio::time::sleep(options.timeout);
        tokio::pin!(give_up);
        let mut exit_check = tokio::time::interval(Duration::from_millis(50));
        let reply = loop {
            tokio::select! {
                biased;
                reply = &mut reply_rx => break reply.ok(),
                () = &mut give_up => {
                    let polled = self.api.forget(&request_id);
                    return Err(EmulatorError::Timeout { request_id, timeout: options.timeout, polled });
                }
                _ = exit_check.tick() => {
                    if let Some(status) = self.child.exit_status() {
                        // A reply still in transit wins over the exit.
                        match tokio::time::timeout(EXIT_GRACE, &mut reply_rx).await {
                            Ok(reply) => break reply.ok(),
                            Err(_) => {
                                self.api.forget(&request_id);
                                return Err(EmulatorError::ChildExited { request_id, status });
                            }
                        }
                    }
                }
            }
        };
        let Some(reply) = reply else {
            return Err(EmulatorError::Closed { request_id });
        };
        Ok(Invocation {
            request_id,
            trace_id: options.trace_id,
            outcome: reply.outcome,
            queued_at,
            polled_at: Some(reply.polled_at),
            finished_at: reply.finished_at,
        })
    }

    /// Stdout lines so far. Lines printed after the reply (metric flushes) may still be on
    /// their way: use `wait_for_stdout` for those.
    pub fn lines(&self) -> Vec<Line> {
        self.child.stdout().snapshot()
    }

    /// The one summary line and the one EMF document the function printed for `request_id`
    /// (waiting for the EMF document, which is written as the response ends); panics unless
    /// there is exactly one of each.
    pub async fn evidence(&self, request_id: &str) -> (Value, Value) {
        let is_emf = |j: &Value| j["requestId"] == request_id && j.get("_aws").is_some();
        self.wait_for_stdout(
            |l| l.json.as_ref().is_some_and(is_emf),
            Duration::from_secs(5),
        )
        .await
        .expect("EMF document");
        let lines: Vec<Value> = self.lines().into_iter().filter_map(|l| l.json).collect();
        let emf: Vec<&Value> = lines.iter().filter(|j| is_emf(j)).collect();
        let summary: Vec<&Value> = lines
            .iter()
            .filter(|j| j["requestId"] == request_id && j["message"] == "request completed")
            .collect();
        assert_eq!(emf.len(), 1, "one EMF document for {request_id}");
        assert_eq!(summary.len(), 1, "one summary line for {request_id}");
        (summary[0].clone(), emf[0].clone())
    }

    pub fn stderr_lines(&self) -> Vec<Line> {
        self.child.stderr().snapshot()
    }

    /// The first stdout line (printed already or within `timeout`) matching `pred`.
    pub async fn wait_for_stdout(
        &self,
        pred: impl Fn(&Line) -> bool,
        timeout: Duration,
    ) -> Option<Line> {
        self.child.stdout().wait_for(pred, timeout).await
    }

    /// The first stderr line (printed already or within `timeout`) matching `pred`.
    pub async fn wait_for_stderr(
        &self,
        pred: impl Fn(&Line) -> bool,
        timeout: Duration,
    ) -> Option<Line> {
        self.child.stderr().wait_for(pred, timeout).await
    }

    /// Just before the process was spawned.
    pub fn spawned_at(&self) -> Instant {
        self.child.spawned_at()
    }

    /// When the function first called `/invocation/next` (its init is done).
    pub fn first_poll_at(&self) -> Option<Instant> {
        self.api.first_poll_at()
    }

    pub async fn wait_for_first_poll(&self, timeout: Duration) -> Option<Instant> {
        self.api.wait_for_first_poll(timeout).await
    }

    /// What the function posted to `/runtime/init/error`, if anything.
    pub fn init_error(&self) -> Option<InitError> {
        self.api.init_error()
    }

    /// The exit status once the process has ended.
    pub fn child_exited(&self) -> Option<ExitStatus> {
        self.child.exit_status()
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub async fn wait_for_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.exit_status() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// `127.0.0.1:PORT`, the child's `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api_addr(&self) -> std::net::SocketAddr {
        self.api.addr()
    }

    /// Kills the process (if still running), collects its remaining output and stops the
    /// server. Returns the exit status (a signal if it was killed).
    pub async fn shutdown(self) -> Option<ExitStatus> {
        let status = self.child.kill();
        self.child.drain(Duration::from_secs(2)).await;
        self.api.stop();
        status
    }
}
