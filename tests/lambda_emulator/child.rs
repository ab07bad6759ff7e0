//! The function under test as a child process, its stdout and stderr captured line by line.
//!
//! std::process and plain threads rather than tokio::process: the crate's tokio has no
//! `process` feature, and a blocking reader per pipe is all the capture needs.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::lock::lock;

/// One line the child printed, with the moment the reader thread received it.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: Instant,
    pub text: String,
    /// The line parsed as JSON when it is a JSON object (log lines, EMF documents).
    pub json: Option<serde_json::Value>,
}

/// Everything one output stream printed so far; `count` ticks on every new line.
#[derive(Clone)]
pub struct OutputLog {
    lines: Arc<Mutex<Vec<Line>>>,
    count: watch::Sender<usize>,
}

impl OutputLog {
    fn new() -> Self {
        Self {
            lines: Arc::new(Mutex::new(Vec::new())),
            count: watch::Sender::new(0),
        }
    }

    fn push(&self, text: String) {
        let json = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .filter(serde_json::Value::is_object);
        let line = Line {
            at: Instant::now(),
            text,
            json,
        };
        let total = {
            let mut lines = lock(&self.lines);
            lines.push(line);
            lines.len()
        };
        self.count.send_replace(total);
    }

    pub fn snapshot(&self) -> Vec<Line> {
        lock(&self.lines).clone()
    }

    /// The first line (already printed or printed within `timeout`) matching `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Option<Line> {
        let mut seen = 0;
        let mut changes = self.count.subscribe();
        let search = async {
            loop {
                changes.borrow_and_update();
                {
                    let lines = lock(&self.lines);
                    if let Some(line) = lines[seen..].iter().find(|l| pred(l)) {
                        return Some(line.clone());
                    }
                    seen = lines.len();
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, search).await.ok().flatten()
    }
}

/// The spawned function process. Dropping it kills the process.
pub struct ChildProcess {
    child: Mutex<Child>,
    spawned_at: Instant,
    stdout: OutputLog,
    stderr: OutputLog,
    readers: Vec<JoinHandle<()>>,
}

impl ChildProcess {
    /// Spawns `binary` with exactly `env` as its environment (nothing inherited).
    pub fn spawn(binary: &Path, env: &[(String, String)]) -> std::io::Result<Self> {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned_at = Instant::now();
        let mut child = command.spawn()?;
        let echo = std::env::var("EMULATOR_ECHO").is_ok_and(|v| v == "1");
        let stdout = OutputLog::new();
        let stderr = OutputLog::new();
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            let prefix = echo.then_some("[child] ");
            readers.push(spawn_reader(pipe, stdout.clone(), prefix)?);
        }
        if let Some(pipe) = child.stderr.take() {
            let prefix = echo.then_some("[child stderr] ");
            readers.push(spawn_reader(pipe, stderr.clone(), prefix)?);
        }
        Ok(Self {
            child: Mutex::new(child),
            spawned_at,
            stdout,
            stderr,
            readers,
        })
    }

    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    pub fn pid(&self) -> u32 {
        lock(&self.child).id()
    }

    pub fn stdout(&self) -> &OutputLog {
        &self.stdout
    }

    pub fn stderr(&self) -> &OutputLog {
        &self.stderr
    }

    /// The exit status if the process has ended (without blocking).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    /// Kills the process (if still running) and reaps it.
    pub fn kill(&self) -> Option<ExitStatus> {
        let mut child = lock(&self.child);
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // An error here means it exited meanwhile; `wait` still reaps it.
        let _ = child.kill();
        child.wait().ok()
    }

    /// Waits (up to `timeout`) until both pipes reached end of file, so every line is captured.
    pub async fn drain(&self, timeout: Duration) {
        let until = Instant::now() + timeout;
        while Instant::now() < until && !self.readers.iter().all(JoinHandle::is_finished) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_reader(
    pipe: impl Read + Send + 'static,
    log: OutputLog,
    echo_prefix: Option<&'static str>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("child-output".into())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\r', '\n'])
                            .to_owned();
                        if let Some(prefix) = echo_prefix {
                            eprintln!("{prefix}{text}");
                        }
                        log.push(text);
                    }
                }
            }
        })
}
