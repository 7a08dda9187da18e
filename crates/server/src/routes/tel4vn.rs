//! The tel4vn-compatible hook API: `GET/POST /v1/event`, `DELETE /v1/event/{id}`.
//!
//! A hook is a listener in the `tel4vn` dialect that wants one hook event, with its own
//! callback. `callback_apikey`, when set, is sent with every delivery as the `X-Api-Key`
//! header, and shown back to its owner only, as tel4vn shows it.

use super::callbacks::{self, not_found_as};
use super::fields::opt_text;
use crate::error::{ApiError, ApiResult};
use crate::extract::{strict_id, token_of, JsonObject};
use crate::openapi::{Api, Op};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use switchboard_dialects::tel4vn::EVENTS;
use switchboard_store::{Kind, ListQuery, NewResource, Owner, Ref, Scope};

pub fn router() -> Api {
    const TAG: &str = "tel4vn hooks";
    Api::new()
        .route(
            "/v1/event",
            TAG,
            [
                Op::get(list)
                    .named("listHooks", "List tel4vn hooks")
                    .reply(200, "The hooks, with their keys (shown to their owner only).", "HookList"),
                Op::post(create)
                    .named("createHook", "Create a tel4vn hook")
                    .about("`callback_apikey` is sent as the `X-Api-Key` header. The URL must answer 200 or 201 to `POST {\"test\": 1}`.")
                    .body("HookCreate")
                    .reply(200, "The hook made.", "HookCreated"),
            ],
        )
        .route(
            "/v1/event/{id}",
            TAG,
            [Op::delete(remove)
                .named("deleteHook", "Delete a tel4vn hook")
                .reply(200, "Deleted.", "HookDeleted")],
        )
}

/// The tags that select each hook event's canonical events.
fn tags_of(event: &str) -> Option<&'static [&'static str]> {
    Some(match event {
        "hangup" => &["completed-call"],
        "ringing" => &["connecting-call"],
        "answered" => &["connected-call"],
        "missed" => &["missed-call"],
        "cdr" | "cdr_autocall" => &["call-log"],
        _ => return None,
    })
}

async fn owner(state: &AppState, headers: &HeaderMap) -> ApiResult<Owner> {
    let token = token_of(state, headers).await?;
    if token.scope != Scope::Api {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token may only ingest events; use an api token",
        ));
    }
    Ok(Owner {
        account: token.account,
        extension_id: token.extension_id,
    })
}

