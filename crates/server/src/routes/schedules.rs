//! Schedules: weekly hours in a time zone, named by `schedule` filters (`filter_value.id`).
//!
//! Phone.com keeps schedules in its account API, outside the events API; a hub has no such
//! account, so it keeps them here, beside the filters that use them. A change applies at
//! once to the events that follow (Phone.com resyncs asynchronously).

use super::fields::{opt_text, Body};
use super::plain::Plain;
use crate::error::{ApiError, ApiResult};
use serde_json::{json, Value};
use switchboard_engine::WeeklySchedule;
use switchboard_store::{Blocker, Kind, Resource};

/// The routes of `/schedules`.
pub static SCHEDULES: Plain = Plain {
    kind: Kind::Schedule,
    path: "/schedules",
    param: "schedule_id",
    name: "schedule",
    title: "Schedule",
    tag: "Schedules",
    view,
    check,
    in_use: || Blocker {
        kind: Kind::Filter,
        field: "filter_value.id",
        message: "Error: Schedule is in use. Look for schedule filters using it.".into(),
    },
};

pub fn view(r: &Resource) -> Value {
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
