//! Reading typed fields of a JSON object body, with errors that name the field.

use crate::error::{ApiError, ApiResult};
use serde_json::{Map, Value};

pub type Body = Map<String, Value>;

fn wrong(path: &str, expected: &str) -> ApiError {
    ApiError::invalid(path, format!("expected {expected}"))
}

/// `Some(Some(v))` when set, `Some(None)` when explicitly null, `None` when absent.
pub fn opt_id(body: &Body, key: &str, path: &str) -> ApiResult<Option<Option<i64>>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_i64()
            .filter(|i| *i >= 0)
            .map(|i| Some(Some(i)))
            .ok_or_else(|| wrong(path, "an integer id or null")),
    }
}

pub fn opt_text(body: &Body, key: &str, path: &str) -> ApiResult<Option<Option<String>>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(wrong(path, "a string or null")),
    }
}

pub fn opt_bool(body: &Body, key: &str, path: &str) -> ApiResult<Option<bool>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong(path, "true or false")),
    }
}

pub fn required<'a>(body: &'a Body, key: &str, path: &str) -> ApiResult<&'a Value> {
    body.get(key)
        .ok_or_else(|| ApiError::invalid(path, "missing: this field is required"))
}
