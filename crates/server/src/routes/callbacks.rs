//! Callbacks: where events are sent. Creating one, or changing its URL, first checks that
//! the URL answers 200 or 201 to a POST of `{"test": 1}`.

use super::fields::{opt_bool, opt_id, opt_text, required, Body};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonObject};
use crate::listing::{page_of, FilterKind, Page};
use crate::openapi::{Api, Op, Param, Ty, PAGING};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use switchboard_delivery::signing::new_secret;
use switchboard_delivery::{EmailConfig, GoogleAnalytics, HttpConfig};
use switchboard_store::{Blocker, Kind, NewResource, Owner, Ref, Resource, StoreError};

pub fn router() -> Api {
    const TAG: &str = "Callbacks";
    Api::new()
        .route(
            "/callbacks",
            TAG,
            [
                Op::get(list)
                    .named("listCallbacks", "List callbacks")
                    .query(PAGING)
                    .query(&[
                        Param::new("filters[name]", Ty::Text, "Only callbacks of this name."),
                        Param::new("filters[profile_id]", Ty::Text, "Only callbacks of this profile (`null` for none)."),
                        Param::new("filters[fallback_callback_id]", Ty::Text, "Only callbacks with this fallback (`null` for none)."),
                    ])
                    .reply(200, "The callbacks, newest first.", "CallbackPage"),
                Op::post(create)
                    .named("createCallback", "Create a callback")
                    .about("An HTTP(S) callback's URL is sent `POST {\"test\": 1}` first and must answer 200 or 201. The answer shows the signing secret, this once.")
                    .body("CallbackCreate")
                    .reply(200, "The callback made.", "Callback"),
            ],
        )
        .route(
            "/callbacks/{callback_id}",
            TAG,
            [
                Op::get(show)
                    .named("getCallback", "Get a callback")
                    .reply(200, "The callback.", "Callback"),
                Op::patch(update)
                    .named("updateCallback", "Update a callback")
                    .about("Setting `enabled: true` again clears its failure streak.")
                    .body("CallbackUpdate")
                    .reply(200, "The callback as it is now.", "Callback"),
                Op::delete(remove)
                    .named("deleteCallback", "Delete a callback")
                    .reply(200, "Deleted.", "Success")
                    .reply(409, "A listener uses it, or it is another callback's fallback.", "Error"),
            ],
        )
        .route(
            "/callbacks/{callback_id}/deliveries",
            TAG,
            [Op::get(deliveries)
                .named("listDeliveries", "List a callback's deliveries")
                .about("With each delivery's attempts (Switchboard's own).")
                .query(PAGING)
                .reply(200, "The deliveries, newest first.", "DeliveryPage")],
        )
        .route(
            "/callbacks/{callback_id}/deliveries/{delivery_id}/retry",
            TAG,
            [Op::post(retry)
                .named("retryDelivery", "Send a delivery once more")
                .reply(200, "It is pending again.", "RetryAnswer")],
        )
        .route(
            "/callbacks/{callback_id}/rotate-secret",
            TAG,
            [Op::post(rotate_secret)
                .named("rotateSecret", "Give a callback a new signing secret")
                .about("The old secret signs beside the new one for 24 hours.")
                .reply(200, "The new secret.", "SecretAnswer")],
        )
}

/// Header names whose values are never shown back.
const SECRET_HEADERS: &[&str] = &["authorization", "x-api-key"];

fn redacted_config(config: &Value) -> Value {
    let mut config = config.clone();
    if let Some(headers) = config.get_mut("headers").and_then(Value::as_array_mut) {
        for h in headers {
            let secret = h
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| SECRET_HEADERS.contains(&n.to_ascii_lowercase().as_str()));
            if secret {
                h["value"] = Value::Bool(true);
            }
        }
    }
    config
}

