//! Filters: conditions every event must pass to reach a listener. `number` filters compare
//! against every party number of the event (`eq`, `in`, `match` with `%` wildcards);
//! `schedule` filters pass events that happened inside a schedule's hours (`{"id": N}`, a
//! schedule of the same owner); `not_logic` inverts one.

use super::callbacks::not_found_as;
use super::fields::{opt_bool, Body};
use super::listeners::listener_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonObject};
use crate::listing::{page_of, Page};
use crate::openapi::{Api, Op, PAGING};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use switchboard_store::{Kind, NewResource, Ref, Resource};

pub fn router() -> Api {
    const TAG: &str = "Filters";
    Api::new()
        .route(
            "/listeners/{listener_id}/filters",
            TAG,
            [
                Op::get(list)
                    .named("listFilters", "List a listener's filters")
                    .query(PAGING)
                    .reply(200, "The filters.", "FilterPage"),
                Op::post(create)
                    .named("createFilter", "Create a filter")
                    .about("All filters of a listener must pass for an event to reach it.")
                    .body("FilterCreate")
                    .reply(200, "The filter made.", "Filter"),
            ],
        )
        .route(
            "/listeners/{listener_id}/filters/{filter_id}",
            TAG,
            [
                Op::get(show).named("getFilter", "Get a filter").reply(
                    200,
                    "The filter.",
                    "Filter",
                ),
                Op::patch(update)
                    .named("updateFilter", "Update a filter")
                    .body("FilterUpdate")
                    .reply(200, "The filter as it is now.", "Filter"),
                Op::delete(remove)
                    .named("deleteFilter", "Delete a filter")
                    .reply(200, "Deleted.", "Success"),
            ],
        )
}

pub fn view(r: &Resource) -> Value {
    let b = &r.body;
    json!({
        "id": r.id,
        "listener_id": r.parent_id,
        "filter_type": b.get("filter_type").cloned().unwrap_or(Value::Null),
        "filter_value": b.get("filter_value").cloned().unwrap_or(Value::Null),
        "not_logic": b.get("not_logic").cloned().unwrap_or(Value::Bool(false)),
    })
}

fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

