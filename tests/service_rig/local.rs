//! The real local host (`chatbot_service::hosts::local::serve_until`: hyper's connection loop with its
//! header-size and header-read bounds) on an ephemeral loopback port, stoppable by a test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct LocalServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl LocalServer {
    pub async fn start(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chatbot_service::hosts::local::serve_until(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
        ));
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
