//! `POST /api/chat/stream`: the reply as Server-Sent Events while the model generates it.
//!
//! `meta` → `delta`… → `done`, or `error` if the model fails after the stream began. Failures
//! before the stream opens (bad input, throttling after retries, …) are ordinary JSON errors.
//! If the client goes away, the response body — and with it the Bedrock stream — is dropped,
//! which cancels generation; the telemetry layer records the abort.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Serialize;

use super::model_choice::{assign, with_fallback};
use super::reply::{GuardrailBody, LatencyBody, UsageBody, cost_body};
use super::spend;
use super::turn;
use crate::app::AppState;
use crate::budget::{ClientId, Reservation};
use crate::conversations::OpenTurn;
use crate::error::ApiError;
use crate::model::{ReplyEvent, ReplyStream};
use crate::pricing::CostBreakdown;
use crate::request::ChatRequestBody;
use crate::telemetry::context::RequestCtx;
use crate::telemetry::layer::Ctx;
use crate::telemetry::model_span::record_content;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<&'a str>,
    /// Conversation memory: stored turns left out of the model's input to fit the limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_turns: Option<usize>,
    model: &'a str,
    variant: &'a str,
}

#[derive(Serialize)]
struct Delta<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Done {
    stop_reason: String,
    usage: Option<UsageBody>,
    cost: Option<CostBreakdown>,
    latency_ms: LatencyBody,
    /// Present when the guardrail intervened: the last delta was its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    guardrail: Option<GuardrailBody>,
}

pub async fn chat_stream(
    State(state): State<AppState>,
    Extension(Ctx(ctx)): Extension<Ctx>,
    client: ClientId,
    body: ChatRequestBody,
) -> Result<Response, ApiError> {
    let prepared = turn::prepare(&state, &ctx, body).await?;
    let req = &prepared.req;
    let variant = assign(&state, &ctx, req)?;
    let reservation = spend::reserve(&state, &ctx, &client, req, variant).await?;
    let (model, req_ref, deadline) = (state.model(), req, ctx.deadline.at());
    // Fallback is possible only until the stream has opened: after that, text has been sent.
    let opened = with_fallback(&state, &ctx.deadline, &variant.model_id, |id| async move {
        model.converse_stream(&id, req_ref, deadline).await
    })
    .await;
    let (reply, model_id) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            if let Some(r) = reservation {
                r.settle(&ctx, spend::settlement(&ctx)).await;
            }
            return Err(e.into());
        }
    };
    let meta = json_event(
        "meta",
        &Meta {
            request_id: &ctx.request_id,
            conversation_id: prepared.conversation_id(),
            dropped_turns: prepared.dropped_turns,
            model: &model_id,
            variant: &variant.name,
        },
    );
    let prompt = ctx.log_content().map(|_| req.last_user_text().to_owned());
    let after = AfterReply {
        reservation,
        turn: prepared.turn,
        message: prepared.message,
    };
    let events = events(meta, reply, ctx, prompt, after);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response())
}

/// The `error` event: the failure after the stream began, recorded as the request's error.
fn error_event(ctx: &RequestCtx, err: ApiError) -> Event {
    ctx.record().error_code = Some(err.code());
    json_event("error", &err.body(&ctx.request_id))
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .expect("event bodies serialise")
}

enum Phase {
    /// `meta` goes out before the model's first token arrives.
    Meta(Event, ReplyStream),
    Reply(ReplyStream),
    Finished,
}

/// What the end of the reply settles; all of it is dropped with the stream if the client leaves
/// (the reservation keeps its amount, the conversation gets nothing stored).
struct AfterReply {
    reservation: Option<Reservation>,
    turn: Option<OpenTurn>,
    message: Option<String>,
}

struct Progress {
    phase: Phase,
    ctx: Arc<RequestCtx>,
    after: AfterReply,
    /// Kept only when content logging is on.
    prompt: Option<String>,
    /// The reply so far, kept when it is logged or stored.
    text: Option<String>,
}

fn events(
    meta: Event,
    reply: ReplyStream,
    ctx: Arc<RequestCtx>,
    prompt: Option<String>,
    after: AfterReply,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let keep_text = prompt.is_some() || after.turn.is_some();
    let start = Progress {
        phase: Phase::Meta(meta, reply),
        ctx,
        after,
        prompt,
        text: keep_text.then(String::new),
    };
    stream::unfold(start, |mut st| {
        async move {
            let phase = std::mem::replace(&mut st.phase, Phase::Finished);
            let event = match phase {
                Phase::Meta(meta, reply) => {
                    st.phase = Phase::Reply(reply);
                    meta
                }
                Phase::Reply(mut reply) => match reply.next().await {
                    Ok(ReplyEvent::Text(text)) => {
                        if let Some(kept) = &mut st.text {
                            kept.push_str(&text);
                        }
                        st.phase = Phase::Reply(reply);
                        json_event("delta", &Delta { text: &text })
                    }
                    Ok(ReplyEvent::End {
                        stop_reason,
                        usage,
                        guardrail,
                    }) => {
                        // Settle the model call's span before the last event goes out.
                        drop(reply);
                        let text = st.text.take().unwrap_or_default();
                        if let Some(p) = &st.prompt {
                            record_content(p, &text);
                        }
                        let cost = st.ctx.settle_cost();
                        if let Some(r) = st.after.reservation.take() {
                            r.settle(&st.ctx, spend::settlement(&st.ctx)).await;
                        }
                        // The turn is stored before `done`: a reply the client saw complete
                        // is in the conversation, or the client is told it is not.
                        let (turn, message) = (st.after.turn.take(), st.after.message.take());
                        let guardrail = GuardrailBody::of(guardrail.as_ref());
                        // A blocked turn stays out of the conversation (see chat.rs).
                        let stored = match guardrail {
                            None => turn::store(&st.ctx, turn, message.as_deref(), &text).await,
                            Some(_) => Ok(()),
                        };
                        match stored {
                            Ok(()) => json_event(
                                "done",
                                &Done {
                                    stop_reason,
                                    usage: usage.map(UsageBody::from),
                                    cost: cost_body(cost),
                                    latency_ms: LatencyBody::now(&st.ctx),
                                    guardrail,
                                },
                            ),
                            Err(err) => error_event(&st.ctx, err),
                        }
                    }
                    Err(e) => {
                        drop(reply);
                        if let Some(r) = st.after.reservation.take() {
                            r.settle(&st.ctx, spend::settlement(&st.ctx)).await;
                        }
                        error_event(&st.ctx, ApiError::from(e))
                    }
                },
                Phase::Finished => return None,
            };
            Some((Ok(event), st))
        }
    })
}
