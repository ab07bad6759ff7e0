//! A panic while a response body is produced — a streamed reply, after its status and headers
//! have gone out — caught where the body is polled.
//!
//! tower-http's `CatchPanicLayer` covers only the handler's future. Without this layer a panic
//! in a body unwinds into the host, which drops the body: the client sees a cut connection and
//! the telemetry layer records a client abort. Caught here instead, the request is recorded as
//! `internal` (effective status 500: `Errors` 1, an ERROR summary line, a fault in the trace);
//! an SSE body ends with an `error` event carrying the request id, like any failure after a
//! stream began, and any other body ends in an error, so the host cuts the connection rather
//! than pass a truncated body off as complete.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;

use crate::error::ApiError;
use crate::telemetry::context::RequestCtx;
use crate::telemetry::layer::Ctx;

/// Middleware (inside the telemetry layer): wraps every response body in a [`PanicSafeBody`].
pub async fn catch_body_panic(req: Request, next: Next) -> Response {
    let ctx = req.extensions().get::<Ctx>().map(|Ctx(ctx)| ctx.clone());
    let res = next.run(req).await;
    let sse = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    res.map(|inner| {
        Body::new(PanicSafeBody {
            inner: Some(inner),
            ctx,
            sse,
        })
    })
}

pub struct PanicSafeBody {
    /// `None` once it has panicked: a body that panicked is never polled again.
    inner: Option<Body>,
    ctx: Option<Arc<RequestCtx>>,
    sse: bool,
}

impl PanicSafeBody {
    /// The frame that replaces the rest of the body.
    fn after_panic(&mut self) -> Result<Frame<Bytes>, axum::Error> {
        // The panic hook has already logged the panic, with the request id.
        let err = ApiError::Internal;
        let request_id = match &self.ctx {
            Some(ctx) => {
                ctx.record().error_code = Some(err.code());
                ctx.request_id.clone()
            }
            None => String::new(),
        };
        if !self.sse {
            return Err(axum::Error::new(err));
        }
        let data = serde_json::to_string(&err.body(&request_id)).expect("error bodies serialise");
        Ok(Frame::data(Bytes::from(format!(
            "event: error\ndata: {data}\n\n"
        ))))
    }
}

impl http_body::Body for PanicSafeBody {
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
        // The body is never touched again after a panic, so its state cannot be observed
        // half-updated.
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
            Ok(polled) => polled,
            Err(_) => {
                // Dropping what is left (a model stream, a budget reservation) runs their
                // clean-up now; a panic there too must not escape either.
                let inner = this.inner.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
                Poll::Ready(Some(this.after_panic()))
            }
        }
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::{StreamExt, stream};

    use super::*;

    /// A body that sends `first`, then panics when polled again.
    fn panics_after(first: &'static str) -> Body {
        let first = stream::iter([Ok::<_, Infallible>(Bytes::from_static(first.as_bytes()))]);
        let panics = stream::poll_fn(|_| -> Poll<Option<Result<Bytes, Infallible>>> {
            panic!("a body that panics (expected in this test)")
        });
        Body::from_stream(first.chain(panics))
    }

    fn safe(inner: Body, sse: bool) -> Body {
        Body::new(PanicSafeBody {
            inner: Some(inner),
            ctx: None,
            sse,
        })
    }

    #[tokio::test]
    async fn an_sse_body_that_panics_ends_with_an_error_event() {
        let body = safe(panics_after("event: meta\ndata: {}\n\n"), true);
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        let (sent, rest) = text.split_at("event: meta\ndata: {}\n\n".len());
        assert_eq!(sent, "event: meta\ndata: {}\n\n");
        let data = rest
            .strip_prefix("event: error\ndata: ")
            .and_then(|r| r.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("{rest:?}"));
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["code"], "internal", "{v}");
        assert_eq!(v["message"], "internal error", "{v}");
    }

    #[tokio::test]
    async fn any_other_body_that_panics_ends_in_an_error_not_a_short_success() {
        let body = safe(panics_after("{\"partial\":"), false);
        assert!(axum::body::to_bytes(body, usize::MAX).await.is_err());
    }

    #[tokio::test]
    async fn a_body_that_does_not_panic_is_unchanged() {
        let body = safe(Body::from("{\"ok\":true}"), false);
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"{\"ok\":true}");
    }
}
