//! The local host: the router over TCP with `axum::serve`, plus the chat page from `frontend/`
//! (in production S3 and CloudFront serve the page, so it stays outside the API router and its
//! telemetry).

use std::path::PathBuf;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
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

pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
