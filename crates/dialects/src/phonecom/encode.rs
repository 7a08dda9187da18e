//! Canonical events → Phone.com JSON.
//!
//! Events that came in as Phone.com keep their `data` object exactly as the sender wrote it and
//! their own `uuid`; the rest of the envelope is the hub's: its event id as
//! `switchboard_event_id` (stable across retries and listeners, as `webhook-id` is), the
//! listener's id and context, and the tags (the hub's, with the sender's it has no reason to
//! dispute).

use crate::common::{direction_of, uuid_for};
use crate::Recipient;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchboard_model::{
    Details, Dialect, Direction, Event, EventKind, Hangup, LegResult, LegSnapshot, Party, PartyKind,
};

#[derive(Serialize)]
struct Envelope<'a> {
    /// The source's own event id when the event came from Phone.com (its receiver may know
    /// it), else the hub's.
    uuid: String,
    /// The hub's id of the event: the same on every retry and for every listener (and the
    /// `webhook-id` header), whatever `uuid` says.
    switchboard_event_id: String,
    version: &'static str,
    listener_id: i64,
    context: Value,
    timestamp: i64,
    timestamp_ns: i128,
    tags: &'a [String],
    data_type: &'static str,
    data_object_uuid: Option<String>,
    data: DataOut<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DataOut<'a> {
    Raw(&'a RawValue),
    Built(Value),
}

#[derive(serde::Deserialize)]
struct SourceParts<'a> {
    #[serde(default)]
    data_object_uuid: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

fn data_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::RecordingStarted | EventKind::RecordingStopped | EventKind::RecordingReady => {
            "recording"
        }
        EventKind::Message => "message",
        // A missed call is a call log of a call nobody answered (tagged missed-call).
        EventKind::CallLog | EventKind::CallMissed => "call-log",
        EventKind::ApiError => "api-error",
        EventKind::CallbackDeactivated => "listener-callback",
        _ => "call",
    }
}

fn party(p: &Party) -> Value {
    // Phone.com's three participant types: a party that is an extension by its number (a
    // SIP user, a contact centre's device) is an `extension`; a phone number is a `did`.
    let kind = match p.kind {
        PartyKind::Device => "device",
        PartyKind::Extension | PartyKind::User | PartyKind::Agent | PartyKind::Queue => "extension",
        _ if p.extension.is_some() && p.number.is_none() => "extension",
        _ => "did",
    };
    let id = if kind == "did" {
        p.number.clone().or_else(|| p.id.clone())
    } else {
        p.id.clone().or_else(|| p.extension.clone())
    };
    let mut out = json!({ "type": kind, "id": id.unwrap_or_default() });
    let obj = out.as_object_mut().expect("object literal");
    for (key, value) in [
        ("line", &p.line),
        ("domain", &p.domain),
        ("extension_id", &p.extension_id),
        ("extension", &p.extension),
    ] {
        if let Some(v) = value {
            obj.insert(key.into(), json!(v));
        }
    }
    out
}

/// A participant no source named: the documented shape, with nothing in it.
fn nobody() -> Value {
    json!({ "type": "did", "id": "" })
}

fn leg(snapshot: &LegSnapshot, state: Option<&str>, hangup: Option<&Hangup>) -> Value {
    // A completed leg always says how: its source's result, else its hangup cause (a normal
    // clearing ended a leg that was connected), else `cancelled`.
    let completion = snapshot.result.map(|r| match r {
        LegResult::Answered => "success",
        LegResult::Busy => "busy",
        LegResult::Failed | LegResult::Rejected => "failed",
        _ => "cancelled",
    });
    let completion = completion.or_else(|| {
        (state == Some("completed")).then(|| {
            let normal = hangup.is_some_and(|h| {
                h.q850 == Some(16)
                    || h.text
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case("NORMAL_CLEARING"))
            });
            if normal {
                "success"
            } else {
                "cancelled"
            }
        })
    });
    json!({
        "uuid": snapshot.id,
        "from": snapshot.from.as_ref().map_or_else(nobody, party),
        "to": snapshot.to.as_ref().map_or_else(nobody, party),
        "is_first": snapshot.is_first.unwrap_or(false),
        "state": state,
        "completion_status": completion,
    })
}

fn direction(d: Option<Direction>) -> Option<&'static str> {
    d.map(|d| match d {
        Direction::Inbound => "inbound",
        Direction::Outbound | Direction::Internal => "outbound",
    })
}

