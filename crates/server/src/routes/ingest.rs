//! `POST /ingest/{dialect}`: vendor events in, all of a batch or none of it.
//!
//! The body is one JSON object, a JSON array or NDJSON. Every element is decoded before
//! anything is stored; the first bad element rejects the batch with its path. The answer is
//! sent only after the batch is committed — and, once the batch is with the writer, always
//! then: the request time limit covers the body's arrival, not the commit, so no batch is
//! stored after its sender was told it failed. `?deliver=false` imports history: the events are
//! stored and joined into calls, and neither they nor those calls' logs are delivered.

use crate::error::{ApiError, ApiResult};
use crate::extract::{
    check_encoding, is_javascript_type, is_json_type, token_of, unsupported_type,
};
use crate::openapi::{Api, Op, Param, Ty};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use switchboard_dialects::{decodable, parse_body, DecodeContext};
use switchboard_model::{Dialect, InternalNumbers, Source};
use tracing::Instrument;

pub fn router() -> Api {
    Api::new().route(
        "/ingest/{dialect}",
        "Ingest",
        [Op::post(ingest)
            .named("ingest", "Send events")
            .about("The events are on disk when this answers 202. A batch is taken whole or not at all; an event the hub has already (by the source's own ids) counts as a duplicate.")
            .query(&[
                Param::new("tz", Ty::Text, "The source's time zone (IANA), for times it writes without one."),
                Param::new("deliver", Ty::Bool, "`false` imports history: stored and joined into calls, never delivered."),
            ])
            .body_as(
                "IngestBody",
                &[
                    "application/json",
                    "application/x-ndjson",
                    "application/javascript",
                ],
            )
            .reply(202, "Stored.", "IngestAnswer")
            .reply(503, "The storage refuses writes (a full disk): try again after `Retry-After`.", "Error")],
    )
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than the limit of {max} bytes"),
    )
}

/// Takes a batch, and counts and times it (`/metrics`).
async fn ingest(
    state: State<AppState>,
    Path(dialect): Path<String>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let started = std::time::Instant::now();
    let label = crate::metrics::dialect_label(&dialect);
    // Exported as a trace when OTLP is on (nothing listens to it otherwise).
    let span = tracing::info_span!(
        target: crate::TRACE_TARGET,
        "ingest",
        dialect = label,
        event_id = tracing::field::Empty,
        events = tracing::field::Empty,
        duplicates = tracing::field::Empty,
        "http.response.status_code" = tracing::field::Empty,
    );
    let answer = take(state, dialect, query, headers, body)
        .instrument(span.clone())
        .await;
    metrics::histogram!("switchboard_ingest_request_duration_seconds", "dialect" => label)
        .record(started.elapsed().as_secs_f64());
    match &answer {
        Ok((status, _)) => span.record("http.response.status_code", i64::from(status.as_u16())),
        Err(e) => {
            metrics::counter!("switchboard_events_ingested_total", "dialect" => label, "outcome" => "refused")
                .increment(1);
            span.record("http.response.status_code", i64::from(e.status.as_u16()))
        }
    };
    answer
}

/// The ids of a request's events on its trace span: all of them, up to a hundred.
fn record_ids(ids: &[uuid::Uuid], duplicates: usize) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    const SHOWN: usize = 100;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if ids.len() > SHOWN {
        text.push_str(",…");
    }
    span.record("event_id", text);
    // As signed integers: OTLP has no unsigned ones (an unsigned value goes as text).
    span.record("events", ids.len() as i64);
    span.record("duplicates", duplicates as i64);
}

async fn take(
    State(state): State<AppState>,
    dialect: String,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let token = token_of(&state, &headers).await?;
    let dialect = Dialect::parse(&dialect).ok_or_else(|| {
        let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.as_str()).collect();
        ApiError::not_found("dialect")
            .at("dialect")
            .with_message(format!(
                "unknown dialect {dialect:?}: use one of {}",
                names.join(", ")
            ))
    })?;
    if !decodable().contains(&dialect) {
        return Err(ApiError::invalid(
            "dialect",
            format!("the {dialect} dialect cannot be ingested yet"),
        ));
    }
    let javascript = dialect == Dialect::Workonflow && is_javascript_type(&headers);
    if !is_json_type(&headers) && !javascript {
        return Err(unsupported_type());
    }
    check_encoding(&headers)?;
    let max = state.config.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    // The body must come within the time limit; after that, the answer waits for the commit.
    let bytes = tokio::time::timeout(state.config.request_timeout, axum::body::to_bytes(body, max))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the body took longer to arrive than the hub allows (request_timeout); nothing was stored",
            )
        })?
        .map_err(|_| too_large(max))?;
    // The source's time zone: ?tz=, else the token's, else the configured default.
    let zone = query
        .get("tz")
        .or(token.default_tz.as_ref())
        .unwrap_or(&state.config.default_tz);
    let tz = jiff::tz::TimeZone::get(zone).map_err(|_| {
        ApiError::invalid(
            "tz",
            format!("unknown time zone {zone:?}: use an IANA name such as Asia/Shanghai"),
        )
    })?;
    // `?deliver=false`: an import of history, stored and correlated but sent to no listener.
    let deliver = match query.get("deliver").map(|v| v.trim().to_ascii_lowercase()) {
        None => true,
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(ApiError::invalid(
                    "deliver",
                    format!("{v:?} is not true or false"),
                ))
            }
        },
    };
    // `?internal=8*,+1555000*`: the source's own numbers, for the direction of its calls.
    let internal = match query.get("internal") {
        Some(list) => InternalNumbers::parse(list).map_err(|bad| {
            ApiError::invalid(
                "internal",
                format!("{bad:?} is not a number or a prefix ending in * (e.g. 8*,+1555000*)"),
            )
        })?,
        None => InternalNumbers::default(),
    };
    let source = Source {
        dialect,
        name: query.get("source").filter(|s| !s.is_empty()).cloned(),
    };
    let received_at = jiff::Timestamp::now();
    let ctx = DecodeContext {
        received_at,
        tz,
        max_ahead: Some(state.config.max_clock_skew),
    };
    let items = parse_body(dialect, &bytes)?;
    let mut facts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = items.prefix(i);
        let decoded =
            switchboard_dialects::decode(dialect, item, &ctx).map_err(|e| e.within(&prefix))?;
        facts.extend(decoded);
    }
    if !internal.is_empty() {
        for party in facts.iter_mut().flat_map(|f| f.parties_mut()) {
            party.internal |= internal.covers(party);
        }
    }
    let mut events = switchboard_engine::stamp(
        token.account,
        &source,
        received_at,
        facts,
        uuid::Uuid::now_v7,
    );
    if !deliver {
        for event in &mut events {
            event.silent = true;
        }
    }
    let outcome = state
        .store
        .ingest(token.account, events, received_at)
        .await?;
    record_ids(&outcome.ids, outcome.duplicates);
    let label = dialect.as_str();
    for (outcome_name, n) in [
        ("accepted", outcome.accepted),
        ("duplicate", outcome.duplicates),
    ] {
        if n > 0 {
            metrics::counter!("switchboard_events_ingested_total", "dialect" => label, "outcome" => outcome_name)
                .increment(n as u64);
        }
    }
    if outcome.suppressed > 0 {
        metrics::counter!("switchboard_deliveries_total", "outcome" => "suppressed", "status_class" => "none")
            .increment(outcome.suppressed as u64);
    }
    if outcome.deliveries > 0 {
        state.delivery.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "events": outcome.ids,
        })),
    ))
}
