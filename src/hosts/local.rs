//! The local host: the router over TCP with `axum::serve`, plus the chat page from `frontend/`
//! (in production S3 and CloudFront serve the page, so it stays outside the API router and its
//! telemetry).

use std::path::PathBuf;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use std::time::Duration;

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
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
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
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period over; dropping open connections");
    }
    Ok(())
}
