//! `POST /api/chat`: the whole reply as one JSON document.

use axum::Json;
use axum::extract::{Extension, State};
use serde::Serialize;

use super::model_choice::{assign, with_fallback};
use super::reply::{GuardrailBody, LatencyBody, UsageBody, cost_body};
use super::spend;
use super::turn::{self, Prepared};
use crate::app::AppState;
use crate::budget::ClientId;
use crate::error::ApiError;
use crate::pricing::CostBreakdown;
use crate::request::ChatRequestBody;
use crate::telemetry::layer::Ctx;
use crate::telemetry::model_span::record_content;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatResponse {
    request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<String>,
    /// Conversation memory: stored turns left out of the model's input to fit the limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_turns: Option<usize>,
    model: String,
    variant: String,
    reply: String,
    stop_reason: String,
    usage: UsageBody,
    cost: Option<CostBreakdown>,
    latency_ms: LatencyBody,
    /// Present when the guardrail intervened (`stopReason` `guardrail_intervened`).
    #[serde(skip_serializing_if = "Option::is_none")]
    guardrail: Option<GuardrailBody>,
}

pub async fn chat(
    State(state): State<AppState>,
    Extension(Ctx(ctx)): Extension<Ctx>,
    client: ClientId,
    body: ChatRequestBody,
) -> Result<Json<ChatResponse>, ApiError> {
    let prepared = turn::prepare(&state, &ctx, body).await?;
    let req = &prepared.req;
    let variant = assign(&state, &ctx, req)?;
    let reservation = spend::reserve(&state, &ctx, &client, req, variant).await?;
    let (model, req_ref, deadline) = (state.model(), req, ctx.deadline.at());
    let answered = with_fallback(&state, &ctx.deadline, &variant.model_id, |id| async move {
        model.converse(&id, req_ref, deadline).await
    })
    .await;
    if let Some(r) = reservation {
        r.settle(&ctx, spend::settlement(&ctx)).await;
    }
    let (completion, model_id) = answered?;
    record_content(req.last_user_text(), &completion.text);
    let Prepared {
        req,
        turn,
        message,
        dropped_turns,
    } = prepared;
    let guardrail = GuardrailBody::of(completion.guardrail.as_ref());
    // A blocked turn stays out of the conversation: stored, it would be sent (and blocked)
    // again with every later message.
    if guardrail.is_none() {
        turn::store(&ctx, turn, message.as_deref(), &completion.text).await?;
    }
    let cost = ctx.settle_cost();
    Ok(Json(ChatResponse {
        request_id: ctx.request_id.clone(),
        conversation_id: req.conversation_id,
        dropped_turns,
        model: model_id,
        variant: variant.name.clone(),
        reply: completion.text,
        stop_reason: completion.stop_reason,
        usage: completion.usage.into(),
        cost: cost_body(cost),
        latency_ms: LatencyBody::now(&ctx),
        guardrail,
    }))
}
