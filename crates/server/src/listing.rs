//! Phone.com's list envelope: `filters`, `sort`, `total`, `limit`, `offset`, `items`, with the
//! `limit`/`offset` defaults and the `filters[...]` query parameters of the reference.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::Json;
use serde_json::{json, Map, Value};
use switchboard_store::{Kind, ListQuery, Owner, Resource};

pub const DEFAULT_LIMIT: i64 = 25;
pub const MAX_LIMIT: i64 = 500;

/// How a `filters[name]` parameter's value is read.
#[derive(Clone, Copy)]
pub enum FilterKind {
    Text,
    Id,
}

/// The paging and filters a list request asked for.
pub struct Page {
    pub limit: i64,
    pub offset: i64,
    pub filters: Vec<(String, Value)>,
}

fn whole(name: &str, value: &str, min: i64) -> ApiResult<i64> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= min)
        .ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("{name} must be a whole number of at least {min}"),
            )
        })
}

impl Page {
    /// Reads `limit`, `offset` and the `filters[...]` this list supports.
    pub fn parse(query: &[(String, String)], allowed: &[(&str, FilterKind)]) -> ApiResult<Page> {
        let mut page = Page {
            limit: DEFAULT_LIMIT,
            offset: 0,
            filters: Vec::new(),
        };
        for (key, value) in query {
            match key.as_str() {
                "limit" => page.limit = whole("limit", value, 1)?.min(MAX_LIMIT),
                "offset" => page.offset = whole("offset", value, 0)?,
                key if key.starts_with("filters[") && key.ends_with(']') => {
                    let name = &key["filters[".len()..key.len() - 1];
                    let Some((field, kind)) = allowed.iter().find(|(f, _)| *f == name) else {
                        let names: Vec<String> = allowed
                            .iter()
                            .map(|(f, _)| format!("filters[{f}]"))
                            .collect();
                        return Err(ApiError::invalid(
                            key,
                            if names.is_empty() {
                                "this list takes no filters".to_string()
                            } else {
                                format!("unknown filter; this list takes {}", names.join(", "))
                            },
                        ));
                    };
                    let v = match kind {
                        FilterKind::Text => json!(value),
                        FilterKind::Id if value.is_empty() || value == "null" => Value::Null,
                        FilterKind::Id => json!(whole(key, value, 0)?),
                    };
                    page.filters.push((field.to_string(), v));
                }
                _ => {}
            }
        }
        Ok(page)
    }

    /// The envelope around one page of items.
    pub fn envelope(&self, total: i64, items: Vec<Value>) -> Value {
        let filters: Map<String, Value> = self.filters.iter().cloned().collect();
        json!({
            "filters": filters,
            "sort": { "id": "desc" },
            "total": total,
            "limit": self.limit,
            "offset": self.offset,
            "items": items,
        })
    }
}

/// One page of an owner's resources of a kind (under `parent_id`), in the list envelope.
pub async fn page_of(
    state: &AppState,
    kind: Kind,
    owner: Owner,
    parent_id: Option<i64>,
    page: &Page,
    view: fn(&Resource) -> Value,
) -> ApiResult<Json<Value>> {
    let (total, items) = state
        .store
        .list_resources(ListQuery {
            kind,
            owner,
            parent_id,
            equals: page.filters.clone(),
            limit: page.limit,
            offset: page.offset,
        })
        .await?;
    Ok(Json(page.envelope(total, items.iter().map(view).collect())))
}
