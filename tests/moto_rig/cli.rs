//! Runs the compiled `chatbot` binary as a subprocess with a clean environment: no inherited AWS
//! settings, an empty HOME, the EC2 metadata probe off — plus what the test adds.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A fresh empty directory under the system temp dir.
pub fn empty_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatbot-cost-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Dummy credentials and a region, as moto accepts.
pub const TEST_AWS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

/// `chatbot <args>` with `env` on top of a clean base; killed after 120 s.
pub fn chatbot(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = empty_dir("home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatbot"));
    command
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn chatbot");
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    // Both pipes drained concurrently so a full pipe cannot stall the child.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chatbot {args:?} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed: started.elapsed(),
    };
    let _ = std::fs::remove_dir_all(&home);
    // COST_TEST_ECHO=1 (with --nocapture) shows each run, e.g. to copy real output into docs.
    if std::env::var("COST_TEST_ECHO").is_ok_and(|v| v == "1") {
        println!(
            "$ chatbot {}\n{}[stderr]\n{}[exit {:?}]\n",
            args.join(" "),
            output.stdout,
            output.stderr,
            output.code()
        );
    }
    output
}
