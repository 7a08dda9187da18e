//! Overview: listeners with their callback, profile and subscriptions embedded (GET), and
//! express create of all of them in one call and one transaction (POST).

use super::fields::Body;
use super::{callbacks, listeners, profiles, subscriptions};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonObject};
use crate::listing::Page;
use crate::openapi::{Api, Op, PAGING};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use switchboard_store::{Kind, ListQuery, NewResource, Owner, Ref, Resource};

pub fn router() -> Api {
    Api::new().route(
        "/overview",
        "Overview",
        [
            Op::get(list)
                .named(
                    "getOverview",
                    "Listeners with their callback, profile, fallback and subscriptions",
                )
                .query(PAGING)
                .reply(200, "The listeners.", "OverviewPage"),
            Op::post(express_create)
                .named(
                    "expressCreate",
                    "Create a listener with its callback and subscriptions at once",
                )
                .about("Everything is made in one transaction, or nothing is.")
                .body("ExpressCreate")
                .reply(
                    200,
                    "The listener made, as the overview shows it.",
                    "ListenerOverview",
                ),
        ],
    )
}

async fn find(
    state: &AppState,
    kind: Kind,
    owner: Owner,
    id: Option<i64>,
) -> ApiResult<Option<Resource>> {
    let owner = Owner {
        extension_id: None,
        ..owner
    };
    match id {
        Some(id) => Ok(state.store.get_resource(kind, owner, None, id).await?),
        None => Ok(None),
    }
}

/// One overview item: the listener with `:callback` (and its `:profile`, `:fallback`) and
/// `:subscriptions`.
async fn item(state: &AppState, owner: Owner, listener: &Resource) -> ApiResult<Value> {
    let mut out = listeners::view(listener);
    let callback_id = listener.body.get("callback_id").and_then(Value::as_i64);
    let callback = find(state, Kind::Callback, owner, callback_id).await?;
    out[":callback"] = match callback {
        None => Value::Null,
        Some(cb) => {
            let mut v = callbacks::view(&cb);
            let profile = find(
                state,
                Kind::Profile,
                owner,
                cb.body.get("profile_id").and_then(Value::as_i64),
            )
            .await?;
            v[":profile"] = profile.as_ref().map(profiles::view).unwrap_or(Value::Null);
            let fallback = find(
                state,
                Kind::Callback,
                owner,
                cb.body.get("fallback_callback_id").and_then(Value::as_i64),
            )
            .await?;
            v[":fallback"] = fallback
                .as_ref()
                .map(callbacks::view)
                .unwrap_or(Value::Null);
            v
        }
    };
    let subs = state
        .store
        .children_of(Kind::Subscription, owner.account, vec![listener.id])
        .await?;
    out[":subscriptions"] = Value::Array(subs.iter().map(subscriptions::view).collect());
    Ok(out)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(&query, &[])?;
    let (total, items) = state
        .store
        .list_resources(ListQuery {
            kind: Kind::Listener,
            owner: caller.owner,
            parent_id: None,
            equals: Vec::new(),
            limit: page.limit,
            offset: page.offset,
        })
        .await?;
    let mut out = Vec::with_capacity(items.len());
    for l in &items {
        out.push(item(&state, caller.owner, l).await?);
    }
    Ok(Json(page.envelope(total, out)))
}

async fn express_create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let owner = caller.owner;
    // The callback: an existing one by id, or a new one (possibly with a new profile).
    let new_callback = match (body.get("callback_id"), body.get(":callback")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                ":callback",
                "give callback_id or :callback, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "callback_id",
                "missing: give callback_id or a :callback object",
            ))
        }
        (Some(_), None) => None,
        (None, Some(Value::Object(cb))) => {
            let profile = match cb.get(":profile") {
                None | Some(Value::Null) => None,
                Some(Value::Object(p)) => Some(profiles::check(p, None, ":callback.:profile.")?),
                Some(_) => {
                    return Err(ApiError::invalid(
                        ":callback.:profile",
                        "expected an object",
                    ))
                }
            };
            let checked = callbacks::check(cb, None, ":callback.")?;
            if profile.is_some() && checked.doc.get("profile_id").is_some_and(|p| !p.is_null()) {
                return Err(ApiError::invalid(
                    ":callback.profile_id",
                    "give profile_id or :profile, not both",
                ));
            }
            Some((checked, profile))
        }
        (None, Some(_)) => return Err(ApiError::invalid(":callback", "expected an object")),
    };
    let (subs_key, subs) = match (body.get(":subscriptions"), body.get("subscriptions")) {
        (Some(s), _) => (":subscriptions", s),
        (None, Some(s)) => ("subscriptions", s),
        (None, None) => {
            return Err(ApiError::invalid(
                ":subscriptions",
                "missing: at least one subscription is required",
            ))
        }
    };
    let Some(subs) = subs.as_array().filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid(
            subs_key,
            "expected a non-empty array of subscriptions",
        ));
    };
    let mut sub_docs = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        let Some(s) = s.as_object() else {
            return Err(ApiError::invalid(
                format!("{subs_key}[{i}]"),
                "expected an object",
            ));
        };
        sub_docs.push(subscriptions::check(s, &format!("{subs_key}[{i}]."))?);
    }
    let mut listener_body: Body = Body::new();
    for key in ["callback_id", "version", "expires_at"] {
        if let Some(v) = body.get(key) {
            listener_body.insert(key.into(), v.clone());
        }
    }
    if new_callback.is_some() {
        listener_body.insert("callback_id".into(), json!(0));
    }
    let (listener_doc, listener_refs) = listeners::check(&listener_body, None, "")?;
    if let Some((checked, _)) = &new_callback {
        callbacks::verify(&state, checked, ":callback.").await?;
    }

    let made = state
        .store
        .create_resources(move |add| {
            let mut callback_ref = listener_refs;
            let mut listener_doc = listener_doc;
            if let Some((checked, profile)) = new_callback {
                let mut doc = checked.doc;
                let mut refs = checked.refs;
                if let Some(profile) = profile {
                    let p = add(NewResource {
                        kind: Kind::Profile,
                        owner,
                        parent_id: None,
                        body: Value::Object(profile),
                        refs: Vec::new(),
                    })?;
                    doc.insert("profile_id".into(), json!(p.id));
                    refs.push(Ref {
                        field: ":callback.:profile".into(),
                        kind: Kind::Profile,
                        id: p.id,
                    });
                }
                let cb = add(NewResource {
                    kind: Kind::Callback,
                    owner,
                    parent_id: None,
                    body: Value::Object(doc),
                    refs,
                })?;
                listener_doc.insert("callback_id".into(), json!(cb.id));
                callback_ref = vec![Ref {
                    field: ":callback".into(),
                    kind: Kind::Callback,
                    id: cb.id,
                }];
            }
            let listener = add(NewResource {
                kind: Kind::Listener,
                owner,
                parent_id: None,
                body: Value::Object(listener_doc),
                refs: callback_ref,
            })?;
            for doc in sub_docs {
                add(NewResource {
                    kind: Kind::Subscription,
                    owner,
                    parent_id: Some(listener.id),
                    body: Value::Object(doc),
                    refs: Vec::new(),
                })?;
            }
            Ok(())
        })
        .await?;
    let listener = made
        .iter()
        .find(|r| r.kind == Kind::Listener)
        .expect("express create made a listener");
    let mut out = item(&state, owner, listener).await?;
    if let Some(cb) = made.iter().find(|r| r.kind == Kind::Callback) {
        out[":callback"]["secret"] = cb.body.get("secret").cloned().unwrap_or(Value::Null);
    }
    Ok(Json(out))
}
