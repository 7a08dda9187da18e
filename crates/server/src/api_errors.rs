//! Errors as events: every error the hub's API answers an account's own client with
//! (management, query, tel4vn hooks, ingest) is raised in that account as an `api.error`
//! event, which a listener can subscribe to (tags `api-error` and `api-error-trusted`), as
//! Phone.com's events API does. A request with no valid token of an account raises none:
//! anyone can make those, and they would be noise anyone could pour into an account.

use crate::extract::bearer;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};
use switchboard_model::{ApiErrorFacts, Details, Dialect, EventKind, Fact, Source};

/// The largest error body read to say what went wrong (error bodies are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn raise(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Kept cheaply (shared buffers) for the rare answer that is an error.
    let (auth, method, uri) = (
        req.headers().get(AUTHORIZATION).cloned(),
        req.method().clone(),
        req.uri().clone(),
    );
    let response = next.run(req).await;
    let status = response.status();
    let path = uri.path();
    if !(status.is_client_error() || status.is_server_error()) || path.starts_with("/admin/") {
        return response;
    }
    let Some(auth) = auth else {
        return response;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    let Some(token) = bearer(&headers) else {
        return response;
    };
    let Ok(Some(owner)) = state.store.authenticate(token).await else {
        return response;
    };
    let (method, path) = (method.to_string(), path.to_string());
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let said: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let message = said["@error"]["@message"].as_str().map(str::to_owned);
    let raw = serde_json::value::to_raw_value(&json!({
        "status": status.as_u16(),
        "message": message,
        "method": method,
        "path": path,
    }))
    .expect("JSON");
    let mut vendor = serde_json::Map::new();
    vendor.insert("method".into(), json!(method));
    vendor.insert("path".into(), json!(path));
    let now = jiff::Timestamp::now();
    let fact = Fact {
        source_key: format!("api-error:{}", uuid::Uuid::now_v7()),
        kind: EventKind::ApiError,
        occurred_at: now,
        time_estimated: false,
        call_id: None,
        leg_id: None,
        agent_id: None,
        details: Details::ApiError(ApiErrorFacts {
            status: Some(status.as_u16()),
            message,
        }),
        vendor,
        raw,
    };
    let source = Source {
        dialect: Dialect::Canonical,
        name: Some("switchboard".into()),
    };
    let events =
        switchboard_engine::stamp(owner.account, &source, now, vec![fact], uuid::Uuid::now_v7);
    // Raised beside the answer, which does not wait for it.
    tokio::spawn(async move {
        match state.store.ingest(owner.account, events, now).await {
            Ok(out) if out.deliveries > 0 => state.delivery.wake(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not raise an api-error event"),
        }
    });
    Response::from_parts(parts, Body::from(bytes))
}
