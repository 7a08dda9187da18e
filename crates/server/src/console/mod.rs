//! The console: pages for people, served by the hub from its own binary (`/console`).
//!
//! One page (`shell.html`, with `console.js` and `console.css`, all embedded) signs in and
//! keeps the token in the tab's `sessionStorage`; every view is HTML the hub renders
//! ([`views`]) and the page fetches with the token, so the views read exactly what the API
//! reads. The live views follow the account's event stream and fetch themselves again as
//! events arrive. These pages are not API: they are not in `/openapi.json`.

mod views;

use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, id_param, token_of};
use crate::routes::calls::{call_query, next_cursor, stream_of};
use crate::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;
use switchboard_model::AccountId;
use switchboard_store::{CallbackHealth, Kind, ListQuery, Owner, Scope};

const SHELL: &str = include_str!("shell.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// How many calls the CSV export writes at most.
const EXPORT_LIMIT: i64 = 10_000;
/// Calls on a page of the history.
const PAGE: i64 = 50;
/// A callback's latest deliveries shown (then filtered by status).
const DELIVERIES_SHOWN: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Html(SHELL) }))
        .route("/console/", get(|| async { Html(SHELL) }))
        .route(
            "/console/console.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
            }),
        )
        .route(
            "/console/console.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/console/whoami", get(whoami))
        .route("/console/a/{account}/live", get(live))
        .route("/console/a/{account}/history", get(history))
        .route("/console/a/{account}/history.csv", get(history_csv))
        .route("/console/a/{account}/calls/{call_id}", get(call))
        .route("/console/a/{account}/agents", get(agents))
        .route("/console/a/{account}/stream", get(stream))
        .route("/console/a/{account}/deliveries", get(deliveries))
        .route(
            "/console/a/{account}/deliveries/{callback_id}",
            get(callback_deliveries),
        )
        .route("/console/a/{account}/config", get(config))
        .route("/console/a/{account}/api/{*rest}", any(api))
}

/// Who is looking at an account's pages: its own api token (an extension-bound one sees its
/// extension's calls only), or the admin token, which may look at any account.
pub struct Viewer {
    account: AccountId,
    extension: Option<i64>,
    params: HashMap<String, String>,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("page"))?;
        let account = AccountId(id_param(&params, "account", "account")?);
        if crate::routes::admin::check_admin(state, &parts.headers).is_ok() {
            state
                .store
                .account(account)
                .await?
                .ok_or_else(|| ApiError::not_found("account"))?;
            return Ok(Viewer {
                account,
                extension: None,
                params,
            });
        }
        let token = token_of(state, &parts.headers).await?;
        if token.account != account {
            return Err(ApiError::not_found("account"));
        }
        if token.scope != Scope::Api {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this token may only ingest events; sign in with an api token",
            ));
        }
        Ok(Viewer {
            account,
            extension: token.extension_id,
            params,
        })
    }
}

impl Viewer {
    /// All of a kind of the viewer's resources (at its extension, for a bound token).
    fn resources(&self, kind: Kind, parent_id: Option<i64>) -> ListQuery {
        ListQuery {
            kind,
            owner: Owner {
                account: self.account,
                extension_id: self.extension,
            },
            parent_id,
            equals: Vec::new(),
            limit: 500,
            offset: 0,
        }
    }

    /// The call query of these parameters, held to the viewer's extension.
    fn query(&self, q: &HashMap<String, String>) -> ApiResult<switchboard_store::CallQuery> {
        let mut query = call_query(q)?;
        if let Some(ext) = self.extension {
            query.extension = Some(ext.to_string());
        }
        Ok(query)
    }
}

/// What a token may see: the page asks before it shows anything.
async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if bearer(&headers).is_none() {
        return Err(ApiError::unauthorized("sign in with a token"));
    }
    if crate::routes::admin::check_admin(&state, &headers).is_ok() {
        return Ok(Json(json!({ "admin": true })).into_response());
    }
    let token = token_of(&state, &headers).await?;
    if token.scope != Scope::Api {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token may only ingest events; sign in with an api token",
        ));
    }
    Ok(Json(json!({
        "admin": false,
        "account": token.account.0,
        "extension_id": token.extension_id,
    }))
    .into_response())
}

fn html(markup: maud::Markup) -> Response {
    Html(markup.into_string()).into_response()
}

async fn live(State(state): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let mut query = viewer.query(&HashMap::new())?;
    query.in_progress = true;
    query.limit = 500;
    let (_, calls) = state.store.calls(viewer.account, query).await?;
    let callbacks = callbacks_with_health(&state, &viewer).await?;
    Ok(html(views::live(&calls, &callbacks)))
}

/// The viewer's callbacks (as the API shows them), with their health.
async fn callbacks_with_health(
    state: &AppState,
    viewer: &Viewer,
) -> ApiResult<Vec<(serde_json::Value, CallbackHealth)>> {
    let (_, found) = state
        .store
        .list_resources(viewer.resources(Kind::Callback, None))
        .await?;
    let health = state
        .store
        .callback_health(viewer.account, found.iter().map(|r| r.id).collect())
        .await?;
    Ok(found
        .iter()
        .map(crate::routes::callbacks::view)
        .zip(health)
        .collect())
}

async fn deliveries(State(state): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let callbacks = callbacks_with_health(&state, &viewer).await?;
    Ok(html(views::deliveries(&callbacks)))
}

