//! A moto server (the tests' CloudWatch and CloudWatch Logs) on a free loopback port, killed
//! when dropped.
//!
//! Installed by `scripts/setup-test-deps`; its path comes from `CHATBOT_TEST_MOTO_SERVER`
//! (default `.venv-test/bin/moto_server`). A missing binary fails the test: it is never skipped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn binary() -> PathBuf {
    std::env::var_os("CHATBOT_TEST_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/moto_server")
        })
}

impl Moto {
    /// Starts moto with `env` added to its environment (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn start(env: &[(&str, &str)]) -> Moto {
        Self::launch(env, false)
    }

    /// Starts moto serving one request at a time (`moto_serial.py`): DynamoDB's per-item write
    /// serialisation, which concurrency tests rely on and stock moto_server lacks.
    pub fn start_serialized() -> Moto {
        Self::launch(&[], true)
    }

    fn launch(env: &[(&str, &str)], serialized: bool) -> Moto {
        let bin = binary();
        assert!(
            bin.is_file(),
            "moto_server not found at {}: run scripts/setup-test-deps (it installs moto into \
             .venv-test), or point CHATBOT_TEST_MOTO_SERVER at a moto_server binary",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut command = if serialized {
            // The venv's python, next to its moto_server.
            let python = bin.with_file_name("python");
            let mut c = Command::new(python);
            c.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/moto_rig/moto_serial.py"
            ))
            .args(["127.0.0.1", &port.to_string()]);
            c
        } else {
            let mut c = Command::new(&bin);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            c
        };
        command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // A TCP connect, not an HTTP request: with IAM enforcement on, moto counts requests.
        let until = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited early: {status}");
            }
            assert!(
                Instant::now() < until,
                "moto_server did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto behind the CBOR relay: what the tests point the SDK and the CLI at.
pub struct MotoStack {
    pub proxy: super::cbor_proxy::CborProxy,
    pub moto: Moto,
}

impl MotoStack {
    pub async fn start() -> MotoStack {
        let moto = Moto::start(&[]);
        let proxy = super::cbor_proxy::CborProxy::start(&moto.endpoint).await;
        MotoStack { proxy, moto }
    }

    /// The endpoint for `--endpoint-url` and the SDK.
    pub fn endpoint(&self) -> &str {
        &self.proxy.endpoint
    }
}
