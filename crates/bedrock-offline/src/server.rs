//! Serving the offline model on a TCP port: in the background for tests, in the foreground
//! for `chatbot offline-model`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::OfflineConfig;
use crate::service::build_router;
use crate::stats::OfflineStats;

/// How long [`OfflineServer::shutdown`] waits for connections to wind down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running offline model. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct OfflineServer {
    addr: SocketAddr,
    stats: OfflineStats,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl OfflineServer {
    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, ready for the SDK's `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> OfflineStats {
        self.stats.clone()
    }

    /// Stops accepting, ends hanging requests and open streams, and waits (up to 5 s) for the
    /// connections to close.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
        }
    }
}

impl Drop for OfflineServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Binds `addr` and serves until `shutdown` turns `true` (or its sender is dropped).
async fn bind(
    config: &OfflineConfig,
    addr: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> io::Result<(
    SocketAddr,
    OfflineStats,
    impl Future<Output = io::Result<()>> + Send + use<>,
)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // Frames are small and written one by one: without TCP_NODELAY, Nagle plus delayed ACKs
    // would hold tokens back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (router, stats) = build_router(config, Some(shutdown.clone()));
    let mut signal = shutdown;
    let serve = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = signal.wait_for(|stop| *stop).await;
        })
        .into_future();
    Ok((local, stats, serve))
}

/// Starts the offline model in the background on `addr` (port 0 = any free port).
pub async fn spawn(config: OfflineConfig, addr: SocketAddr) -> io::Result<OfflineServer> {
    let (tx, rx) = watch::channel(false);
    let (addr, stats, serve) = bind(&config, addr, rx).await?;
    Ok(OfflineServer {
        addr,
        stats,
        shutdown: tx,
        task: Some(tokio::spawn(serve)),
    })
}

/// Serves the offline model in the foreground until Ctrl-C (for `chatbot offline-model`).
pub async fn run(config: OfflineConfig, addr: SocketAddr) -> io::Result<()> {
    let (tx, rx) = watch::channel(false);
    let (local, _stats, serve) = bind(&config, addr, rx).await?;
    println!("offline model listening on http://{local}");
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        } else {
            // No signal handler available: keep serving rather than stopping at once.
            std::future::pending::<()>().await;
        }
    });
    serve.await
}
