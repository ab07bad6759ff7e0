//! The telemetry tower layer: the one place a request's evidence is started and finished.
//!
//! On the way in it assigns the request id (Lambda's, or a fresh UUID), continues the caller's
//! X-Ray trace, opens the request span and makes the [`RequestCtx`] current for the handler. On
//! the way out it stamps `x-request-id` and wraps the body; when the body ends — or is dropped
//! because the client went away — [`finish`] writes the summary line, the EMF document and
//! closes the span. Streaming replies are therefore measured to their last byte.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderValue, Request, Response};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::Frame;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::ErrorCode;
use crate::telemetry::Telemetry;
use crate::telemetry::context::RequestCtx;
use crate::telemetry::finish::finish;
use crate::telemetry::xray;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Clone)]
pub struct TelemetryLayer {
    telemetry: Arc<Telemetry>,
}

impl TelemetryLayer {
    pub fn new(telemetry: Arc<Telemetry>) -> Self {
        TelemetryLayer { telemetry }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = TelemetryService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TelemetryService {
            inner,
            telemetry: self.telemetry.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TelemetryService<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

/// Handlers reach the request's context with `Extension<Ctx>`.
#[derive(Clone)]
pub struct Ctx(pub Arc<RequestCtx>);

impl<S, B> Service<Request<B>> for TelemetryService<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let ctx = Arc::new(start(&self.telemetry, &req));
        req.extensions_mut().insert(Ctx(ctx.clone()));
        let span = ctx.span();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let Ok(mut res) = ctx.clone().scope(fut.instrument(span)).await;
            {
                let mut record = ctx.record();
                record.status = Some(res.status().as_u16());
                if let Some(code) = res.extensions().get::<ErrorCode>() {
                    record.error_code.get_or_insert(*code);
                }
            }
            if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
                res.headers_mut().insert(REQUEST_ID_HEADER, v);
            }
            Ok(res.map(|body| Body::new(TelemetryBody::new(body, ctx))))
        })
    }
}

fn start<B>(telemetry: &Arc<Telemetry>, req: &Request<B>) -> RequestCtx {
    let lambda = req.extensions().get::<lambda_runtime::Context>();
    let request_id = lambda
        .map(|c| c.request_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let cold_start = telemetry.take_cold_start();
    // lambda_http copies the invocation's trace header onto the request; locally a caller may
    // send one too. Either way the trace continues from it.
    let trace_header = req
        .headers()
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| lambda.and_then(|c| c.xray_trace_id.clone()));
    let span = tracing::info_span!(
        target: "chatbot::request",
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
        annotation.request_id = %request_id,
        annotation.cold_start = cold_start,
        annotation.model = tracing::field::Empty,
        annotation.variant = tracing::field::Empty,
        annotation.stop_reason = tracing::field::Empty,
        annotation.error_code = tracing::field::Empty,
        annotation.guardrail_action = tracing::field::Empty,
    );
    let xray_trace_id = xray::continue_trace(&span, trace_header.as_deref());
    RequestCtx::new(
        telemetry.clone(),
        request_id,
        xray_trace_id,
        cold_start,
        method,
        route,
        via_api_gateway(req),
        lambda.map(lambda_runtime::Context::deadline),
        span,
    )
}

/// API Gateway bills per request; a Function URL (same v2 event shape) and the local server do not.
fn via_api_gateway<B>(req: &Request<B>) -> bool {
    use lambda_http::request::RequestContext;
    match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(c)) => !c
            .domain_name
            .as_deref()
            .is_some_and(|d| d.contains(".lambda-url.")),
        _ => false,
    }
}

/// The response body, watched: its end (or its drop) finishes the request's telemetry.
pub struct TelemetryBody {
    /// `None` once dropped; `Body` is `Unpin`, so no pin projection is needed.
    inner: Option<Body>,
    ctx: Option<Arc<RequestCtx>>,
}

impl TelemetryBody {
    fn new(inner: Body, ctx: Arc<RequestCtx>) -> Self {
        TelemetryBody {
            inner: Some(inner),
            ctx: Some(ctx),
        }
    }
}

impl Drop for TelemetryBody {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            // Dropped before its end: the client went away (or the host gave up on it).
            let complete = self
                .inner
                .as_ref()
                .is_none_or(http_body::Body::is_end_stream);
            // Drop the body first: a model stream inside settles its call (as cancelled) now,
            // so the evidence below includes it.
            let inner = self.inner.take();
            ctx.sync_scope(|| drop(inner));
            finish(&ctx, !complete);
        }
    }
}

impl http_body::Body for TelemetryBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let Some(ctx) = this.ctx.as_ref() else {
            return Pin::new(inner).poll_frame(cx);
        };
        // Streaming bodies run model code while polled: keep the request current for it.
        let polled = ctx.sync_scope(|| ctx.span().in_scope(|| Pin::new(inner).poll_frame(cx)));
        if let Poll::Ready(None | Some(Err(_))) = &polled {
            let ctx = this.ctx.take().expect("checked above");
            finish(&ctx, false);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map(http_body::Body::size_hint)
            .unwrap_or_default()
    }
}
