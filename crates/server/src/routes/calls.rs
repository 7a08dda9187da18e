//! The query API: calls (list and one, with its timeline), the event log for consumers who
//! pull, a live Server-Sent Events stream, and agents.

use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::listing::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::openapi::{Api, Op, Param, Reply, Ty};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;
use switchboard_model::{tags, AccountId, EventKind};
use switchboard_store::{CallQuery, Store, StoredCall, StoredEvent};

/// A call's directions, as the API writes them.
pub(crate) const DIRECTIONS: &[&str] = &["inbound", "outbound", "internal"];
/// How a call ended, as the API writes it.
pub(crate) const DISPOSITIONS: &[&str] = &[
    "answered",
    "no_answer",
    "busy",
    "rejected",
    "cancelled",
    "failed",
    "unknown",
];

const LIMIT: Param = Param::new(
    "limit",
    Ty::Whole(1),
    "How many (25 by default; more than 500 is read as 500).",
);
const AFTER: Param = Param::new("after", Ty::Text, "A cursor: what came after it.");

pub fn router() -> Api {
    const TAG: &str = "Calls and events";
    Api::new()
        .route(
            "/v4/accounts/{account}/calls",
            TAG,
            [Op::get(list)
                .named("listCalls", "List calls")
                .query(&[
                    Param::new("number", Ty::Text, "Calls with a party of this number."),
                    Param::new("direction", Ty::OneOf(DIRECTIONS), "Calls of this direction."),
                    Param::new("disposition", Ty::OneOf(DISPOSITIONS), "Calls that ended so."),
                    Param::new("missed", Ty::Bool, "Missed calls only (or none of them)."),
                    Param::new("in_progress", Ty::Bool, "Only calls still in progress (initiated, ringing or active)."),
                    Param::new("started_after", Ty::Time, "Calls that started at or after this."),
                    Param::new("started_before", Ty::Time, "Calls that started before this."),
                    Param::new("agent", Ty::Text, "Calls this agent took part in."),
                    Param::new("extension", Ty::Text, "Calls with a party of this extension."),
                    LIMIT,
                    Param::new("cursor", Ty::Text, "The `next_cursor` of the page before."),
                ])
                .reply(200, "The calls, newest first.", "CallPage")],
        )
        .route(
            "/v4/accounts/{account}/calls/{call_id}",
            TAG,
            [Op::get(show)
                .named("getCall", "Get a call, with its timeline")
                .reply(200, "The call.", "Call")],
        )
        .route(
            "/v4/accounts/{account}/events",
            TAG,
            [Op::get(events)
                .named("listEvents", "Pull the event log")
                .about("In the order the hub stored them. A cursor older than the retention window answers 410.")
                .query(&[AFTER, LIMIT])
                .reply(200, "The events after the cursor.", "EventPage")],
        )
        .route(
            "/v4/accounts/{account}/stream",
            TAG,
            [Op::get(stream)
                .named("streamEvents", "Follow events as they are stored (Server-Sent Events)")
                .about("Each event's SSE id is its cursor; reconnect with `Last-Event-ID` (or `after`) to resume. A cursor older than the retention window answers 410.")
                .query(&[
                    AFTER,
                    Param::new("tags", Ty::Text, "Comma-separated tags: only events with all of them."),
                ])
                .reply_with(
                    200,
                    "A stream of `canonical` events, one SSE message each, named by kind.",
                    Reply::Other {
                        media: "text/event-stream",
                        about: "Server-Sent Events.",
                    },
                )],
        )
        .route(
            "/v4/accounts/{account}/agents",
            TAG,
            [Op::get(agents)
                .named("listAgents", "Agents and their current state")
                .reply(200, "The agents.", "AgentList")],
        )
}

pub(crate) fn view(call: &StoredCall) -> Value {
    let mut v = serde_json::to_value(&call.record).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("id".into(), json!(call.id));
        obj.insert("revision".into(), json!(call.revision));
        obj.insert("aliases".into(), json!(call.aliases));
        obj.insert("merged".into(), call.merged.clone());
        if call.finalized {
            obj.insert("state".into(), json!("finalized"));
        }
    }
    v
}

fn limit_of(q: &HashMap<String, String>) -> ApiResult<i64> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| *l >= 1)
            .map(|l| l.min(MAX_LIMIT))
            .ok_or_else(|| {
                ApiError::invalid("limit", "limit must be a whole number of at least 1")
            }),
    }
}

