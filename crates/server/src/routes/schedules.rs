//! Schedules: weekly hours in a time zone, named by `schedule` filters (`filter_value.id`).
//!
//! Phone.com keeps schedules in its account API, outside the events API; a hub has no such
//! account, so it keeps them here, beside the filters that use them. A change applies at
//! once to the events that follow (Phone.com resyncs asynchronously).

use super::callbacks::not_found_as;
use super::fields::{opt_text, Body};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonObject};
use crate::listing::{page_of, Page};
use crate::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_engine::WeeklySchedule;
use switchboard_store::{Blocker, Kind, NewResource, Resource};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/schedules", get(list).post(create))
        .route(
            "/schedules/{schedule_id}",
            get(show).patch(update).delete(remove),
        )
}

fn view(r: &Resource) -> Value {
    let b = &r.body;
    json!({
        "id": r.id,
        "voip_id": r.account,
        "extension_id": r.extension_id,
        "name": b.get("name").cloned().unwrap_or(Value::Null),
        "timezone": b.get("timezone").cloned().unwrap_or(Value::Null),
        "rules": b.get("rules").cloned().unwrap_or(Value::Null),
        "created_at": r.created_at,
    })
}

/// Checks a schedule body over an existing document (or a new one).
fn check(body: &Body, existing: Option<&Body>) -> ApiResult<Body> {
    let mut doc = existing.cloned().unwrap_or_default();
    match opt_text(body, "name", "name")? {
        Some(name) => {
            doc.insert("name".into(), json!(name));
        }
        None if existing.is_none() => {
            doc.insert("name".into(), Value::Null);
        }
        None => {}
    }
    for field in ["timezone", "rules"] {
        match body.get(field) {
            Some(v) => {
                doc.insert(field.into(), v.clone());
            }
            None if existing.is_none() => {
                return Err(ApiError::invalid(field, "missing: this field is required"))
            }
            None => {}
        }
    }
    let (timezone, rules) = (&doc["timezone"], &doc["rules"]);
    WeeklySchedule::parse(timezone, rules).map_err(|e| ApiError::invalid(e.field, e.message))?;
    Ok(doc)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(&query, &[])?;
    page_of(&state, Kind::Schedule, caller.owner, None, &page, view).await
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let doc = check(&body, None)?;
    let created = state
        .store
        .create_resource(NewResource {
            kind: Kind::Schedule,
            owner: caller.owner,
            parent_id: None,
            body: Value::Object(doc),
            refs: Vec::new(),
        })
        .await?;
    Ok(Json(view(&created)))
}

async fn get_schedule(state: &AppState, caller: &Caller) -> ApiResult<Resource> {
    let id = caller.id("schedule_id", "schedule")?;
    state
        .store
        .get_resource(Kind::Schedule, caller.owner, None, id)
        .await?
        .ok_or_else(|| ApiError::not_found("schedule"))
}

async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    Ok(Json(view(&get_schedule(&state, &caller).await?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let current = get_schedule(&state, &caller).await?;
    let doc = check(&body, current.body.as_object())?;
    let updated = state
        .store
        .update_resource(Kind::Schedule, caller.owner, None, current.id, move |_| {
            Ok((Value::Object(doc), Vec::new()))
        })
        .await
        .map_err(|e| not_found_as(e, "schedule"))?;
    Ok(Json(view(&updated)))
}

async fn remove(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("schedule_id", "schedule")?;
    state
        .store
        .delete_resource(
            Kind::Schedule,
            caller.owner,
            None,
            id,
            vec![Blocker {
                kind: Kind::Filter,
                field: "filter_value.id",
                message: "Error: Schedule is in use. Look for schedule filters using it.".into(),
            }],
        )
        .await
        .map_err(|e| not_found_as(e, "schedule"))?;
    Ok(Json(json!({ "success": true })))
}
