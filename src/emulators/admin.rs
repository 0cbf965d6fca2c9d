//! Fault controls every emulator serves next to its API, so a test driving an official SDK
//! against `frontdesk emulators` (another process) can pick the next fault and read the counts:
//! `POST /_emulator/faults/next` `{"kind": "rate_limited", "scope": "connection" | "stream"}`
//! (`stream`: the next stream inside a connection, a Cartesia context) and `GET /_emulator/faults`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::faults::{FaultKind, Faults};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Next {
    kind: String,
    #[serde(default)]
    scope: Scope,
}

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Scope {
    #[default]
    Connection,
    Stream,
}

/// The control routes for one emulator's faults.
pub fn routes(faults: Arc<Faults>) -> Router {
    Router::new()
        .route("/_emulator/faults/next", post(force_next))
        .route("/_emulator/faults", get(injected))
        .with_state(faults)
}

async fn force_next(State(faults): State<Arc<Faults>>, body: axum::body::Bytes) -> Response {
    let next: Next = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return bad(format!("expected {{\"kind\": ..., \"scope\": ...}}: {e}")),
    };
    let Some(kind) = FaultKind::parse(&next.kind) else {
        return bad(format!("unknown fault kind {:?}", next.kind));
    };
    if next.scope == Scope::Stream {
        faults.force_next_inner(kind);
    } else {
        faults.force_next(kind);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn injected(State(faults): State<Arc<Faults>>) -> Response {
    let counts: serde_json::Map<String, serde_json::Value> = faults
        .injected()
        .into_iter()
        .map(|(k, n)| (k.as_str().to_owned(), n.into()))
        .collect();
    Json(json!({ "injected": counts })).into_response()
}

fn bad(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": { "message": message } })),
    )
        .into_response()
}