/// A time given as RFC 3339 or Unix seconds, in ms.
fn time_param(q: &HashMap<String, String>, key: &str) -> ApiResult<Option<i64>> {
    let Some(v) = q.get(key) else { return Ok(None) };
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(Some(secs * 1000));
    }
    v.parse::<jiff::Timestamp>()
        .map(|t| Some(t.as_millisecond()))
        .map_err(|_| ApiError::invalid(key, "expected an RFC 3339 time or Unix seconds"))
}

fn one_of(q: &HashMap<String, String>, key: &str, allowed: &[&str]) -> ApiResult<Option<String>> {
    match q.get(key) {
        None => Ok(None),
        Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v.clone())),
        Some(_) => Err(ApiError::invalid(
            key,
            format!("expected one of {}", allowed.join(", ")),
        )),
    }
}

/// The query a `/calls` request asks for (the console's history reads the same parameters).
pub(crate) fn call_query(q: &HashMap<String, String>) -> ApiResult<CallQuery> {
    const KNOWN: &[&str] = &[
        "number",
        "direction",
        "disposition",
        "missed",
        "in_progress",
        "started_after",
        "started_before",
        "agent",
        "extension",
        "limit",
        "cursor",
    ];
    if let Some(unknown) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.clone(),
            format!("unknown parameter; this list takes {}", KNOWN.join(", ")),
        ));
    }
    let limit = limit_of(q)?;
    let before = match q.get("cursor") {
        None => None,
        Some(c) => Some(
            c.split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this API gave out"))?,
        ),
    };
    let missed = match q.get("missed").map(String::as_str) {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(_) => return Err(ApiError::invalid("missed", "expected true or false")),
    };
    let query = CallQuery {
        number: q.get("number").cloned(),
        direction: one_of(q, "direction", DIRECTIONS)?,
        disposition: one_of(q, "disposition", DISPOSITIONS)?,
        missed,
        since_ms: time_param(q, "started_after")?,
        until_ms: time_param(q, "started_before")?,
        in_progress: match q.get("in_progress").map(String::as_str) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => return Err(ApiError::invalid("in_progress", "expected true or false")),
        },
        agent: q.get("agent").cloned(),
        extension: q.get("extension").cloned(),
        before,
        limit,
    };
    Ok(query)
}

/// The cursor of the page after `calls`, if a full page was read.
pub(crate) fn next_cursor(calls: &[StoredCall], limit: i64) -> Option<String> {
    (calls.len() as i64 == limit)
        .then(|| {
            calls.last().map(|c| {
                format!(
                    "{}_{}",
                    c.record.started_at.map(|t| t.as_millisecond()).unwrap_or(0),
                    c.id
                )
            })
        })
        .flatten()
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let query = call_query(&q)?;
    let limit = query.limit;
    let (total, calls) = state.store.calls(caller.owner.account, query).await?;
    let next_cursor = next_cursor(&calls, limit);
    let filters: Map<String, Value> = q
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "limit" | "cursor"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    Ok(Json(json!({
        "filters": filters,
        "sort": { "started_at": "desc" },
        "total": total,
        "limit": limit,
        "offset": 0,
        "items": calls.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let id = caller.params.get("call_id").cloned().unwrap_or_default();
    let (call, events) = state
        .store
        .call(caller.owner.account, id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    let mut out = view(&call);
    out["timeline"] = events
        .iter()
        .map(|e| {
            let mut entry = json!({
                "id": e.id,
                "kind": e.fact.kind.as_str(),
                "occurred_at": e.fact.occurred_at,
                "received_at": e.received_at,
                "leg_id": e.fact.leg_id,
                "source": e.source,
                "tags": e.tags,
            });
            // What the hub did not understand stands on the timeline as it came, with why.
            if e.fact.kind == EventKind::NotUnderstood {
                entry["not_understood"] = e
                    .fact
                    .vendor
                    .get("not_understood")
                    .cloned()
                    .unwrap_or(Value::Null);
                entry["raw"] = serde_json::from_str(e.fact.raw.get()).unwrap_or(Value::Null);
            }
            entry
        })
        .collect();
    Ok(Json(out))
}

fn cursor_param(value: Option<&String>, key: &str) -> ApiResult<Option<i64>> {
    value
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|c| *c >= 0)
                .ok_or_else(|| ApiError::invalid(key, "not a cursor this API gave out"))
        })
        .transpose()
}

/// Refuses a cursor (`after`, `Last-Event-ID`) that names events pruned since: what came
/// after it is partly gone, and reading on would skip it silently.
async fn still_kept(
    state: &AppState,
    account: AccountId,
    after: i64,
    field: &str,
) -> ApiResult<()> {
    let pruned = state.store.pruned_through(account).await?;
    if after > 0 && after < pruned {
        return Err(ApiError::new(
            axum::http::StatusCode::GONE,
            format!(
                "this cursor is older than the events the hub keeps (event_retention): \
                 events up to {pruned} were pruned; go on from after={pruned}"
            ),
        )
        .at(field));
    }
    Ok(())
}

async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<axum::response::Response> {
    let after = cursor_param(q.get("after"), "after")?.unwrap_or(0);
    let limit = limit_of(&q)?;
    still_kept(&state, caller.owner.account, after, "after").await?;
    let items = state
        .store
        .events_after(caller.owner.account, after, limit)
        .await?;
    let next = items.last().map_or(after, |e| e.seq);
    // Each event is written out as it is kept: its `raw` is the sender's text verbatim,
    // whatever it holds (`1e999`, deep nesting, a lone surrogate), never read again into a
    // value that could not hold it (which made such items hollow).
    let mut body = String::from("{\"items\":[");
    for (i, s) in items.iter().enumerate() {
        let event = serde_json::to_string(&s.event).map_err(|e| ApiError::internal(&e))?;
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("{{\"cursor\":\"{}\",", s.seq));
        body.push_str(event.strip_prefix('{').unwrap_or(&event));
    }
    body.push_str(&format!("],\"next_cursor\":\"{next}\"}}"));
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )))
}

