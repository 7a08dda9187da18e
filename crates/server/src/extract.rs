//! Extractors that answer in the API's own error shape: JSON bodies, path ids, the caller's
//! account scope.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{Map, Value};
use std::collections::HashMap;
use switchboard_model::AccountId;
use switchboard_store::{Owner, Scope, TokenInfo};

/// The request's media type, lower case, without parameters.
fn mime_of(headers: &HeaderMap) -> Option<String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?;
    Some(
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// True for JavaScript content types: Workonflow documents its events as JavaScript object
/// literals, and a sender pasting them may label them so.
pub fn is_javascript_type(headers: &HeaderMap) -> bool {
    mime_of(headers).is_some_and(|m| {
        matches!(
            m.as_str(),
            "application/javascript" | "text/javascript" | "application/x-javascript"
        )
    })
}

/// True for content types that carry JSON (or NDJSON).
pub fn is_json_type(headers: &HeaderMap) -> bool {
    let Some(mime) = mime_of(headers) else {
        return false;
    };
    matches!(
        mime.as_str(),
        "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/json-seq"
    ) || mime.ends_with("+json")
}

/// A body sent compressed (`Content-Encoding` other than `identity`) is refused with 415:
/// the hub reads bodies as they come, and would otherwise take gzip for broken JSON (or a
/// plain body labelled `br` for a compressed one).
pub fn check_encoding(headers: &HeaderMap) -> ApiResult<()> {
    let Some(encoding) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let encoding = encoding.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    if encoding.is_empty() || encoding == "identity" {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Content-Encoding {encoding:?} is not supported: send the body uncompressed"),
    )
    .at("Content-Encoding"))
}

pub fn unsupported_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "send the body as application/json (or application/x-ndjson for ingest)",
    )
}

/// A JSON object request body.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        if !is_json_type(req.headers()) {
            return Err(unsupported_type());
        }
        check_encoding(req.headers())?;
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large")
                } else {
                    ApiError::bad_request(format!("cannot read the body: {e}"))
                }
            })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::invalid("", "expected a JSON object")),
            Err(e) => Err(ApiError::bad_request(format!(
                "the body is not valid JSON: {e}"
            ))),
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves a request's bearer token to the account it belongs to.
pub async fn token_of(state: &AppState, headers: &HeaderMap) -> ApiResult<TokenInfo> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized("missing bearer token: send Authorization: Bearer <token>")
    })?;
    state
        .store
        .authenticate(token)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token is not valid"))
}

/// A path segment that must be an integer id; anything else is simply not found.
pub fn id_param(params: &HashMap<String, String>, name: &str, what: &str) -> ApiResult<i64> {
    params
        .get(name)
        .and_then(|v| strict_id(v))
        .ok_or_else(|| ApiError::not_found(what))
}

/// An id as the API writes it: decimal digits with no sign, spaces or leading zeros (`+1`,
/// `-1`, ` 1` and `01` name nothing).
pub fn strict_id(text: &str) -> Option<i64> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = text.parse::<i64>().ok()?;
    (id.to_string() == text).then_some(id)
}

/// The caller of an account's API: its token checked against the account (and extension) in
/// the path. Another account's id answers 404, so ids don't leak.
pub struct Caller {
    pub owner: Owner,
    pub params: HashMap<String, String>,
}

impl Caller {
    pub fn id(&self, name: &str, what: &str) -> ApiResult<i64> {
        id_param(&self.params, name, what)
    }
}

/// Put by the console on a request it passes on to the events API for a viewer it has
/// already let in (an admin looking at an account, say): the request acts for that account
/// (and extension). Only the hub's own code can set a request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleGrant {
    pub account: AccountId,
    pub extension_id: Option<i64>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("resource"))?;
        // Who acts: an account's token, or the console for a viewer it has let in.
        let (acting, scope, bound) = match parts.extensions.get::<ConsoleGrant>().copied() {
            Some(grant) => (grant.account, Scope::Api, grant.extension_id),
            None => {
                let token = token_of(state, &parts.headers).await?;
                (token.account, token.scope, token.extension_id)
            }
        };
        let account = id_param(&params, "account", "account")?;
        if acting != AccountId(account) {
            return Err(ApiError::not_found("account"));
        }
        if scope != Scope::Api {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this token may only ingest events; use an api token",
            ));
        }
        let extension_id = match params.get("ext") {
            None => None,
            Some(_) => Some(id_param(&params, "ext", "extension")?),
        };
        if let Some(bound) = bound {
            if extension_id != Some(bound) {
                return Err(ApiError::not_found("extension"));
            }
        }
        Ok(Caller {
            owner: Owner {
                account: acting,
                extension_id,
            },
            params,
        })
    }
}
