//! `GET /api/conversations/{id}` (the stored messages, to restore a conversation after a reload
//! or on another device) and `DELETE /api/conversations/{id}` (forgotten now: `204`, then
//! `404`).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::telemetry::layer::Ctx;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationBody {
    conversation_id: String,
    messages: Vec<StoredMessage>,
    turns: u64,
    /// RFC 3339, UTC.
    updated_at: String,
    expires_at: String,
}

#[derive(Serialize)]
pub struct StoredMessage {
    role: &'static str,
    content: String,
}

fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn enabled(state: &AppState) -> Result<(), ApiError> {
    if state.conversations().enabled() {
        Ok(())
    } else {
        // With memory off there are no stored conversations at all.
        Err(ApiError::ConversationNotFound)
    }
}

pub async fn get(
    State(state): State<AppState>,
    Extension(Ctx(ctx)): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<ConversationBody>, ApiError> {
    enabled(&state)?;
    ctx.record().conversation_id = Some(id.clone());
    let t = state.conversations().get(&ctx, &id).await?;
    let messages = t
        .turns
        .into_iter()
        .flat_map(|turn| {
            [
                StoredMessage {
                    role: "user",
                    content: turn.user,
                },
                StoredMessage {
                    role: "assistant",
                    content: turn.assistant,
                },
            ]
        })
        .collect();
    Ok(Json(ConversationBody {
        conversation_id: id,
        messages,
        turns: t.head.version,
        updated_at: rfc3339(t.head.updated_at),
        expires_at: rfc3339(t.head.expires_at),
    }))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(Ctx(ctx)): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    enabled(&state)?;
    ctx.record().conversation_id = Some(id.clone());
    state.conversations().delete(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
