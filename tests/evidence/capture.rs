//! Process-wide capture of what a test binary's requests leave in logs and traces: the global
//! JSON subscriber writes into a buffer, and a thread plays X-Ray daemon on a loopback UDP port.
//! Installed once per process (the subscriber is global); tests find their own requests in it
//! by request id and trace id, so tests running in parallel do not disturb each other.

use std::net::UdpSocket;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chatbot_service::config::ServiceConfig;
use chatbot_service::telemetry::logging::{self, TelemetryGuard};
use serde_json::Value;

use super::xray;

pub struct Evidence {
    logs: Arc<Mutex<Vec<u8>>>,
    /// Every datagram received, parsed and checked by `xray::parse_datagram`.
    datagrams: Arc<Mutex<Vec<Result<Value, String>>>>,
    _guard: TelemetryGuard,
}

/// A log writer appending to the shared buffer (one `write` per formatted line).
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static EVIDENCE: OnceLock<Evidence> = OnceLock::new();

/// The capture, installed on first use: JSON log lines (as in Lambda) and X-Ray export on.
pub fn evidence() -> &'static Evidence {
    EVIDENCE.get_or_init(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut config = ServiceConfig::defaults();
        config.xray_daemon_address = Some(socket.local_addr().unwrap().to_string());
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let sink = datagrams.clone();
        // A thread, not a task: it outlives every test's runtime and is not counted as one of
        // their tasks.
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            loop {
                if let Ok(n) = socket.recv(&mut buf) {
                    sink.lock().unwrap().push(xray::parse_datagram(&buf[..n]));
                }
            }
        });
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = logs.clone();
        let default_hook = std::panic::take_hook();
        let guard = logging::init_with_writer(&config, true, move || BufWriter(writer.clone()))
            .expect("the only subscriber of this test binary");
        // The service's panic hook logs a JSON line; keep the default one too, or a failing
        // assertion would print nothing.
        let service_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            service_hook(info);
            default_hook(info);
        }));
        Evidence {
            logs,
            datagrams,
            _guard: guard,
        }
    })
}

impl Evidence {
    /// Every log line so far, each of which must be JSON.
    pub fn log_lines(&self) -> Vec<Value> {
        let raw = self.logs.lock().unwrap().clone();
        String::from_utf8(raw)
            .expect("logs are UTF-8")
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("log line not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The `request completed` lines of one request.
    pub fn summaries(&self, request_id: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["message"] == "request completed" && l["requestId"] == request_id)
            .collect()
    }

    /// `panic` lines raised anywhere but in test code (a failing assertion in a test of the same
    /// binary is a panic too, and is that test's business).
    pub fn server_panics(&self) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["message"] == "panic")
            .filter(|l| !l["location"].as_str().unwrap_or("").starts_with("tests/"))
            .collect()
    }

    /// Every X-Ray document received so far; a malformed datagram fails the test.
    pub fn segments(&self) -> Vec<Value> {
        self.datagrams
            .lock()
            .unwrap()
            .iter()
            .map(|d| {
                d.clone()
                    .unwrap_or_else(|e| panic!("bad X-Ray datagram: {e}"))
            })
            .collect()
    }

    /// The (sub)segments of `trace_id` once its request segment (the one without a parent)
    /// has arrived, checked by `xray::check_trace`.
    pub async fn trace(&self, trace_id: &str) -> Vec<Value> {
        for _ in 0..100 {
            let docs = self.segments();
            if let Ok(nodes) = xray::check_trace(&docs, trace_id)
                && nodes.iter().any(|n| n.get("parent_id").is_none())
            {
                return nodes;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let docs = self.segments();
        panic!(
            "no complete trace {trace_id}: {:?}",
            xray::check_trace(&docs, trace_id)
        );
    }
}
