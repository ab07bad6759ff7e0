//! Which model answers a request: its variant's (see [`crate::variants`]), or — once, when that
//! model is throttled or unavailable after its retries — the configured fallback.

use std::future::Future;

use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::app::AppState;
use crate::deadline::{Deadline, FALLBACK_MIN_TIME};
use crate::error::ApiError;
use crate::model::ModelError;
use crate::telemetry::context::RequestCtx;
use crate::validation::ChatRequest;
use crate::variants::Variant;

/// Assign the request its variant and note it on the request's evidence.
pub fn assign<'a>(
    state: &'a AppState,
    ctx: &RequestCtx,
    req: &ChatRequest,
) -> Result<&'a Variant, ApiError> {
    let variant = state
        .variants()
        .assign(req.conversation_id.as_deref(), req.variant.as_deref())?;
    {
        let mut r = ctx.record();
        r.conversation_id = req.conversation_id.clone();
        r.variant = Some(variant.name.clone());
    }
    Ok(variant)
}

/// Call `primary`; on throttling or unavailability (after the SDK's retries) call the fallback
/// model once — if enough of the request's deadline remains for it to be worth starting.
/// Returns the value and the id of the model that produced it.
pub async fn with_fallback<T, F, Fut>(
    state: &AppState,
    deadline: &Deadline,
    primary: &str,
    mut call: F,
) -> Result<(T, String), ModelError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<T, ModelError>>,
{
    let first = call(primary.to_owned()).await;
    let fallback = state.variants().fallback().filter(|f| *f != primary);
    match (first, fallback) {
        (
            Err(e @ (ModelError::Throttled { .. } | ModelError::Unavailable { .. })),
            Some(fallback),
        ) if deadline.remaining() < FALLBACK_MIN_TIME => {
            tracing::warn!(
                modelId = primary,
                modelError = e.kind(),
                fallbackModelId = fallback,
                remainingMs = deadline.remaining().as_millis() as u64,
                "fallback skipped: too little of the request's deadline remains"
            );
            RequestCtx::with_current(|ctx| ctx.record().fallback_skipped = true);
            Err(e)
        }
        (
            Err(e @ (ModelError::Throttled { .. } | ModelError::Unavailable { .. })),
            Some(fallback),
        ) => {
            tracing::warn!(
                modelId = primary,
                modelError = e.kind(),
                fallbackModelId = fallback,
                "falling back"
            );
            RequestCtx::with_current(|ctx| {
                ctx.record().fallback = true;
                ctx.span().set_attribute("annotation.fallback", true);
            });
            let value = call(fallback.to_owned()).await?;
            Ok((value, fallback.to_owned()))
        }
        (first, _) => first.map(|v| (v, primary.to_owned())),
    }
}
