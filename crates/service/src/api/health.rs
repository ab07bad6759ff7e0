//! `GET /api/health`: liveness plus what the page needs to know (model, limits, whether the
//! server keeps conversations).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::app::AppState;
use crate::validation::Limits;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    status: &'static str,
    version: &'static str,
    model: String,
    limits: Limits,
    memory: Memory,
}

/// Conversation memory as the page needs to know it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    enabled: bool,
    /// Hours a conversation is kept after its last turn.
    ttl_hours: f64,
    max_turns: u64,
}

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        model: state.model_id().to_owned(),
        limits: state.limits(),
        memory: Memory {
            enabled: state.conversations().enabled(),
            ttl_hours: state.conversations().ttl().as_secs_f64() / 3600.0,
            max_turns: state.conversations().max_turns(),
        },
    })
}
