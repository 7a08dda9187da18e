//! Subscriptions: the tags a listener wants. All tags of one subscription must be on an event;
//! a listener receives an event when any of its subscriptions matches.

use super::callbacks::not_found_as;
use super::fields::Body;
use super::listeners::listener_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonObject};
use crate::listing::{page_of, Page};
use crate::openapi::{Api, Op, PAGING};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use switchboard_model::tags;
use switchboard_store::{Kind, NewResource, Resource};

pub fn router() -> Api {
    const TAG: &str = "Subscriptions";
    Api::new()
        .route(
            "/listeners/{listener_id}/subscriptions",
            TAG,
            [
                Op::get(list)
                    .named("listSubscriptions", "List a listener's subscriptions")
                    .query(PAGING)
                    .reply(200, "The subscriptions.", "SubscriptionPage"),
                Op::post(create)
                    .named(
                        "createSubscription",
                        "Subscribe a listener to events with these tags",
                    )
                    .body("SubscriptionCreate")
                    .reply(200, "The subscription made.", "Subscription"),
            ],
        )
        .route(
            "/listeners/{listener_id}/subscriptions/{subscription_id}",
            TAG,
            [
                Op::get(show)
                    .named("getSubscription", "Get a subscription")
                    .reply(200, "The subscription.", "Subscription"),
                Op::delete(remove)
                    .named("deleteSubscription", "Delete a subscription")
                    .reply(200, "Deleted.", "Success"),
            ],
        )
}

pub fn view(r: &Resource) -> Value {
    json!({ "id": r.id, ":tags": r.body.get(":tags").cloned().unwrap_or(json!([])) })
}

/// Checks a subscription body; `path` prefixes paths (e.g. `:subscriptions[0].`).
pub fn check(body: &Body, path: &str) -> ApiResult<Body> {
    let p = format!("{path}:tags");
    let Some(value) = body.get(":tags") else {
        return Err(ApiError::invalid(p, "missing: this field is required"));
    };
    let Some(list) = value.as_array().filter(|l| !l.is_empty()) else {
        return Err(ApiError::invalid(p, "expected a non-empty array of tags"));
    };
    let mut out: Vec<String> = Vec::new();
    for (i, tag) in list.iter().enumerate() {
        let Some(tag) = tag.as_str() else {
            return Err(ApiError::invalid(format!("{p}[{i}]"), "expected a string"));
        };
        if !tags::is_known(tag) {
            return Err(ApiError::invalid(
                format!("{p}[{i}]"),
                format!(
                    "unknown tag {tag:?}; known tags: {}",
                    tags::KNOWN.join(", ")
                ),
            ));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    let mut doc = Body::new();
    doc.insert(":tags".into(), json!(out));
    Ok(doc)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (owner, listener) = listener_of(&state, &caller).await?;
    let page = Page::parse(&query, &[])?;
    page_of(
        &state,
        Kind::Subscription,
        owner,
        Some(listener),
        &page,
        view,
    )
    .await
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let (owner, listener) = listener_of(&state, &caller).await?;
    let doc = check(&body, "")?;
    let created = state
        .store
        .create_resource(NewResource {
            kind: Kind::Subscription,
            owner,
            parent_id: Some(listener),
            body: Value::Object(doc),
            refs: Vec::new(),
        })
        .await?;
    Ok(Json(view(&created)))
}

async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let (owner, listener) = listener_of(&state, &caller).await?;
    let id = caller.id("subscription_id", "subscription")?;
    let found = state
        .store
        .get_resource(Kind::Subscription, owner, Some(listener), id)
        .await?;
    Ok(Json(view(
        &found.ok_or_else(|| ApiError::not_found("subscription"))?,
    )))
}

async fn remove(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let (owner, listener) = listener_of(&state, &caller).await?;
    let id = caller.id("subscription_id", "subscription")?;
    state
        .store
        .delete_resource(Kind::Subscription, owner, Some(listener), id, Vec::new())
        .await
        .map_err(|e| not_found_as(e, "subscription"))?;
    Ok(Json(json!({ "success": true })))
}
