//! Canonical events → Callable generic events.

use crate::common::{party_text, uuid_for};
use crate::Recipient;
use serde_json::{json, Value};
use switchboard_model::{Details, Dialect, Event, EventKind, LegResult};

/// Encodes an event as a Callable generic event, if Callable has one for it.
pub fn encode(event: &Event, to: &Recipient) -> Option<Vec<u8>> {
    let fact = &event.fact;
    let v = &fact.vendor;
    let leg = match &fact.details {
        Details::Leg(l) => Some(l.as_ref()),
        _ => None,
    };
    // A PBX sub-leg (Level 3) has a parent B leg.
    let level3 = leg.is_some_and(|l| l.parent_leg.is_some() && v.contains_key("event"));
    let (level, status) = match fact.kind {
        EventKind::LegCreated if !level3 => ("call", "trying"),
        EventKind::LegRinging if !level3 => ("call", "ringing"),
        EventKind::LegAnswered if !level3 => ("call", "in-progress"),
        EventKind::LegEnded if !level3 => match leg.and_then(|l| l.leg.result) {
            Some(LegResult::Failed | LegResult::Busy | LegResult::Rejected) => ("call", "failed"),
            _ => ("call", "completed"),
        },
        EventKind::LegAnswered => ("phone", "connected"),
        EventKind::LegEnded => ("phone", "disconnected"),
        EventKind::LegHeld if level3 => ("phone", "parked"),
        EventKind::RecordingStarted => ("record", "start"),
        EventKind::RecordingStopped => ("record", "end"),
        EventKind::RecordingReady => ("record", "transcoded"),
        _ => return None,
    };
    let level = if level == "phone" {
        v.get("event").and_then(Value::as_str).unwrap_or("phone")
    } else {
        level
    };
    let call = fact.call_id.clone().or_else(|| fact.leg_id.clone())?;
    let (call_sid, child_sid) = if level3 {
        (leg.and_then(|l| l.parent_leg.clone()), fact.leg_id.clone())
    } else {
        (fact.leg_id.clone().or_else(|| Some(call.clone())), None)
    };
    let (from, callee) = leg
        .map(|l| (l.leg.from.as_ref(), l.leg.to.as_ref()))
        .unwrap_or((None, None));
    // Callable's ids are UUIDs: another source's are made into stable ones.
    let sid = |id: &str| uuid_for(&format!("{}-call", event.source.dialect), id);
    let call_sid = call_sid.unwrap_or_else(|| call.clone());
    let own = event.source.dialect == Dialect::Callable;
    let out = json!({
        "accountId": v.get("accountId").filter(|_| own).cloned()
            .unwrap_or_else(|| json!(uuid_for("account", &to.account.to_string()))),
        "accountName": v.get("accountName").filter(|_| own).cloned()
            .unwrap_or_else(|| json!(format!("account {}", to.account))),
        "parentCallSid": sid(&call),
        "callSid": sid(&call_sid),
        "childSid": child_sid.map(|c| sid(&c)),
        "type": "voice",
        "event": level,
        "status": status,
        "from": from.and_then(party_text).unwrap_or_default(),
        "to": callee.and_then(|p| if level3 { p.number.clone().or_else(|| p.id.clone()) } else { party_text(p) }).unwrap_or_default(),
        "extension": if level3 { callee.and_then(|p| p.extension.clone()) } else { None },
        "meta": v.get("meta").filter(|_| own).cloned().unwrap_or_else(|| json!({})),
        "timestamp": fact.occurred_at.as_millisecond(),
    });
    Some(serde_json::to_vec(&out).expect("JSON"))
}