struct Follow {
    store: Store,
    account: AccountId,
    after: i64,
    tags: Vec<String>,
    latest: tokio::sync::watch::Receiver<i64>,
    ready: VecDeque<StoredEvent>,
    stopping: tokio_util::sync::CancellationToken,
}

/// The next matching event, waiting for new ones as they are committed.
async fn next_event(mut f: Follow) -> Option<(Result<SseEvent, Infallible>, Follow)> {
    loop {
        while let Some(e) = f.ready.pop_front() {
            f.after = e.seq;
            if f.tags.iter().all(|t| e.event.tags.contains(t)) {
                let data = serde_json::to_string(&e.event).unwrap_or_default();
                let sse = SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.event.fact.kind.as_str())
                    .data(data);
                return Some((Ok(sse), f));
            }
        }
        match f.store.events_after(f.account, f.after, 500).await {
            Ok(batch) if !batch.is_empty() => f.ready.extend(batch),
            Ok(_) => {
                // Nothing new: wait for the next commit (the keep-alive covers quiet times);
                // the stream ends when the hub shuts down, and the client resumes elsewhere.
                tokio::select! {
                    changed = f.latest.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    _ = f.stopping.cancelled() => return None,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "the event stream could not read the log");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Server-Sent Events: every event of the account carrying all of `tags`, live; resumable
/// with `Last-Event-ID` (or `?after=`) without gaps.
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    stream_of(state, caller.owner.account, &headers, &q).await
}

/// An account's live events (the console's live views follow the same stream).
pub(crate) async fn stream_of(
    state: AppState,
    account: AccountId,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>>> {
    let wanted: Vec<String> = q
        .get("tags")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = wanted.iter().find(|t| !tags::is_known(t)) {
        return Err(ApiError::invalid("tags", format!("unknown tag {bad:?}")));
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let latest = state.store.watch_latest();
    let after = match cursor_param(resume.as_ref(), "Last-Event-ID")? {
        Some(seq) => {
            still_kept(&state, account, seq, "Last-Event-ID").await?;
            seq
        }
        None => match cursor_param(q.get("after"), "after")? {
            Some(seq) => {
                still_kept(&state, account, seq, "after").await?;
                seq
            }
            None => *latest.borrow(),
        },
    };
    let follow = Follow {
        stopping: state.stopping.clone(),
        store: state.store.clone(),
        account,
        after,
        tags: wanted,
        latest,
        ready: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(follow, next_event);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn agents(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let agents = state.store.agents(caller.owner.account).await?;
    let total = agents.len();
    Ok(Json(json!({ "items": agents, "total": total })))
}