/// Builds `data` from canonical facts, for events another dialect sent.
fn build_data(event: &Event, to: &Recipient) -> Value {
    let fact = &event.fact;
    match &fact.details {
        Details::Leg(l) => {
            let state = match fact.kind {
                EventKind::LegCreated => Some("new"),
                EventKind::LegRinging => Some("connecting"),
                EventKind::LegAnswered => Some("connected"),
                EventKind::LegEnded => Some("completed"),
                _ => None,
            };
            let is_first = l.leg.is_first.unwrap_or(false);
            // On another leg's event, the first leg as far as the event tells: the call's id,
            // and its parties (the reference's own first_leg has no state).
            let first_leg = if is_first {
                Value::Null
            } else {
                let known = l.first_leg.clone().unwrap_or_else(|| LegSnapshot {
                    id: fact.call_id.clone(),
                    is_first: Some(true),
                    from: l.leg.from.clone(),
                    to: l.leg.to.clone(),
                    result: None,
                });
                let mut first = leg(&known, None, None);
                first["is_first"] = json!(true);
                first["completion_status"] = Value::Null;
                first
            };
            json!({
                "uuid": fact.call_id,
                "direction": direction(Some(l.direction.unwrap_or_else(|| direction_of(event, to.call_direction)))),
                "event_leg": leg(&l.leg, state, l.hangup.as_ref()),
                "first_leg": first_leg,
            })
        }
        Details::Recording(r) => json!({
            "uuid": r.recording_id.clone().unwrap_or_else(|| uuid_for(
                "recording",
                &format!("{}:{}", fact.call_id.as_deref().unwrap_or_default(), r.url.as_deref().unwrap_or(&fact.source_key)),
            )),
            "type": r.subject.as_deref().unwrap_or("call"),
            "size": r.size_bytes,
            "duration": r.duration_ms.map(|ms| ms as f64 / 1000.0),
            "url": r.url,
            "call_uuid": fact.call_id,
        }),
        Details::Message(m) => json!({
            "uuid": m.message_id,
            "direction": direction(m.direction),
            "state": m.state,
            "from": m.from.as_ref().map(party),
            "to": m.to.iter().map(party).collect::<Vec<_>>(),
            "type": m.channel,
            "message": m.text,
        }),
        Details::CallLog(c) => {
            let mut data = json!({ "uuid": fact.call_id, "direction": direction(c.direction) });
            if fact.kind == EventKind::CallMissed {
                data["missed"] = json!(true);
            }
            for (key, p) in [("from", &c.from), ("to", &c.to)] {
                if let Some(p) = p {
                    data[key] = party(p);
                }
            }
            // The hub's own call logs carry the call record and its revision; a missed call's
            // log and its missed-call event say the same, as the record does.
            if let Some(call) = fact.vendor.get("call") {
                let record = call.get("record").cloned().unwrap_or(Value::Null);
                data["revision"] = call.get("revision").cloned().unwrap_or(Value::Null);
                data["missed"] = json!(
                    fact.kind == EventKind::CallMissed
                        || record.get("missed") == Some(&json!(true))
                );
                data["call"] = record;
            }
            data
        }
        Details::ApiError(e) => json!({ "status": e.status, "message": e.message }),
        Details::Notice(n) => {
            json!({ "callback_id": n.callback_id, "reason": n.reason, "state": "deactivated" })
        }
        Details::None | Details::Dtmf(_) | Details::Agent(_) | Details::Transfer(_) => {
            json!({ "uuid": fact.call_id })
        }
    }
}

/// True for the kinds Phone.com has an event for.
pub fn expresses(kind: EventKind) -> bool {
    !matches!(
        kind,
        EventKind::LegHeld
            | EventKind::LegRetrieved
            | EventKind::Dtmf
            | EventKind::Transferred
            | EventKind::Conferenced
            | EventKind::CallEnded
            | EventKind::AgentState
            // A source's own call record: the hub's call log says it, once.
            | EventKind::SourceCdr
            | EventKind::NotUnderstood
    )
}

/// Encodes an event as the Phone.com v2.0.0 payload a listener receives, or nothing for
/// kinds Phone.com has no event for.
pub fn encode(event: &Event, to: &Recipient) -> Option<Vec<u8>> {
    let fact = &event.fact;
    if !expresses(fact.kind) {
        return None;
    }
    let source: Option<SourceParts<'_>> = if event.source.dialect == Dialect::Phonecom {
        serde_json::from_str(fact.raw.get()).ok()
    } else {
        None
    };
    let context = match to.extension_id {
        Some(ext) => json!({ "type": "extension", "id": ext, "voip_id": to.account.0 }),
        None => json!({ "type": "account", "id": to.account.0, "voip_id": to.account.0 }),
    };
    let sender_data = source.is_some();
    let (data_object_uuid, data) = match source {
        Some(parts) => (parts.data_object_uuid, DataOut::Raw(parts.data)),
        None => (fact.call_id.clone(), DataOut::Built(build_data(event, to))),
    };
    let hub_id = event.id.to_string();
    let envelope = Envelope {
        uuid: if sender_data {
            fact.source_key.clone()
        } else {
            hub_id.clone()
        },
        switchboard_event_id: hub_id,
        version: super::VERSION,
        listener_id: to.listener_id,
        context,
        timestamp: fact.occurred_at.as_second(),
        timestamp_ns: fact.occurred_at.as_nanosecond(),
        tags: &event.tags,
        data_type: data_type(fact.kind),
        data_object_uuid,
        data,
    };
    Some(serde_json::to_vec(&envelope).expect("a Phone.com envelope always serializes"))
}