/// A callback as the API shows it (secrets redacted, and its config's defaults said: an
/// HTTP(S) callback's `method` is `POST`, as the reference shows it).
pub fn view(r: &Resource) -> Value {
    let b = &r.body;
    let mode = b.get("mode").and_then(Value::as_str).unwrap_or("HTTPS");
    let mut config = redacted_config(b.get("config").unwrap_or(&Value::Null));
    if let Some(c) = config.as_object_mut() {
        match mode {
            "EMAIL" => {
                c.entry("mode").or_insert_with(|| json!("json"));
            }
            "APPLICATION" => {}
            _ => {
                c.entry("method").or_insert_with(|| json!("POST"));
            }
        }
    }
    json!({
        "id": r.id,
        "voip_id": r.account,
        "extension_id": r.extension_id,
        "fallback_callback_id": b.get("fallback_callback_id").cloned().unwrap_or(Value::Null),
        "name": b.get("name").cloned().unwrap_or(Value::Null),
        "profile_id": b.get("profile_id").cloned().unwrap_or(Value::Null),
        "enabled": b.get("enabled").cloned().unwrap_or(Value::Bool(true)),
        "mode": b.get("mode").cloned().unwrap_or(json!("HTTPS")),
        "config": config,
        "created_at": r.created_at,
    })
}

/// A callback document checked and ready to store.
pub struct Checked {
    pub doc: Body,
    pub refs: Vec<Ref>,
    /// The HTTP config (`None` for mode EMAIL).
    pub http: Option<HttpConfig>,
    /// True when the URL is new (created, or changed by an update): it must be verified.
    pub url_changed: bool,
    /// Mode EMAIL: the hub needs a mail server for it.
    pub email: bool,
}

/// Checks a create body (`existing` = None) or an update over an existing document. `path`
/// prefixes field paths (`:callback.` inside an express create).
pub fn check(body: &Body, existing: Option<&Body>, path: &str) -> ApiResult<Checked> {
    let p = |f: &str| format!("{path}{f}");
    let mut doc = existing.cloned().unwrap_or_else(|| {
        let mut d = Body::new();
        d.insert("name".into(), Value::Null);
        d.insert("fallback_callback_id".into(), Value::Null);
        d.insert("profile_id".into(), Value::Null);
        d.insert("enabled".into(), Value::Bool(true));
        d.insert("mode".into(), json!("HTTPS"));
        d.insert("secret".into(), json!(new_secret()));
        d
    });
    if let Some(name) = opt_text(body, "name", &p("name"))? {
        doc.insert("name".into(), json!(name));
    }
    if let Some(enabled) = opt_bool(body, "enabled", &p("enabled"))? {
        doc.insert("enabled".into(), json!(enabled));
    }
    if let Some(id) = opt_id(body, "profile_id", &p("profile_id"))? {
        doc.insert("profile_id".into(), json!(id));
    }
    if let Some(id) = opt_id(body, "fallback_callback_id", &p("fallback_callback_id"))? {
        doc.insert("fallback_callback_id".into(), json!(id));
    }
    if let Some(mode) = body.get("mode") {
        let mode = mode.as_str().map(str::to_ascii_uppercase);
        match mode.as_deref() {
            Some(m @ ("HTTP" | "HTTPS" | "EMAIL" | "APPLICATION")) => {
                doc.insert("mode".into(), json!(m));
            }
            _ => {
                return Err(ApiError::invalid(
                    p("mode"),
                    "expected one of HTTP, HTTPS, EMAIL, APPLICATION",
                ))
            }
        }
    }
    let old_url = existing
        .and_then(|e| e.get("config"))
        .and_then(|c| c.get("url"))
        .cloned();
    match (body.get("config"), existing) {
        (None, None) => {
            required(body, "config", &p("config"))?;
        }
        (None, Some(_)) => {}
        (Some(Value::Object(new)), _) => {
            // An update merges the given config keys over the stored ones.
            let mut merged = doc
                .get("config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in new {
                merged.insert(k.clone(), v.clone());
            }
            doc.insert("config".into(), Value::Object(merged));
        }
        (Some(_), _) => return Err(ApiError::invalid(p("config"), "expected an object")),
    }
    let config = doc.get("config").cloned().unwrap_or(Value::Null);
    let config_path = |sub: &str| {
        if sub.is_empty() {
            p("config")
        } else {
            p(&format!("config.{sub}"))
        }
    };
    let mode = doc.get("mode").and_then(Value::as_str).unwrap_or("HTTPS");
    let email = mode == "EMAIL";
    let application = mode == "APPLICATION";
    let http = if application {
        // An application has no URL of its own to verify.
        GoogleAnalytics::from_json(&config)
            .map_err(|(path, message)| ApiError::invalid(config_path(&path), message))?;
        None
    } else if email {
        EmailConfig::from_json(&config)
            .map_err(|(path, message)| ApiError::invalid(config_path(&path), message))?;
        if !doc.contains_key("unsubscribe_token") {
            let token = new_secret()
                .trim_start_matches("whsec_")
                .replace(['/', '+', '='], "");
            doc.insert("unsubscribe_token".into(), json!(token));
        }
        None
    } else {
        Some(
            HttpConfig::from_json(&config)
                .map_err(|e| ApiError::invalid(config_path(&e.path), e.message))?,
        )
    };
    let url_changed = !email && !application && old_url.as_ref() != config.get("url");
    let mut refs = Vec::new();
    if let Some(id) = doc.get("profile_id").and_then(Value::as_i64) {
        refs.push(Ref {
            field: p("profile_id"),
            kind: Kind::Profile,
            id,
        });
    }
    if let Some(id) = doc.get("fallback_callback_id").and_then(Value::as_i64) {
        refs.push(Ref {
            field: p("fallback_callback_id"),
            kind: Kind::Callback,
            id,
        });
    }
    Ok(Checked {
        doc,
        refs,
        http,
        url_changed,
        email,
    })
}

