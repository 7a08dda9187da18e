//! Profiles: who to tell (`support_email`) when a callback keeps failing.

use super::fields::{opt_text, Body};
use super::plain::Plain;
use crate::error::{ApiError, ApiResult};
use serde_json::{json, Value};
use switchboard_store::{Blocker, Kind, Resource};

/// The routes of `/profiles`.
pub static PROFILES: Plain = Plain {
    kind: Kind::Profile,
    path: "/profiles",
    param: "profile_id",
    name: "profile",
    title: "Profile",
    tag: "Profiles",
    view,
    check: |body, existing| check(body, existing, ""),
    in_use: || Blocker {
        kind: Kind::Callback,
        field: "profile_id",
        message: "Error: Profile is in use. Look for callbacks using it.".into(),
    },
};

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
