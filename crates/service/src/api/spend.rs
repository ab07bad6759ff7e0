//! The budget check around a model call: reserve the request's worst case before the model is
//! called, settle to its cost after (see [`crate::budget`]).

use rust_decimal::Decimal;

use crate::app::AppState;
use crate::budget::worst_case::WorstCase;
use crate::budget::{ClientId, Reservation};
use crate::error::ApiError;
use crate::telemetry::context::RequestCtx;
use crate::validation::ChatRequest;
use crate::variants::Variant;

/// Reserve the worst case of `req` on the budgets that apply (none set: nothing happens).
pub async fn reserve(
    state: &AppState,
    ctx: &RequestCtx,
    client: &ClientId,
    req: &ChatRequest,
    variant: &Variant,
) -> Result<Option<Reservation>, ApiError> {
    if !state.budgets().enabled() {
        return Ok(None);
    }
    let config = state.config();
    let models: Vec<&str> = std::iter::once(variant.model_id.as_str())
        .chain(state.variants().fallback())
        .collect();
    // The longest the request can still bill compute for: until it must have answered.
    let lambda = config
        .lambda_memory_mb
        .map(|mb| (mb, ctx.deadline.answer_time_left()));
    let worst = WorstCase {
        prices: &ctx.telemetry.pricing,
        models: &models,
        system_prompt: &config.system_prompt,
        max_tokens: config.max_tokens,
        lambda,
        via_api_gateway: ctx.via_api_gateway,
        guardrail: ctx.telemetry.guardrail_on,
    };
    // Start-up refuses budgets with an unpriced model, so this is always known.
    let amount = worst.cost(req).ok_or(ApiError::Internal)?;
    state.budgets().reserve(ctx, client, amount).await
}

/// The figure a reservation settles to: the request's cost — estimated when Bedrock never
/// reported usage — or `None` (the whole reservation stays spent) when it has no price.
pub fn settlement(ctx: &RequestCtx) -> Option<Decimal> {
    ctx.settle_cost().total_usd
}
