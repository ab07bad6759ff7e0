//! The local host: the router over TCP (a hyper connection loop with slow-client bounds), plus the chat page from `frontend/`
//! (in production S3 and CloudFront serve the page, so it stays outside the API router and its
//! telemetry).
//!
//! **DNS rebinding.** Bound to a loopback address (the default, `127.0.0.1:3000`), the server
//! answers only requests that name it as a loopback host (`localhost`, `127.0.0.1`, `[::1]`,
//! any port). Otherwise a web page on `evil.example`, whose name the attacker re-points at
//! 127.0.0.1, would be same-origin with this server in the victim's browser and could use the
//! API (and its AWS credentials, with `--backend bedrock`). Other requests are refused with
//! 421 `misdirected_request`. Bound to any other address (an explicit `--listen` choice to
//! serve a network), there is no such check: the server is then reachable directly under names
//! it cannot know (a LAN address, a host name, a proxy's), so a Host rule would only break
//! those while protecting nothing.

use std::net::IpAddr;
use std::path::PathBuf;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::header;
use axum::http::uri::Authority;
use axum::response::IntoResponse;
use std::time::Duration;
use tokio::net::TcpListener;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::app::Misdirected;

/// `/api/*` goes to the API; everything else is a file of the page (or the API's JSON 404).
/// A fallback service, not routes, so the API router's own `MatchedPath` stays `/api/chat`.
/// A request refused by the Host check goes to the API whatever its path, which answers it.
pub fn with_frontend(api: Router, frontend: PathBuf) -> Router {
    let files = ServeDir::new(frontend)
        .append_index_html_on_directories(true)
        .call_fallback_on_method_not_allowed(true)
        .fallback(api.clone());
    let dispatch = tower::service_fn(move |req: Request| {
        let (api, files) = (api.clone(), files.clone());
        async move {
            let path = req.uri().path();
            let refused = req.extensions().get::<Misdirected>().is_some();
            if refused || path == "/api" || path.starts_with("/api/") {
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

/// Default of `CHATBOT_HEADER_READ_TIMEOUT_MS`.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Largest request head (request line + headers) accepted; larger gets 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Time given to in-flight requests (streams included) to finish on Ctrl-C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The local host's own settings (the service's are `crate::config::ServiceConfig`).
#[derive(Debug, Clone, clap::Args)]
pub struct LocalLimits {
    /// Longest a client may take to send its first byte, and then its request head (slowloris
    /// bound; the connection is closed).
    #[arg(long, env = "CHATBOT_HEADER_READ_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_ms: u64,
}

impl Default for LocalLimits {
    fn default() -> Self {
        LocalLimits {
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
        }
    }
}

impl LocalLimits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
}

/// Serve `router` until Ctrl-C. A hyper connection loop rather than `axum::serve`, because the
/// slow-client and header-size bounds are hyper settings `axum::serve` does not expose.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LocalLimits,
) -> std::io::Result<()> {
    serve_until(listener, router, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// As [`serve`], stopping when `shutdown` completes (tests stop the server this way), then
/// giving open connections the same grace period.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    limits: &LocalLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let header_read_timeout = limits.header_read_timeout();
    // The DNS-rebinding check (module docs), only when the server is reachable from this
    // machine alone.
    let check_host = listener.local_addr()?.ip().is_loopback();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
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
                read = tokio::time::timeout(header_read_timeout, stream.peek(&mut first)) => {
                    matches!(read, Ok(Ok(n)) if n > 0)
                }
                _ = stop_waiting.wait_for(|stop| *stop) => false,
            };
            if !first_byte {
                return;
            }
            // The peer address, as `ConnectInfo`: the client's identity for its budget. A
            // foreign Host is marked here and answered by the router, with its evidence.
            let router = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if check_host && !names_loopback(&req) {
                    req.extensions_mut().insert(Misdirected);
                }
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

/// The request names this server as a loopback host: its `Host` header and its URI's authority
/// (HTTP/2's `:authority`, or an absolute-form target), whichever it has, are `localhost` or a
/// loopback address, with any port. Neither is refused: a browser always sends `Host`.
fn names_loopback<B>(req: &Request<B>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().ok().is_some_and(is_loopback_name));
    let authority = req.uri().authority().map(|a| is_loopback_name(a.as_str()));
    match (host, authority) {
        (None, None) => false,
        (host, authority) => host.unwrap_or(true) && authority.unwrap_or(true),
    }
}

/// `localhost`, `127.0.0.1` (any 127.x address) or `[::1]`, with or without a port.
fn is_loopback_name(authority: &str) -> bool {
    // Userinfo has no place in a Host header; refusing it keeps `evil@localhost` out.
    let Ok(parsed) = authority.parse::<Authority>() else {
        return false;
    };
    if authority.contains('@') {
        return false;
    }
    let host = parsed.host();
    let ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost") || ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_any_port() {
        for ok in [
            "localhost",
            "LocalHost:3000",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:3000",
        ] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
            "user@localhost",
            "10.0.0.1:3000",
            "0.0.0.0:3000",
            "[::2]:3000",
            "",
            "local host",
        ] {
            assert!(!is_loopback_name(refused), "{refused}");
        }
    }

    #[test]
    fn host_and_authority_must_both_be_loopback() {
        let req = |uri: &str, host: Option<&str>| {
            let mut b = Request::builder().uri(uri);
            if let Some(h) = host {
                b = b.header(header::HOST, h);
            }
            b.body(()).unwrap()
        };
        assert!(names_loopback(&req("/api/health", Some("localhost:3000"))));
        assert!(names_loopback(&req("http://127.0.0.1:3000/", None)));
        assert!(!names_loopback(&req("/api/health", None)));
        assert!(!names_loopback(&req("/", Some("evil.example"))));
        assert!(!names_loopback(&req(
            "http://evil.example/",
            Some("localhost")
        )));
        assert!(!names_loopback(&req(
            "http://localhost/",
            Some("evil.example")
        )));
    }
}
