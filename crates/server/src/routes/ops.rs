//! Liveness and readiness.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::render))
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The hub can take traffic: not shutting down, and the database answers.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    if !state.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting down" })),
        );
    }
    if let Err(e) = state.store.account(switchboard_model::AccountId(0)).await {
        tracing::error!(error = %e, "readiness check failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "database unavailable" })),
        );
    }
    // The storage takes writes: a full disk refuses every event, so the hub is not ready —
    // while a write was refused in the last Retry-After, or a probe's write is refused now.
    let window = std::time::Duration::from_secs(crate::error::STORAGE_RETRY_AFTER);
    if state.store.storage_failed_within(window) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "storage full" })),
        );
    }
    match state.store.probe_write().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) if e.is_storage() => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "storage full" })),
        ),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "database unavailable" })),
            )
        }
    }
}
