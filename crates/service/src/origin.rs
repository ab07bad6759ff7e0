//! Requests must come through the site's CloudFront distribution: CloudFront adds the
//! `x-origin-verify` header with a deploy secret, and with `CHATBOT_ORIGIN_SECRETS` set every
//! request without one of the configured values is refused (403 `forbidden`) before any
//! handler runs — so a direct call to the HTTP API or the Function URL can neither spend nor
//! get around the per-client budgets (whose client address CloudFront reports). Two values are
//! accepted during a rotation (docs/deploy.md).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::ApiError;

pub const ORIGIN_SECRET_HEADER: &str = "x-origin-verify";

pub async fn require_origin_secret(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let secrets = &state.config().origin_secrets;
    if secrets.is_empty() {
        return next.run(req).await;
    }
    let presented = req.headers().get(ORIGIN_SECRET_HEADER);
    let ok = presented.is_some_and(|v| secrets.iter().any(|s| s.matches(v.as_bytes())));
    if ok {
        next.run(req).await
    } else {
        ApiError::Forbidden.into_response()
    }
}
