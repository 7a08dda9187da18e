//! Liveness and readiness.

use crate::openapi::{Api, Auth, Op, Reply};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use std::sync::atomic::Ordering;

pub fn router() -> Api {
    const TAG: &str = "Operations";
    Api::new()
        .route(
            "/healthz",
            TAG,
            [Op::get(healthz)
                .named("healthz", "The process is up")
                .auth(Auth::Open)
                .reply(200, "Up.", "Status")],
        )
        .route(
            "/readyz",
            TAG,
            [Op::get(readyz)
                .named("readyz", "The hub can take traffic")
                .about("Not shutting down, the database answers, and the storage takes writes.")
                .auth(Auth::Open)
                .reply(200, "Ready.", "Status")
                .reply(503, "Not ready: `status` says why.", "Status")],
        )
        .route(
            "/metrics",
            TAG,
            [Op::get(crate::metrics::render)
                .named("metrics", "Metrics in the Prometheus text format")
                .auth(Auth::Open)
                .reply_with(
                    200,
                    "The metrics.",
                    Reply::Other {
                        media: "text/plain",
                        about: "Prometheus text exposition format 0.0.4.",
                    },
                )],
        )
        .route(
            "/openapi.json",
            TAG,
            [Op::get(|| async { crate::openapi::served_document() })
                .named("openapi", "This document")
                .auth(Auth::Open)
                .reply(200, "The OpenAPI 3.1 document.", "OpenApiDocument")],
        )
        .route(
            "/docs",
            TAG,
            [Op::get(|| async { crate::openapi::served_page() })
                .named("docs", "This document as a page")
                .auth(Auth::Open)
                .reply_with(
                    200,
                    "The API reference.",
                    Reply::Other {
                        media: "text/html",
                        about: "An HTML page.",
                    },
                )],
        )
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