/// The callback of the path, if the viewer may see it.
async fn viewers_callback(
    state: &AppState,
    viewer: &Viewer,
) -> ApiResult<(serde_json::Value, CallbackHealth)> {
    let id = id_param(&viewer.params, "callback_id", "callback")?;
    callbacks_with_health(state, viewer)
        .await?
        .into_iter()
        .find(|(_, h)| h.callback_id == id)
        .ok_or_else(|| ApiError::not_found("callback"))
}

async fn callback_deliveries(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let (callback, health) = viewers_callback(&state, &viewer).await?;
    let status = q.get("status").filter(|s| !s.is_empty()).cloned();
    let page = state
        .store
        .deliveries_of_callback(viewer.account, health.callback_id, DELIVERIES_SHOWN, 0)
        .await?;
    Ok(html(views::callback_deliveries(
        &callback,
        &health,
        &page,
        status.as_deref(),
    )))
}

async fn history(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(mut q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    q.retain(|_, v| !v.is_empty());
    q.entry("limit".into()).or_insert_with(|| PAGE.to_string());
    let query = viewer.query(&q)?;
    let limit = query.limit;
    let (total, calls) = state.store.calls(viewer.account, query).await?;
    let next = next_cursor(&calls, limit);
    Ok(html(views::history(&q, total, &calls, next.as_deref())))
}

async fn history_csv(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(mut q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    q.retain(|k, v| !v.is_empty() && k != "cursor" && k != "limit");
    let mut query = viewer.query(&q)?;
    query.limit = EXPORT_LIMIT;
    let (_, calls) = state.store.calls(viewer.account, query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"calls.csv\"",
            ),
        ],
        views::csv(&calls),
    )
        .into_response())
}

async fn call(State(state): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let id = viewer.params.get("call_id").cloned().unwrap_or_default();
    let (call, events) = state
        .store
        .call(viewer.account, id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    if let Some(ext) = viewer.extension {
        // Held to its extension as the call list's `extension` filter is.
        let ext = ext.to_string();
        if !call
            .record
            .parties()
            .any(|p| p.extension_names().any(|e| e == ext))
        {
            return Err(ApiError::not_found("call"));
        }
    }
    let delivered = state
        .store
        .call_deliveries(viewer.account, call.id.clone())
        .await?
        .unwrap_or_default();
    Ok(html(views::call(&call, &events, &delivered)))
}

async fn agents(State(state): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let agents = state.store.agents(viewer.account).await?;
    Ok(html(views::agents(&agents)))
}

async fn stream(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    Ok(stream_of(state, viewer.account, &headers, &q)
        .await?
        .into_response())
}

/// The configuration: callbacks, listeners with their subscriptions and filters, profiles,
/// schedules.
async fn config(State(state): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let (_, callbacks) = state
        .store
        .list_resources(viewer.resources(Kind::Callback, None))
        .await?;
    let (_, listeners) = state
        .store
        .list_resources(viewer.resources(Kind::Listener, None))
        .await?;
    let (_, profiles) = state
        .store
        .list_resources(viewer.resources(Kind::Profile, None))
        .await?;
    let (_, schedules) = state
        .store
        .list_resources(viewer.resources(Kind::Schedule, None))
        .await?;
    let mut with_children = Vec::new();
    for l in &listeners {
        let (_, subs) = state
            .store
            .list_resources(viewer.resources(Kind::Subscription, Some(l.id)))
            .await?;
        let (_, filters) = state
            .store
            .list_resources(viewer.resources(Kind::Filter, Some(l.id)))
            .await?;
        with_children.push((
            crate::routes::listeners::view(l),
            subs.iter()
                .map(crate::routes::subscriptions::view)
                .collect(),
            filters.iter().map(crate::routes::filters::view).collect(),
        ));
    }
    Ok(html(views::config(
        &callbacks
            .iter()
            .map(crate::routes::callbacks::view)
            .collect::<Vec<_>>(),
        &with_children,
        &profiles
            .iter()
            .map(crate::routes::profiles::view)
            .collect::<Vec<_>>(),
        &schedules
            .iter()
            .map(crate::routes::schedules::view)
            .collect::<Vec<_>>(),
    )))
}

/// The events API's routes, made once (not for each request passed to them).
static EVENTS_API: std::sync::LazyLock<Router<AppState>> =
    std::sync::LazyLock::new(crate::routes::events_router);

/// The configuration's changes: passed to the events API as the viewer (at its extension, for
/// an extension-bound one), so they are checked, answered and refused exactly as the API does.
async fn api(
    State(state): State<AppState>,
    viewer: Viewer,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    use tower::ServiceExt;
    let rest = viewer.params.get("rest").cloned().unwrap_or_default();
    let prefix = match viewer.extension {
        Some(ext) => format!("/v4/accounts/{}/extensions/{ext}", viewer.account.0),
        None => format!("/v4/accounts/{}", viewer.account.0),
    };
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let uri: axum::http::Uri = format!("{prefix}/integrations/events/{rest}{query}")
        .parse()
        .map_err(|_| ApiError::not_found("resource"))?;
    let (mut parts, body) = request.into_parts();
    parts.uri = uri;
    parts.extensions.insert(crate::extract::ConsoleGrant {
        account: viewer.account,
        extension_id: viewer.extension,
    });
    let request = axum::extract::Request::from_parts(parts, body);
    let routes = EVENTS_API.clone().with_state(state);
    Ok(routes.oneshot(request).await.into_response())
}
