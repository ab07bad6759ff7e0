//! The router: every route and every cross-cutting layer, built by [`app`] for both hosts.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::api;
use crate::budget::Budgets;
use crate::config::ServiceConfig;
use crate::conversations::Conversations;
use crate::error::ApiError;
use crate::model::ModelClient;
use crate::request::MAX_BODY_BYTES;
use crate::secrets::HashKey;
use crate::telemetry::{Telemetry, TelemetryLayer};
use crate::validation::Limits;
use crate::variants::Variants;

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceConfig,
    model: ModelClient,
    variants: Variants,
    budgets: Budgets,
    conversations: Conversations,
    hash_key: HashKey,
    telemetry: Arc<Telemetry>,
}

/// The parts [`AppState::new`] puts together (built once by `hosts::start`).
pub struct Parts {
    pub config: ServiceConfig,
    pub model: ModelClient,
    pub variants: Variants,
    pub budgets: Budgets,
    pub conversations: Conversations,
    pub hash_key: HashKey,
    pub telemetry: Arc<Telemetry>,
}

impl AppState {
    pub fn new(p: Parts) -> Self {
        AppState {
            inner: Arc::new(Inner {
                config: p.config,
                model: p.model,
                variants: p.variants,
                budgets: p.budgets,
                conversations: p.conversations,
                hash_key: p.hash_key,
                telemetry: p.telemetry,
            }),
        }
    }

    pub fn budgets(&self) -> &Budgets {
        &self.inner.budgets
    }

    pub fn conversations(&self) -> &Conversations {
        &self.inner.conversations
    }

    pub fn hash_key(&self) -> &HashKey {
        &self.inner.hash_key
    }

    pub fn variants(&self) -> &Variants {
        &self.inner.variants
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    pub fn model(&self) -> &ModelClient {
        &self.inner.model
    }

    /// The model most traffic goes to (the heaviest variant's).
    pub fn model_id(&self) -> &str {
        let list = self.inner.variants.list();
        let main = list
            .iter()
            .max_by_key(|v| v.weight)
            .expect("at least one variant");
        &main.model_id
    }

    pub fn limits(&self) -> Limits {
        self.inner.config.limits()
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.inner.telemetry
    }
}

/// Every route of the API with its layers, outermost first: telemetry (so even a panic or a
/// CORS preflight leaves its evidence), the response headers every API answer carries, a panic
/// in a response body → an `error` event (`crate::body_panic`), a panic in a handler → 500, a
/// host's refusal ([`Misdirected`]), the origin check (requests that skipped CloudFront), CORS,
/// body size limit. (The body read deadline is the chat extractor's, `crate::request`.)
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    if state.config().diagnostic_routes {
        router = router
            .route("/api/_diag/panic", post(api::diagnostic::panic))
            .route(
                "/api/_diag/panic-midstream",
                post(api::diagnostic::panic_midstream),
            );
    }
    router
        .route("/api/chat", post(api::chat::chat))
        .route("/api/chat/stream", post(api::stream::chat_stream))
        .route("/api/health", get(api::health::health))
        .route(
            "/api/conversations/{id}",
            get(api::conversations::get).delete(api::conversations::delete),
        )
        .fallback(api::unmatched::not_found)
        .method_not_allowed_fallback(api::unmatched::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors(state.config()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::origin::require_origin_secret,
        ))
        .layer(axum::middleware::from_fn(refuse_misdirected))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(
            crate::body_panic::catch_body_panic,
        ))
        // On every API answer, errors and streams included: never sniff a JSON error into
        // HTML, never keep a reply (private text) in a browser's or a proxy's cache.
        // Overriding: axum's SSE sets `no-cache`, which still allows storing.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(TelemetryLayer::new(state.telemetry().clone()))
        .with_state(state)
}

/// A host's refusal of a request for a reason of its transport, put on the request by the host
/// (today only the local host's DNS-rebinding check, `crate::hosts::local`). The router answers
/// it, inside the telemetry layer, so a refused request leaves its evidence like any other.
#[derive(Debug, Clone, Copy)]
pub struct Misdirected;

async fn refuse_misdirected(req: Request, next: Next) -> Response {
    if req.extensions().get::<Misdirected>().is_some() {
        return ApiError::MisdirectedRequest.into_response();
    }
    next.run(req).await
}

fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response {
    // The panic hook has already logged it with the request id; the client learns nothing inside.
    ApiError::Internal.into_response()
}

fn cors(config: &ServiceConfig) -> CorsLayer {
    let origins = &config.cors_origins;
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-amz-content-sha256"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(std::time::Duration::from_secs(600))
}
