//! Events the hub does not understand: a state or event name a vendor added after this
//! decoder was written. Tomorrow's values must not cost a sender today's events, so such an
//! event is kept as it came — with the ids that join it to its call, its time where it says
//! one, and what was not understood — rather than refused. An element that cannot be an event
//! at all (not JSON, not an object, no id of any kind) is still refused.

use crate::common::{content_key, plausible, raw_json};
use crate::error::DecodeError;
use crate::DecodeContext;
use jiff::Timestamp;
use serde_json::{json, Map, Value};
use switchboard_model::{Details, Dialect, EventKind, Fact};

/// A string or number id at `path` (dotted) of `v`.
fn id_at(v: &Value, path: &str) -> Option<String> {
    let mut at = v;
    for key in path.split('.') {
        at = at.get(key)?;
    }
    match at {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The event `item` as not understood, for `err` (a value outside an enumeration); `err`
/// itself when the element names nothing to join it by.
pub(crate) fn not_understood(
    dialect: Dialect,
    item: &str,
    ctx: &DecodeContext,
    err: DecodeError,
) -> Result<Vec<Fact>, DecodeError> {
    let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(item) else {
        return Err(err);
    };
    let mut vendor = Map::new();
    let stated = |at: Option<Timestamp>| at.and_then(|t| plausible(t, ctx, "").ok());
    // Per dialect: the call, the leg, the event's own key and time, and the ids its calls
    // are joined by (kept under the vendor's names, as the decoders keep them).
    let (call, leg, key, at) = match dialect {
        Dialect::Phonecom => {
            let at = v
                .get("timestamp_ns")
                .and_then(Value::as_i64)
                .and_then(|ns| Timestamp::from_nanosecond(i128::from(ns)).ok())
                .or_else(|| {
                    v.get("timestamp")
                        .and_then(Value::as_i64)
                        .and_then(|s| Timestamp::from_second(s).ok())
                });
            (
                id_at(&v, "data.uuid").or_else(|| id_at(&v, "data.call_uuid")),
                id_at(&v, "data.event_leg.uuid"),
                id_at(&v, "uuid"),
                stated(at),
            )
        }
        Dialect::Tel4vn => {
            if let Some(sip) = id_at(&v, "sip_call_id") {
                vendor.insert("sip_call_id".into(), json!(sip));
            }
            let call = id_at(&v, "call_id");
            (call.clone(), call, None, None)
        }
        Dialect::Callable => {
            let at = v
                .get("timestamp")
                .and_then(Value::as_i64)
                .and_then(|ms| Timestamp::from_millisecond(ms).ok());
            (
                id_at(&v, "parentCallSid"),
                id_at(&v, "callSid"),
                None,
                stated(at),
            )
        }
        Dialect::Welljoint => {
            let at = v
                .get("eventTime")
                .and_then(Value::as_str)
                .and_then(|t| jiff::civil::DateTime::strptime("%Y.%m.%d %H:%M:%S", t.trim()).ok())
                .and_then(|local| local.to_zoned(ctx.tz.clone()).ok())
                .map(|z| z.timestamp());
            let key = id_at(&v, "namespace")
                .zip(id_at(&v, "serial"))
                .map(|(ns, serial)| format!("welljoint:{ns}:{serial}"));
            (
                id_at(&v, "callId").filter(|c| c != "0"),
                None,
                key,
                stated(at),
            )
        }
        Dialect::Workonflow => {
            for name in ["threadId", "streamId"] {
                if let Some(id) = id_at(&v, name) {
                    vendor.insert(name.into(), json!(id));
                }
            }
            (
                id_at(&v, "streamId").or_else(|| id_at(&v, "threadId")),
                None,
                None,
                None,
            )
        }
        // The hub's own format has no vendor to add values to it.
        Dialect::Canonical => return Err(err),
    };
    if call.is_none() && key.is_none() {
        return Err(err);
    }
    vendor.insert(
        "not_understood".into(),
        json!({"path": err.path, "reason": err.message}),
    );
    let source_key = match key {
        Some(key) => key,
        // As the dialect's own content keys (Workonflow's within the minute: see its decoder).
        None if dialect == Dialect::Workonflow => format!(
            "{}:{}",
            content_key(dialect.as_str(), item),
            ctx.received_at.as_second().div_euclid(60)
        ),
        None => content_key(dialect.as_str(), item),
    };
    Ok(vec![Fact {
        source_key,
        kind: EventKind::NotUnderstood,
        occurred_at: at.unwrap_or(ctx.received_at),
        time_estimated: at.is_none(),
        call_id: call,
        leg_id: leg,
        agent_id: None,
        details: Details::None,
        vendor,
        raw: raw_json(item),
    }])
}
