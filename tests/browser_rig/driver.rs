//! ChromeDriver as a child process on a loopback port, and headless Chromium sessions through it.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const SETUP_HINT: &str = "run scripts/setup-test-deps (it installs Debian's chromium and \
     chromium-driver) or point the variable at the binary";

/// A binary named by `var`, else `default`; a missing one fails the test (never a skip).
fn binary(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found (env {var}): {SETUP_HINT}",
        path.display()
    );
    path
}

/// A running ChromeDriver; dropping it kills the process.
pub struct ChromeDriver {
    child: Child,
    url: String,
    chromium: PathBuf,
}

impl ChromeDriver {
    /// Starts ChromeDriver and waits until it accepts connections. Its log goes to `log`.
    pub fn start(log: &Path) -> Self {
        let driver = binary("CHATBOT_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = binary("CHATBOT_TEST_CHROMIUM", "/usr/bin/chromium");
        // A free port: bind port 0, read the port, let it go. ChromeDriver cannot report the
        // port it picked itself, so this small race is the usual way.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let log = File::create(log).expect("create the ChromeDriver log");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let mut this = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
        };
        this.wait_listening(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        this
    }

    fn wait_listening(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ChromeDriver exited at start-up ({status}); see its log");
            }
            assert!(
                Instant::now() < deadline,
                "ChromeDriver did not listen on {addr} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new headless Chromium session with a fresh profile (deleted when the profile guard
    /// drops). Close the client before dropping the guard.
    pub async fn session(&self) -> (Client, Profile) {
        let profile = Profile::new();
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": self.chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox", // the tests may run as root (CI containers)
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", profile.0.display()),
                    "--window-size=1280,900",
                ],
            }),
        );
        // ChromeDriver speaks plain HTTP on loopback: a bare HTTP connector, no TLS stack
        // (fantoccini's rustls connector would need a process-wide crypto provider chosen).
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("no Chromium session from ChromeDriver: {e}"));
        (client, profile)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh Chromium profile directory, removed on drop.
pub struct Profile(PathBuf);

impl Profile {
    fn new() -> Self {
        // No tempfile crate among the dev-dependencies: a unique name under the temp dir.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("chatbot-browser-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the Chromium profile dir");
        Self(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
