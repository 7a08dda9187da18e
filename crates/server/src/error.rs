//! Errors on the wire: every failure answers in Phone.com's `@error` envelope, with `@path`
//! naming the field at fault. A 5xx never shows internals; the log gets the cause.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_dialects::DecodeError;
use switchboard_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub path: Option<String>,
    /// Seconds to wait before trying again (`Retry-After`), for a 503.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// How long a sender is asked to wait while the storage is full.
pub const STORAGE_RETRY_AFTER: u64 = 30;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            path: None,
            retry_after: None,
        }
    }

    pub fn at(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = (!path.is_empty()).then_some(path);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).at(path)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "@message": self.message,
            "@httpStatusCode": self.status.as_u16(),
            "@time": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        });
        if let Some(path) = self.path {
            error["@path"] = json!(path);
        }
        let mut response = (self.status, axum::Json(json!({ "@error": error }))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::MissingRef { field, kind, id } => {
                ApiError::invalid(field, format!("no {kind} with id {id} in this account"))
            }
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::CallFull {
                index,
                call_id,
                max,
            } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "call {call_id} already has {max} events, the most a call may have \
                     (max_events_per_call): nothing of this request was stored"
                ),
            )
            .at(index.map(|i| format!("[{i}]")).unwrap_or_default()),
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ),
            // A shared database gone away: nothing was stored; the sender tries again.
            StoreError::Unavailable(_) => ApiError {
                retry_after: Some(STORAGE_RETRY_AFTER),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the hub's database cannot be reached: nothing of this request was stored; try again later",
                )
            },
            // A full disk (or a quota reached): nothing was stored; the sender tries again.
            other if other.is_storage() => ApiError {
                retry_after: Some(STORAGE_RETRY_AFTER),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the hub's storage is full: nothing of this request was stored; try again later",
                )
            },
            other => ApiError::internal(&other),
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        let status = if e.syntax {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(status, e.message).at(e.path)
    }
}
