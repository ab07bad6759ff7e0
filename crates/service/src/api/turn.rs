//! What the model is sent for a chat request: the client's whole conversation (`messages`), or
//! — conversation memory — the stored history of `conversationId` (or a new conversation) and
//! the new `message`, trimmed to the request limits. The open turn is stored by the handler once
//! the reply completed.

use std::time::Duration;

use crate::app::AppState;
use crate::conversations::OpenTurn;
use crate::conversations::history::assemble;
use crate::error::ApiError;
use crate::request::ChatRequestBody;
use crate::telemetry::context::RequestCtx;
use crate::validation::{ChatRequest, Validated, validate_request};

/// A request ready for the model.
pub struct Prepared {
    pub req: ChatRequest,
    /// The conversation turn to store after the reply (memory requests only).
    pub turn: Option<OpenTurn>,
    /// The new message, as stored with the reply.
    pub message: Option<String>,
    /// Stored turns left out to fit the limits (memory requests only).
    pub dropped_turns: Option<usize>,
}

impl Prepared {
    /// The conversation id the response names: the server's for memory, else the client's.
    pub fn conversation_id(&self) -> Option<&str> {
        self.req.conversation_id.as_deref()
    }
}

/// The longest a turn may hold its conversation: until the request must have answered.
fn hold(ctx: &RequestCtx) -> Duration {
    ctx.deadline.answer_time_left()
}

pub async fn prepare(
    state: &AppState,
    ctx: &RequestCtx,
    body: ChatRequestBody,
) -> Result<Prepared, ApiError> {
    let limits = state.limits();
    match validate_request(body, &limits)? {
        Validated::Stateless(req) => Ok(Prepared {
            req,
            turn: None,
            message: None,
            dropped_turns: None,
        }),
        Validated::Turn {
            message,
            conversation_id,
            variant,
        } => {
            let conversations = state.conversations();
            if !conversations.enabled() {
                return Err(ApiError::InvalidRequest(
                    "message: conversation memory is off on this deployment; send the whole \
                     conversation as `messages`"
                        .into(),
                ));
            }
            let turn = conversations
                .open(ctx, conversation_id.as_deref(), hold(ctx))
                .await?;
            let assembled = assemble(turn.history(), &message, &limits);
            {
                let mut r = ctx.record();
                r.history_turns = Some(assembled.history_turns);
                r.dropped_turns = Some(assembled.dropped_turns);
                // About four characters a token (documented in docs/observability.md).
                r.history_tokens = Some(assembled.history_chars.div_ceil(4));
            }
            Ok(Prepared {
                req: ChatRequest {
                    messages: assembled.messages,
                    conversation_id: Some(turn.id().to_owned()),
                    variant,
                },
                dropped_turns: Some(assembled.dropped_turns),
                turn: Some(turn),
                message: Some(message),
            })
        }
    }
}

/// Store the turn (memory requests) now that `reply` completed.
pub async fn store(
    ctx: &RequestCtx,
    turn: Option<OpenTurn>,
    message: Option<&str>,
    reply: &str,
) -> Result<(), ApiError> {
    match (turn, message) {
        (Some(turn), Some(message)) => turn.save(ctx, message, reply).await,
        _ => Ok(()),
    }
}
