//! The local host: the router over TCP (a hyper connection loop with slow-client bounds), plus the chat page from `frontend/`
//! (in production S3 and CloudFront serve the page, so it stays outside the API router and its
//! telemetry).

use std::path::PathBuf;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::IntoResponse;
use std::time::Duration;
use tokio::net::TcpListener;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// `/api/*` goes to the API; everything else is a file of the page (or the API's JSON 404).
/// A fallback service, not routes, so the API router's own `MatchedPath` stays `/api/chat`.
pub fn with_frontend(api: Router, frontend: PathBuf) -> Router {
    let files = ServeDir::new(frontend)
        .append_index_html_on_directories(true)
        .call_fallback_on_method_not_allowed(true)
        .fallback(api.clone());
    let dispatch = tower::service_fn(move |req: Request| {
        let (api, files) = (api.clone(), files.clone());
        async move {
            let path = req.uri().path();
            if path == "/api" || path.starts_with("/api/") {
                api.oneshot(req).await
            } else {
                files.oneshot(req).await.map(IntoResponse::into_response)
            }
        }
    });
    Router::new().fallback_service(dispatch)
}

/// Where the page is: the configured folder, else `./frontend`, else the one in the source tree.
pub fn frontend_dir(configured: Option<PathBuf>) -> Option<PathBuf> {
    let candidates = configured.into_iter().chain([
        PathBuf::from("frontend"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/frontend")),
    ]);
    candidates
        .into_iter()
        .find(|p| p.join("index.html").is_file())
}

/// Longest a client may take to send a request's headers (slowloris bound).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line + headers) accepted; larger gets 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Time given to in-flight requests (streams included) to finish on Ctrl-C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serve `router` until Ctrl-C. A hyper connection loop rather than `axum::serve`, because the
/// slow-client and header-size bounds are hyper settings `axum::serve` does not expose.
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    serve_until(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// As [`serve`], stopping when `shutdown` completes (tests stop the server this way), then
/// giving open connections the same grace period.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let graceful = GracefulShutdown::new();
    let (stopping, stop_waiting) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (builder, router, watcher) = (builder.clone(), router.clone(), graceful.watcher());
        let mut stop_waiting = stop_waiting.clone();
        tokio::spawn(async move {
            // hyper-util sniffs HTTP/1 vs HTTP/2 from the first bytes before hyper's header-read
            // timeout starts, with no deadline of its own: a client that connects and sends
            // nothing would hold the connection forever. Its first byte gets the same bound.
            let mut first = [0u8; 1];
            let first_byte = tokio::select! {
                read = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)) => {
                    matches!(read, Ok(Ok(n)) if n > 0)
                }
                _ = stop_waiting.wait_for(|stop| *stop) => false,
            };
            if !first_byte {
                return;
            }
            // The peer address, as `ConnectInfo`: the client's identity for its budget.
            let router = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let service = TowerToHyperService::new(router);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; dropping open connections");
    }
    Ok(())
}
