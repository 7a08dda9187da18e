//! Every API resource is one file exporting its `router()`; this module puts them together.

pub(crate) mod admin;
pub(crate) mod callbacks;
pub(crate) mod calls;
mod fields;
pub(crate) mod filters;
mod ingest;
pub(crate) mod listeners;
mod ops;
mod overview;
mod plain;
pub(crate) mod profiles;
pub(crate) mod schedules;
pub(crate) mod subscriptions;
mod tel4vn;
mod unsubscribe;

use crate::error::ApiError;
use crate::openapi::Api;
use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The Phone.com events API under one account (or extension) prefix.
fn events_api() -> Api {
    Api::new()
        .merge(callbacks::router())
        .merge(listeners::router())
        .merge(subscriptions::router())
        .merge(filters::router())
        .merge(profiles::PROFILES.router())
        .merge(schedules::SCHEDULES.router())
        .merge(overview::router())
}

/// `api` with the events API under an account's prefix and under an extension's.
fn with_events_api(api: Api) -> Api {
    api.nest(
        "/v4/accounts/{account}/integrations/events",
        "",
        events_api(),
    )
    .nest(
        "/v4/accounts/{account}/extensions/{ext}/integrations/events",
        "AtExtension",
        events_api(),
    )
}

/// The events API alone, at account and extension level, for the console to pass its
/// configuration requests to (`console::api`).
pub(crate) fn events_router() -> Router<AppState> {
    with_events_api(Api::new())
        .split()
        .0
        .fallback(|| async { ApiError::not_found("route") })
}

/// Every route, documented. Every route but ingest answers within `request_timeout`. Ingest
/// times what comes before the writer (reading the body), and once its batch is with the
/// writer answers when that commits: a batch answered with an error is never stored
/// afterwards.
pub fn api(request_timeout: Duration) -> Api {
    let timed = Api::new()
        .merge(ops::router())
        .merge(admin::router())
        .merge(unsubscribe::router())
        .merge(tel4vn::router())
        .merge(calls::router());
    let timed = with_events_api(timed).map_router(|r| {
        r.layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
    });
    ingest::router().merge(timed)
}

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body;
    let (routes, _) = api(state.config.request_timeout).split();
    // The console's pages are for people, not API: beside the documented routes.
    routes
        .merge(
            crate::console::router().layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                state.config.request_timeout,
            )),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this path",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api_errors::raise,
        ))
        // A request over the time limit answers 408 in the API's own envelope (the timeout
        // layer's own answer, made outside the routes, has no body).
        .layer(axum::middleware::map_response(timed_out_in_the_envelope))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The timeout layer's bare 408, answered as every other error is.
async fn timed_out_in_the_envelope(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none()
    {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request took longer than the hub allows (request_timeout)",
        )
        .into_response();
    }
    response
}
