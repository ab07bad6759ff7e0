//! The real local host (`chatbot_service::hosts::local::serve_until`: hyper's connection loop with its
//! header-size and header-read bounds, and its Host check on loopback) on an ephemeral port,
//! stoppable by a test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use chatbot_service::hosts::local::LocalLimits;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct LocalServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl LocalServer {
    /// On loopback (as `chatbot serve` runs by default), with the default limits.
    pub async fn start(router: Router) -> Self {
        Self::start_with("127.0.0.1:0", router, LocalLimits::default()).await
    }

    /// On `bind` (an ephemeral port of it), with `limits`.
    pub async fn start_with(bind: &str, router: Router, limits: LocalLimits) -> Self {
        let listener = TcpListener::bind(bind).await.unwrap();
        let mut addr = listener.local_addr().unwrap();
        if addr.ip().is_unspecified() {
            // Bound to every interface: reach it through loopback.
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            chatbot_service::hosts::local::serve_until(listener, router, &limits, async move {
                let _ = stopped.await;
            })
            .await
        });
        LocalServer { addr, stop, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops accepting, then waits for every open connection to finish. Returns how long that
    /// took, or `None` if connections were still open after `limit` (something held one open).
    pub async fn stop(self, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        let _ = self.stop.send(());
        match tokio::time::timeout(limit, self.task).await {
            Ok(joined) => {
                joined.expect("server task").expect("server ran");
                Some(t.elapsed())
            }
            Err(_) => None,
        }
    }
}