/// The owner's hooks: its listeners of version tel4vn.
async fn hooks_of(state: &AppState, owner: Owner) -> ApiResult<Vec<switchboard_store::Resource>> {
    let (_, listeners) = state
        .store
        .list_resources(ListQuery {
            kind: Kind::Listener,
            owner,
            parent_id: None,
            equals: vec![("version".into(), json!("tel4vn"))],
            limit: 10_000,
            offset: 0,
        })
        .await?;
    Ok(listeners)
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let owner = owner(&state, &headers).await?;
    let listeners = hooks_of(&state, owner).await?;
    let mut data = Vec::new();
    for l in listeners.iter().filter(|l| l.body.get("event").is_some()) {
        let callback = match l.body.get("callback_id").and_then(Value::as_i64) {
            Some(id) => {
                state
                    .store
                    .get_resource(
                        Kind::Callback,
                        Owner {
                            extension_id: None,
                            ..owner
                        },
                        None,
                        id,
                    )
                    .await?
            }
            None => None,
        };
        let config = callback.as_ref().and_then(|c| c.body.get("config"));
        // The hook's owner sees its key, as tel4vn shows it (docs/api.md): only a token of
        // the account (or of the hook's extension) lists it at all.
        let key = config
            .and_then(|c| c.get("headers"))
            .and_then(Value::as_array)
            .and_then(|h| {
                h.iter()
                    .find(|h| h.get("name").and_then(Value::as_str) == Some("X-Api-Key"))
            })
            .and_then(|h| h.get("value"))
            .cloned();
        data.push(json!({
            "id": hook_id(owner.account.0, l.id),
            "event": l.body["event"],
            "callback_url": config.and_then(|c| c.get("url")).cloned().unwrap_or(Value::Null),
            "callback_apikey": key.unwrap_or(Value::Null),
        }));
    }
    let total = data.len();
    Ok(Json(json!({ "data": data, "total": total })))
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let owner = owner(&state, &headers).await?;
    // An event outside tel4vn's list makes a hook that is never called, as tel4vn's own
    // document says of its own and shows in its example (`"event": "create"`).
    let event = match body.get("event") {
        Some(Value::String(e)) if !e.trim().is_empty() => {
            if !EVENTS.contains(&e.as_str()) {
                tracing::warn!(
                    event = %e,
                    "a tel4vn hook for an event tel4vn does not send: it will receive nothing (the events are {})",
                    EVENTS.join(", ")
                );
            }
            e.clone()
        }
        _ => {
            return Err(ApiError::invalid(
                "event",
                format!("missing: one of {}", EVENTS.join(", ")),
            ))
        }
    };
    let url = match opt_text(&body, "callback_url", "callback_url")? {
        Some(Some(u)) => u,
        _ => {
            return Err(ApiError::invalid(
                "callback_url",
                "missing: the URL to send hooks to",
            ))
        }
    };
    let apikey = opt_text(&body, "callback_apikey", "callback_apikey")?
        .flatten()
        .filter(|k| !k.is_empty());
    let mut config = json!({ "url": url, "method": "POST" });
    if let Some(key) = &apikey {
        config["headers"] = json!([{ "name": "X-Api-Key", "value": key }]);
    }
    let mut cb_body = serde_json::Map::new();
    cb_body.insert("config".into(), config);
    cb_body.insert("name".into(), json!(format!("tel4vn {event} hook")));
    let checked = callbacks::check(&cb_body, None, "").map_err(|e| match e.path.as_deref() {
        Some("config.url") => ApiError {
            path: Some("callback_url".into()),
            ..e
        },
        _ => e,
    })?;
    if let Some(http) = &checked.http {
        state
            .delivery
            .check_target(http)
            .await
            .map_err(|why| ApiError::invalid("callback_url", why))?;
    }
    let callbacks::Checked { doc, refs, .. } = checked;
    let ev = event.clone();
    let made = state
        .store
        .create_resources(move |add| {
            let cb = add(NewResource { kind: Kind::Callback, owner, parent_id: None, body: Value::Object(doc), refs })?;
            let listener = add(NewResource {
                kind: Kind::Listener,
                owner,
                parent_id: None,
                body: json!({ "callback_id": cb.id, "version": "tel4vn", "expires_at": null, "event": ev }),
                refs: vec![Ref { field: "callback_id".into(), kind: Kind::Callback, id: cb.id }],
            })?;
            if let Some(tags) = tags_of(&ev) {
                add(NewResource { kind: Kind::Subscription, owner, parent_id: Some(listener.id), body: json!({ ":tags": tags }), refs: Vec::new() })?;
            }
            Ok(())
        })
        .await?;
    let id = made
        .iter()
        .find(|r| r.kind == Kind::Listener)
        .map(|l| hook_id(owner.account.0, l.id));
    Ok(Json(json!({ "created": true, "id": id })))
}

/// A hook's id as tel4vn writes them, a UUID: stable for the hook's listener.
fn hook_id(account: i64, listener: i64) -> String {
    switchboard_dialects::uuid_for("tel4vn-hook", &format!("{account}:{listener}"))
}

/// The listener a hook id names: its UUID (or, as hooks were once listed, its number).
async fn listener_of(state: &AppState, owner: Owner, id: &str) -> ApiResult<Option<i64>> {
    if let Some(n) = strict_id(id) {
        return Ok(Some(n));
    }
    Ok(hooks_of(state, owner)
        .await?
        .iter()
        .find(|l| hook_id(owner.account.0, l.id).eq_ignore_ascii_case(id))
        .map(|l| l.id))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let owner = owner(&state, &headers).await?;
    let id = listener_of(&state, owner, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let listener = state
        .store
        .get_resource(Kind::Listener, owner, None, id)
        .await?;
    let Some(listener) = listener.filter(|l| l.body.get("event").is_some()) else {
        return Err(ApiError::not_found("event"));
    };
    state
        .store
        .delete_resource(Kind::Listener, owner, None, id, Vec::new())
        .await
        .map_err(|e| not_found_as(e, "event"))?;
    if let Some(cb) = listener.body.get("callback_id").and_then(Value::as_i64) {
        // The hook's own callback goes with it (unless something else came to use it).
        let blockers = vec![switchboard_store::Blocker {
            kind: Kind::Listener,
            field: "callback_id",
            message: "in use".into(),
        }];
        let _ = state
            .store
            .delete_resource(
                Kind::Callback,
                Owner {
                    extension_id: None,
                    ..owner
                },
                None,
                cb,
                blockers,
            )
            .await;
    }
    Ok(Json(json!({ "deleted": true })))
}