/// Refuses a callback whose URL is not allowed or does not answer the test request, or an
/// e-mail callback on a hub that cannot send mail.
pub async fn verify(state: &AppState, checked: &Checked, path: &str) -> ApiResult<()> {
    match &checked.http {
        Some(http) if checked.url_changed => state
            .delivery
            .verify(http)
            .await
            .map_err(|why| ApiError::invalid(format!("{path}config.url"), why)),
        Some(_) => Ok(()),
        None if checked.email && !state.delivery.can_email() => Err(ApiError::invalid(
            format!("{path}mode"),
            "this hub has no SMTP server configured (smtp_host), so it cannot send EMAIL callbacks",
        )),
        None => Ok(()),
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(
        &query,
        &[
            ("name", FilterKind::Text),
            ("profile_id", FilterKind::Id),
            ("fallback_callback_id", FilterKind::Id),
        ],
    )?;
    page_of(&state, Kind::Callback, caller.owner, None, &page, view).await
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let checked = check(&body, None, "")?;
    verify(&state, &checked, "").await?;
    let secret = checked.doc.get("secret").cloned();
    let created = state
        .store
        .create_resource(NewResource {
            kind: Kind::Callback,
            owner: caller.owner,
            parent_id: None,
            body: Value::Object(checked.doc),
            refs: checked.refs,
        })
        .await?;
    tracing::info!(account = %caller.owner.account, callback = created.id, "callback created");
    let mut out = view(&created);
    // The signing secret is shown once, here.
    out["secret"] = secret.unwrap_or(Value::Null);
    Ok(Json(out))
}

pub async fn get_callback(state: &AppState, owner: Owner, id: i64) -> ApiResult<Resource> {
    state
        .store
        .get_resource(Kind::Callback, owner, None, id)
        .await?
        .ok_or_else(|| ApiError::not_found("callback"))
}

async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("callback_id", "callback")?;
    Ok(Json(view(&get_callback(&state, caller.owner, id).await?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let id = caller.id("callback_id", "callback")?;
    let current = get_callback(&state, caller.owner, id).await?;
    let existing = current.body.as_object().cloned().unwrap_or_default();
    let checked = check(&body, Some(&existing), "")?;
    if checked
        .doc
        .get("fallback_callback_id")
        .and_then(Value::as_i64)
        == Some(id)
    {
        return Err(ApiError::invalid(
            "fallback_callback_id",
            "a callback cannot be its own fallback",
        ));
    }
    verify(&state, &checked, "").await?;
    let switched_on = body.get("enabled") == Some(&Value::Bool(true));
    let Checked { doc, refs, .. } = checked;
    if switched_on {
        // Switched on by hand: its failure streak starts again from zero.
        state.store.reset_callback_health(id).await?;
    }
    let updated = state
        .store
        .update_resource(Kind::Callback, caller.owner, None, id, move |_| {
            Ok((Value::Object(doc), refs))
        })
        .await
        .map_err(|e| not_found_as(e, "callback"))?;
    Ok(Json(view(&updated)))
}

/// Phone.com's message for a callback that is still referred to.
const IN_USE: &str = "Error: Callback is in use. Look for listeners using it.";

async fn remove(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("callback_id", "callback")?;
    state
        .store
        .delete_resource(
            Kind::Callback,
            caller.owner,
            None,
            id,
            vec![
                Blocker {
                    kind: Kind::Listener,
                    field: "callback_id",
                    message: IN_USE.into(),
                },
                Blocker {
                    kind: Kind::Callback,
                    field: "fallback_callback_id",
                    message: IN_USE.into(),
                },
            ],
        )
        .await
        .map_err(|e| not_found_as(e, "callback"))?;
    Ok(Json(json!({ "success": true })))
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let id = caller.id("callback_id", "callback")?;
    get_callback(&state, caller.owner, id).await?;
    let page = Page::parse(&query, &[])?;
    let found = state
        .store
        .deliveries_of_callback(caller.owner.account, id, page.limit, page.offset)
        .await?;
    let items = found
        .items
        .into_iter()
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .collect();
    let mut out = page.envelope(found.total, items);
    // How many wait for the callback to be switched on (all of them listed as `waiting`).
    out["waiting"] = json!(found.waiting);
    Ok(Json(out))
}

async fn retry(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("callback_id", "callback")?;
    let delivery = caller.id("delivery_id", "delivery")?;
    get_callback(&state, caller.owner, id).await?;
    state
        .store
        .retry_delivery(caller.owner.account, id, delivery)
        .await
        .map_err(|e| not_found_as(e, "delivery"))?;
    state.delivery.wake();
    Ok(Json(
        json!({ "success": true, "id": delivery, "status": "pending" }),
    ))
}

/// Replaces the signing secret; the old one keeps signing beside it for 24 hours.
async fn rotate_secret(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.id("callback_id", "callback")?;
    let secret = new_secret();
    let until = jiff::Timestamp::now().as_millisecond()
        + switchboard_delivery::signing::ROTATION_OVERLAP_MS;
    let new = secret.clone();
    state
        .store
        .update_resource(Kind::Callback, caller.owner, None, id, move |current| {
            let mut doc = current.body.as_object().cloned().unwrap_or_default();
            let old = doc
                .insert("secret".into(), json!(new))
                .unwrap_or(Value::Null);
            doc.insert("previous_secret".into(), old);
            doc.insert("previous_secret_until".into(), json!(until));
            Ok((Value::Object(doc), Vec::new()))
        })
        .await
        .map_err(|e| not_found_as(e, "callback"))?;
    Ok(Json(
        json!({ "id": id, "secret": secret, "previous_secret_expires_at": until / 1000 }),
    ))
}

/// A store `NotFound` names the resource the request was about.
pub fn not_found_as(e: StoreError, what: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}