fn check_number_value(value: &Value) -> ApiResult<Value> {
    let Some(obj) = value.as_object() else {
        return Err(ApiError::invalid(
            "filter_value",
            "expected an object with one of eq, in, match",
        ));
    };
    let given: Vec<&str> = ["eq", "in", "match"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if given.len() != 1 {
        return Err(ApiError::invalid(
            "filter_value",
            "give exactly one of eq, in, match",
        ));
    }
    match given[0] {
        "eq" => match obj["eq"].as_str() {
            Some(n) if is_number(n) => Ok(json!({ "eq": n })),
            _ => Err(ApiError::invalid(
                "filter_value.eq",
                "expected a phone number: + followed by digits",
            )),
        },
        "in" => {
            let Some(list) = obj["in"].as_array().filter(|l| !l.is_empty()) else {
                return Err(ApiError::invalid(
                    "filter_value.in",
                    "expected a non-empty array of phone numbers",
                ));
            };
            for (i, n) in list.iter().enumerate() {
                if !n.as_str().is_some_and(is_number) {
                    return Err(ApiError::invalid(
                        format!("filter_value.in[{i}]"),
                        "expected a phone number: + followed by digits",
                    ));
                }
            }
            Ok(json!({ "in": list }))
        }
        _ => match obj["match"].as_str() {
            Some(m)
                if !m.is_empty()
                    && m.chars()
                        .all(|c| c == '%' || c == '+' || c.is_ascii_digit()) =>
            {
                Ok(json!({ "match": m }))
            }
            _ => Err(ApiError::invalid(
                "filter_value.match",
                "expected a number pattern of digits, + and % wildcards",
            )),
        },
    }
}

/// A `schedule` filter's value: the id of a schedule it names.
fn check_schedule_value(value: &Value) -> ApiResult<(Value, i64)> {
    match value
        .as_object()
        .and_then(|o| o.get("id"))
        .and_then(Value::as_i64)
        .filter(|id| *id > 0)
    {
        Some(id) => Ok((json!({ "id": id }), id)),
        None => Err(ApiError::invalid(
            "filter_value.id",
            "expected the integer id of a schedule",
        )),
    }
}

/// A checked filter document and the schedule it names, if any.
struct Checked {
    doc: Body,
    refs: Vec<Ref>,
}

fn check(body: &Body, existing: Option<&Body>) -> ApiResult<Checked> {
    let mut doc = existing.cloned().unwrap_or_else(|| {
        let mut d = Body::new();
        d.insert("not_logic".into(), Value::Bool(false));
        d
    });
    match body.get("filter_type") {
        Some(t) => match t.as_str() {
            Some(kind @ ("number" | "schedule")) => {
                doc.insert("filter_type".into(), json!(kind));
            }
            _ => {
                return Err(ApiError::invalid(
                    "filter_type",
                    "expected \"number\" or \"schedule\"",
                ))
            }
        },
        None if existing.is_none() => {
            return Err(ApiError::invalid(
                "filter_type",
                "missing: this field is required",
            ))
        }
        None => {}
    }
    let value = match body.get("filter_value") {
        Some(v) => v.clone(),
        None if existing.is_none() => {
            return Err(ApiError::invalid(
                "filter_value",
                "missing: this field is required",
            ))
        }
        None => doc.get("filter_value").cloned().unwrap_or(Value::Null),
    };
    // The value is checked against the type, whichever of the two this request changed.
    let mut refs = Vec::new();
    let value = if doc.get("filter_type") == Some(&json!("schedule")) {
        let (value, id) = check_schedule_value(&value)?;
        refs.push(Ref {
            field: "filter_value.id".into(),
            kind: Kind::Schedule,
            id,
        });
        value
    } else {
        check_number_value(&value)?
    };
    doc.insert("filter_value".into(), value);
    if let Some(not) = opt_bool(body, "not_logic", "not_logic")? {
        doc.insert("not_logic".into(), json!(not));
    }
    Ok(Checked { doc, refs })
}

async fn get_filter(state: &AppState, caller: &Caller) -> ApiResult<Resource> {
    let (owner, listener) = listener_of(state, caller).await?;
    let id = caller.id("filter_id", "filter")?;
    state
        .store
        .get_resource(Kind::Filter, owner, Some(listener), id)
        .await?
        .ok_or_else(|| ApiError::not_found("filter"))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (owner, listener) = listener_of(&state, &caller).await?;
    let page = Page::parse(&query, &[])?;
    page_of(&state, Kind::Filter, owner, Some(listener), &page, view).await
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let (owner, listener) = listener_of(&state, &caller).await?;
    let Checked { doc, refs } = check(&body, None)?;
    let created = state
        .store
        .create_resource(NewResource {
            kind: Kind::Filter,
            owner,
            parent_id: Some(listener),
            body: Value::Object(doc),
            refs,
        })
        .await?;
    Ok(Json(view(&created)))
}

async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    Ok(Json(view(&get_filter(&state, &caller).await?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let current = get_filter(&state, &caller).await?;
    let Checked { doc, refs } = check(&body, current.body.as_object())?;
    let updated = state
        .store
        .update_resource(
            Kind::Filter,
            caller.owner,
            current.parent_id,
            current.id,
            move |_| Ok((Value::Object(doc), refs)),
        )
        .await
        .map_err(|e| not_found_as(e, "filter"))?;
    Ok(Json(view(&updated)))
}

async fn remove(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let current = get_filter(&state, &caller).await?;
    state
        .store
        .delete_resource(
            Kind::Filter,
            caller.owner,
            current.parent_id,
            current.id,
            Vec::new(),
        )
        .await
        .map_err(|e| not_found_as(e, "filter"))?;
    Ok(Json(json!({ "success": true })))
}
