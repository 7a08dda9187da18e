//! The admin API: accounts and tokens, behind `SWITCHBOARD_ADMIN_TOKEN`.

use super::fields::{opt_id, opt_text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, id_param, JsonObject};
use crate::openapi::{Api, Auth, Op};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use sha2::Digest;
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use switchboard_model::AccountId;
use switchboard_store::Scope;

pub fn router() -> Api {
    const TAG: &str = "Admin";
    Api::new()
        .route(
            "/admin/accounts",
            TAG,
            [Op::post(create_account)
                .named("createAccount", "Create an account")
                .auth(Auth::Admin)
                .body("AccountCreate")
                .reply(
                    201,
                    "The account, with an api token (shown this once).",
                    "AccountCreated",
                )],
        )
        .route(
            "/admin/accounts/{account}",
            TAG,
            [
                Op::get(get_account)
                    .named("getAccount", "Get an account")
                    .auth(Auth::Admin)
                    .reply(200, "The account.", "Account"),
                Op::delete(erase_account)
                    .named("eraseAccount", "Erase an account and all of its data")
                    .auth(Auth::Admin)
                    .reply(200, "What was removed.", "Erased"),
            ],
        )
        .route(
            "/admin/accounts/{account}/tokens",
            TAG,
            [Op::post(create_token)
                .named("createToken", "Make a token for an account")
                .auth(Auth::Admin)
                .body("TokenCreate")
                .reply(201, "The token (shown this once).", "TokenCreated")],
        )
        .route(
            "/admin/erase",
            TAG,
            [Op::post(erase)
                .named(
                    "eraseNumber",
                    "Erase every event, call and delivery that mentions a phone number",
                )
                .auth(Auth::Admin)
                .body("Erase")
                .reply(200, "What was removed.", "Erased")],
        )
}

/// Erases every event, call, delivery and attempt that mentions a phone number (in one
/// account with `account`, else in all): `{"number": "+15551234567", "account"?: id}`.
async fn erase(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    check_admin(&state, &headers)?;
    let number = match opt_text(&body, "number", "number")? {
        Some(Some(n)) => n,
        _ => {
            return Err(ApiError::invalid(
                "number",
                "missing: the phone number to erase",
            ))
        }
    };
    let digits = switchboard_store::digits_of(&number);
    // Fewer digits would match parts of other numbers' written forms.
    if digits.len() < 6 || digits.len() > 20 {
        return Err(ApiError::invalid(
            "number",
            "expected a phone number of 6 to 20 digits",
        ));
    }
    let account = match opt_id(&body, "account", "account")? {
        Some(Some(id)) => {
            let account = AccountId(id);
            if state.store.account(account).await?.is_none() {
                return Err(ApiError::not_found("account").at("account"));
            }
            Some(account)
        }
        _ => None,
    };
    let erased = state.store.erase_number(account, digits.clone()).await?;
    // The log keeps who asked for what to go, not the number itself.
    tracing::warn!(
        account = account.map(|a| a.0),
        number_ends_with = &digits[digits.len() - 2..],
        events = erased.events,
        calls = erased.calls,
        deliveries = erased.deliveries,
        "erased a phone number"
    );
    Ok(Json(json!({ "erased": erased })))
}

pub(crate) fn check_admin(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(ApiError::not_found(
            "admin API (set SWITCHBOARD_ADMIN_TOKEN to enable it)",
        ));
    };
    let presented =
        bearer(headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    // Digests of equal length compared in constant time: neither the token nor its length
    // shows in how long a wrong one takes.
    let digest = |t: &str| sha2::Sha256::digest(t.as_bytes());
    if bool::from(digest(presented).ct_eq(&digest(expected))) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("the admin token is not valid"))
    }
}

async fn create_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_admin(&state, &headers)?;
    let name = match opt_text(&body, "name", "name")? {
        Some(Some(n)) if !n.trim().is_empty() => n,
        _ => {
            return Err(ApiError::invalid(
                "name",
                "missing: a non-empty name is required",
            ))
        }
    };
    let id = match opt_id(&body, "id", "id")? {
        Some(Some(0)) => return Err(ApiError::invalid("id", "expected a positive integer")),
        Some(id) => id,
        None => None,
    };
    let account = state.store.create_account(id, name).await?;
    let token = state
        .store
        .create_token(account.id, Scope::Api, None, None)
        .await?;
    tracing::info!(account = %account.id, "account created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": account.id, "name": account.name, "token": token })),
    ))
}

async fn get_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    check_admin(&state, &headers)?;
    let id = id_param(&params, "account", "account")?;
    let account = state
        .store
        .account(AccountId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(Json(
        json!({ "id": account.id, "name": account.name, "created_at": account.created_at }),
    ))
}

/// Erases an account and all of its data.
async fn erase_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    check_admin(&state, &headers)?;
    let account = AccountId(id_param(&params, "account", "account")?);
    if state.store.account(account).await?.is_none() {
        return Err(ApiError::not_found("account"));
    }
    let erased = state.store.erase_account(account).await?;
    tracing::warn!(
        account = account.0,
        events = erased.events,
        calls = erased.calls,
        deliveries = erased.deliveries,
        "erased an account and all its data"
    );
    Ok(Json(json!({ "erased": erased })))
}

async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_admin(&state, &headers)?;
    let account = AccountId(id_param(&params, "account", "account")?);
    let scope = match body.get("scope") {
        None => Scope::Api,
        Some(Value::String(s)) => Scope::parse(s)
            .ok_or_else(|| ApiError::invalid("scope", "expected \"api\" or \"ingest\""))?,
        Some(_) => return Err(ApiError::invalid("scope", "expected \"api\" or \"ingest\"")),
    };
    let extension_id = opt_id(&body, "extension_id", "extension_id")?.flatten();
    let tz = opt_text(&body, "tz", "tz")?.flatten();
    if let Some(zone) = &tz {
        if jiff::tz::TimeZone::get(zone).is_err() {
            return Err(ApiError::invalid(
                "tz",
                format!("unknown time zone {zone:?}: use an IANA name such as Asia/Shanghai"),
            ));
        }
    }
    let token = state
        .store
        .create_token(account, scope, extension_id, tz.clone())
        .await
        .map_err(|e| match e {
            switchboard_store::StoreError::NotFound => ApiError::not_found("account"),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "token": token, "account_id": account, "scope": scope.as_str(), "extension_id": extension_id, "tz": tz }),
        ),
    ))
}
