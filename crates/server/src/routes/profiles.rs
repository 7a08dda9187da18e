//! Profiles: who to tell (`support_email`) when a callback keeps failing.

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
use switchboard_store::{Blocker, Kind, NewResource, Resource};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/profiles", get(list).post(create))
        .route(
            "/profiles/{profile_id}",
            get(show).patch(update).delete(remove),
        )
}

pub fn view(r: &Resource) -> Value {
    let b = &r.body;
    json!({
        "id": r.id,
        "voip_id": r.account,
        "extension_id": r.extension_id,
        "name": b.get("name").cloned().unwrap_or(Value::Null),
        "support_email": b.get("support_email").cloned().unwrap_or(Value::Null),
        "created_at": r.created_at,
    })
}

/// Checks a profile body over an existing document (or a new one); `path` prefixes paths.
pub fn check(body: &Body, existing: Option<&Body>, path: &str) -> ApiResult<Body> {
    let p = |f: &str| format!("{path}{f}");
    let mut doc = existing.cloned().unwrap_or_default();
    match opt_text(body, "name", &p("name"))? {
        Some(Some(name)) => {
            doc.insert("name".into(), json!(name));
        }
        Some(None) => return Err(ApiError::invalid(p("name"), "expected a string")),
        None if existing.is_none() => {
            return Err(ApiError::invalid(
                p("name"),
                "missing: this field is required",
            ))
        }
        None => {}
    }
    match opt_text(body, "support_email", &p("support_email"))? {
        Some(Some(email)) => {
            let plausible = email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
            if !plausible {
                return Err(ApiError::invalid(
                    p("support_email"),
                    "expected an e-mail address",
                ));
            }
            doc.insert("support_email".into(), json!(email));
        }
        Some(None) => {
            doc.insert("support_email".into(), Value::Null);
        }
        None if existing.is_none() => {
            return Err(ApiError::invalid(
                p("support_email"),
                "missing: this field is required",
            ))
        }
        None => {}
    }
    Ok(doc)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(&query, &[])?;
    page_of(&state, Kind::Profile, caller.owner, None, &page, view).await
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let doc = check(&body, None, "")?;
    let created = state
        .store
        .create_resource(NewResource {
            kind: Kind::Profile,
            owner: caller.owner,
            parent_id: None,
            body: Value::Object(doc),
            refs: Vec::new(),
        })
        .await?;
    Ok(Json(view(&created)))
}

async fn get_profile(state: &AppState, caller: &Caller) -> ApiResult<Resource> {
    let id = caller.id("profile_id", "profile")?;
    state
        .store
        .get_resource(Kind::Profile, caller.owner, None, id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))
}

async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    Ok(Json(view(&get_profile(&state, &caller).await?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let current = get_profile(&state, &caller).await?;
    let doc = check(&body, current.body.as_object(), "")?;
    let updated = state
        .store
        .update_resource(Kind::Profile, caller.owner, None, current.id, move |_| {
            Ok((Value::Object(doc), Vec::new()))
        })
        .await
        .map_err(|e| not_found_as(e, "profile"))?;
    Ok(Json(view(&updated)))
}

async fn remove(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("profile_id", "profile")?;
    state
        .store
        .delete_resource(
            Kind::Profile,
            caller.owner,
            None,
            id,
            vec![Blocker {
                kind: Kind::Callback,
                field: "profile_id",
                message: "Error: Profile is in use. Look for callbacks using it.".into(),
            }],
        )
        .await
        .map_err(|e| not_found_as(e, "profile"))?;
    Ok(Json(json!({ "success": true })))
}
