//! Listeners: tie subscriptions and filters to a callback, in a chosen dialect (`version`).

use super::callbacks::not_found_as;
use super::fields::{opt_id, opt_text, Body};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonObject};
use crate::listing::{page_of, FilterKind, Page};
use crate::openapi::{Api, Op, Param, Ty, PAGING};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use switchboard_dialects::encodable;
use switchboard_store::{dialect_of_version, Kind, NewResource, Owner, Ref, Resource};

pub fn router() -> Api {
    const TAG: &str = "Listeners";
    Api::new()
        .route(
            "/listeners",
            TAG,
            [
                Op::get(list)
                    .named("listListeners", "List listeners")
                    .query(PAGING)
                    .query(&[Param::new(
                        "filters[callback_id]",
                        Ty::Text,
                        "Only listeners of this callback.",
                    )])
                    .reply(200, "The listeners, newest first.", "ListenerPage"),
                Op::post(create)
                    .named("createListener", "Create a listener")
                    .about("`version` picks the dialect its callback receives. A listener made at extension level receives only events with a party of that extension.")
                    .body("ListenerCreate")
                    .reply(200, "The listener made.", "Listener"),
            ],
        )
        .route(
            "/listeners/{listener_id}",
            TAG,
            [
                Op::get(show)
                    .named("getListener", "Get a listener")
                    .reply(200, "The listener.", "Listener"),
                Op::patch(update)
                    .named("updateListener", "Update a listener")
                    .body("ListenerUpdate")
                    .reply(200, "The listener as it is now.", "Listener"),
                Op::delete(remove)
                    .named("deleteListener", "Delete a listener")
                    .about("With its subscriptions and filters.")
                    .reply(200, "Deleted.", "Success"),
            ],
        )
        .route(
            "/listeners/{listener_id}/replay",
            TAG,
            [Op::post(replay)
                .named("replayListener", "Send again what a listener matched in a time range")
                .body("Replay")
                .reply(200, "How many events were queued again.", "ReplayAnswer")],
        )
}

pub fn view(r: &Resource) -> Value {
    let b = &r.body;
    json!({
        "id": r.id,
        "voip_id": r.account,
        "extension_id": r.extension_id,
        "version": b.get("version").cloned().unwrap_or(json!("2.0.0")),
        "callback_id": b.get("callback_id").cloned().unwrap_or(Value::Null),
        "created_at": r.created_at,
        "expires_at": b.get("expires_at").cloned().unwrap_or(Value::Null),
    })
}

/// Checks a listener body over an existing document (or a new one); `path` prefixes paths.
pub fn check(body: &Body, existing: Option<&Body>, path: &str) -> ApiResult<(Body, Vec<Ref>)> {
    let p = |f: &str| format!("{path}{f}");
    let mut doc = existing.cloned().unwrap_or_else(|| {
        let mut d = Body::new();
        d.insert("version".into(), json!("2.0.0"));
        d.insert("expires_at".into(), Value::Null);
        d
    });
    match opt_id(body, "callback_id", &p("callback_id"))? {
        Some(Some(id)) => {
            doc.insert("callback_id".into(), json!(id));
        }
        Some(None) => {
            return Err(ApiError::invalid(
                p("callback_id"),
                "expected an integer callback id",
            ))
        }
        None if existing.is_none() => {
            return Err(ApiError::invalid(
                p("callback_id"),
                "missing: this field is required",
            ))
        }
        None => {}
    }
    if let Some(version) = opt_text(body, "version", &p("version"))? {
        let version = version.unwrap_or_else(|| "2.0.0".into());
        let supported: Vec<String> = encodable()
            .iter()
            .map(|d| {
                if d.as_str() == "phonecom" {
                    "2.0.0".to_string()
                } else {
                    d.as_str().to_string()
                }
            })
            .collect();
        match dialect_of_version(&version) {
            Some(d) if encodable().contains(&d) => {}
            _ => {
                return Err(ApiError::invalid(
                    p("version"),
                    format!(
                        "version {version:?} is not supported; use one of {}",
                        supported.join(", ")
                    ),
                ))
            }
        }
        doc.insert("version".into(), json!(version));
    }
    if let Some(at) = opt_id(body, "expires_at", &p("expires_at"))? {
        doc.insert("expires_at".into(), json!(at));
    }
    let callback = doc
        .get("callback_id")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    Ok((
        doc,
        vec![Ref {
            field: p("callback_id"),
            kind: Kind::Callback,
            id: callback,
        }],
    ))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(&query, &[("callback_id", FilterKind::Id)])?;
    page_of(&state, Kind::Listener, caller.owner, None, &page, view).await
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let (doc, refs) = check(&body, None, "")?;
    let created = state
        .store
        .create_resource(NewResource {
            kind: Kind::Listener,
            owner: caller.owner,
            parent_id: None,
            body: Value::Object(doc),
            refs,
        })
        .await?;
    Ok(Json(view(&created)))
}

/// The listener with this id, owned by the caller.
pub async fn get_listener(state: &AppState, owner: Owner, id: i64) -> ApiResult<Resource> {
    state
        .store
        .get_resource(Kind::Listener, owner, None, id)
        .await?
        .ok_or_else(|| ApiError::not_found("listener"))
}

/// The account (or extension) and the id of the listener named in the path, which must exist.
pub async fn listener_of(state: &AppState, caller: &Caller) -> ApiResult<(Owner, i64)> {
    let listener = caller.id("listener_id", "listener")?;
    get_listener(state, caller.owner, listener).await?;
    Ok((caller.owner, listener))
}

async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("listener_id", "listener")?;
    Ok(Json(view(&get_listener(&state, caller.owner, id).await?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let id = caller.id("listener_id", "listener")?;
    let current = get_listener(&state, caller.owner, id).await?;
    let existing = current.body.as_object().cloned().unwrap_or_default();
    let (doc, refs) = check(&body, Some(&existing), "")?;
    let updated = state
        .store
        .update_resource(Kind::Listener, caller.owner, None, id, move |_| {
            Ok((Value::Object(doc), refs))
        })
        .await
        .map_err(|e| not_found_as(e, "listener"))?;
    Ok(Json(view(&updated)))
}

async fn remove(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("listener_id", "listener")?;
    state
        .store
        .delete_resource(Kind::Listener, caller.owner, None, id, Vec::new())
        .await
        .map_err(|e| not_found_as(e, "listener"))?;
    Ok(Json(json!({ "success": true })))
}

/// Re-sends what matched the listener in a time range (`from`/`to`, Unix seconds, received
/// time): new deliveries, same event ids.
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let id = caller.id("listener_id", "listener")?;
    let listener = get_listener(&state, caller.owner, id).await?;
    let bound = |key: &str| -> ApiResult<i64> {
        match opt_id(&body, key, key)? {
            Some(Some(secs)) => Ok(secs),
            _ => Err(ApiError::invalid(key, "missing: Unix seconds are required")),
        }
    };
    let (from, to) = (bound("from")?, bound("to")?);
    if to <= from {
        return Err(ApiError::invalid("to", "must be after from"));
    }
    let callback = listener
        .body
        .get("callback_id")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    let n = state
        .store
        .replay(
            caller.owner.account,
            id,
            callback,
            from.saturating_mul(1_000_000_000),
            to.saturating_mul(1_000_000_000),
        )
        .await?;
    state.delivery.wake();
    Ok(Json(json!({ "replayed": n })))
}
