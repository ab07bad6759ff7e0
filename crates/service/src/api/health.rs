//! `GET /api/health`: liveness plus what the page needs to know (model, limits).

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
}

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        model: state.model_id().to_owned(),
        limits: state.limits(),
    })
}
