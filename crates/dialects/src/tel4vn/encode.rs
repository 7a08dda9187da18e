//! Canonical events → tel4vn hook payloads.

use crate::common::{direction_of, party_text};
use crate::Recipient;
use serde_json::{json, Map, Value};
use switchboard_model::{Details, Direction, Event, EventKind, Party, PartyKind};

/// The hook event an event becomes, if tel4vn has one.
pub fn state_of(event: &Event) -> Option<&'static str> {
    Some(match event.fact.kind {
        EventKind::LegRinging => "ringing",
        EventKind::LegAnswered => "answered",
        EventKind::LegEnded => "hangup",
        EventKind::CallMissed => "missed",
        EventKind::CallLog => {
            let v = &event.fact.vendor;
            if v.get("autocall") == Some(&Value::Bool(true))
                || v.contains_key("press_key")
                || v.contains_key("customer_id")
            {
                "cdr_autocall"
            } else {
                "cdr"
            }
        }
        _ => return None,
    })
}

fn did_of(p: Option<&Party>) -> Option<String> {
    p.filter(|p| p.kind == PartyKind::Number)
        .and_then(|p| p.number.clone())
}

/// Encodes an event as a tel4vn hook payload.
pub fn encode(event: &Event, to: &Recipient) -> Option<Vec<u8>> {
    let state = state_of(event)?;
    if to
        .only_event
        .as_deref()
        .is_some_and(|wanted| wanted != state)
    {
        return None;
    }
    let fact = &event.fact;
    let (direction, from, callee) = match &fact.details {
        Details::Leg(l) => (l.direction, l.leg.from.as_ref(), l.leg.to.as_ref()),
        Details::CallLog(c) => (c.direction, c.from.as_ref(), c.to.as_ref()),
        _ => (None, None, None),
    };
    let v = &fact.vendor;
    let mut out = Map::new();
    // The hub's call logs carry the PBX's own id of the call when it sent one (its `cdr`'s
    // `call_id`), which its code knows; else the leg's or the call's id.
    let call_id = v
        .get("call_id")
        .cloned()
        .unwrap_or_else(|| json!(fact.leg_id.clone().or_else(|| fact.call_id.clone())));
    out.insert("call_id".into(), call_id);
    out.insert(
        "sip_call_id".into(),
        v.get("sip_call_id")
            .cloned()
            .unwrap_or_else(|| json!(fact.call_id)),
    );
    // Every documented field is always sent, with its documented type: what the hub cannot
    // know is a stable placeholder (docs/dialects.md): domain and hotline "", numbers "".
    let domain = v.get("domain").cloned().unwrap_or_else(|| {
        json!([from, callee]
            .into_iter()
            .flatten()
            .find_map(|p| p.domain.clone())
            .unwrap_or_default())
    });
    out.insert("domain".into(), domain);
    // inbound or outbound, as documented: a call between two extensions is outbound (from
    // one of ours); one no party tells is inbound.
    let direction = direction.unwrap_or_else(|| direction_of(event, to.call_direction));
    let direction_value = match direction {
        Direction::Inbound => json!("inbound"),
        Direction::Outbound | Direction::Internal => json!("outbound"),
    };
    out.insert("direction".into(), direction_value);
    out.insert(
        "from_number".into(),
        json!(from.and_then(party_text).unwrap_or_default()),
    );
    out.insert(
        "to_number".into(),
        json!(callee.and_then(party_text).unwrap_or_default()),
    );
    let hotline = v.get("hotline").cloned().or_else(|| {
        let dialled = if direction == Direction::Inbound {
            did_of(callee)
        } else {
            did_of(from)
        };
        dialled.map(Value::from)
    });
    out.insert("hotline".into(), hotline.unwrap_or_else(|| json!("")));
    out.insert("state".into(), json!(state));
    let keep: &[&str] = match state {
        // `status` is no documented field: sent only where the PBX itself sent it.
        "hangup" => &["duration", "billsec", "recording_url", "status"],
        "cdr" => &["duration", "billsec", "recording_url", "status"],
        "cdr_autocall" => &[
            "duration",
            "billsec",
            "recording_url",
            "press_key",
            "customer_id",
            "status",
        ],
        _ => &[],
    };
    for key in keep
        .iter()
        .chain(["time_started", "time_answered", "time_ended"].iter())
    {
        if let Some(value) = v.get(*key) {
            out.insert((*key).into(), value.clone());
        }
    }
    // A hangup always says its leg's duration and billed seconds; one whose source did not
    // (another vendor's leg end) says 0 for both, the placeholder for "not known here" (the
    // call log has the call's).
    if state == "hangup" {
        for key in ["duration", "billsec"] {
            out.entry(key).or_insert_with(|| json!(0));
        }
    }
    Some(serde_json::to_vec(&Value::Object(out)).expect("JSON"))
}
