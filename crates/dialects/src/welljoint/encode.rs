//! Canonical events → Welljoint CTI events. `eventTime` is written in UTC.

use crate::common::{party_text, uuid_for};
use crate::Recipient;
use serde_json::{json, Map, Value};
use switchboard_model::{AgentState, Details, Dialect, Event, EventKind, LegResult};

/// Encodes an event as a Welljoint CTI event, if Welljoint has one for it.
pub fn encode(event: &Event, _to: &Recipient) -> Option<Vec<u8>> {
    let fact = &event.fact;
    let v = &fact.vendor;
    let said = v.get("eventName").and_then(Value::as_str);
    let name = match (&fact.details, fact.kind) {
        (Details::Agent(a), _) => match a.state {
            _ if a.logged_on => "agentLoggedOn",
            AgentState::LoggedOut => "agentLoggedOff",
            AgentState::Ready | AgentState::OnCall => "agentReady",
            AgentState::NotReady => "agentNotReady",
            AgentState::AfterCallWork => "agentWorkingAfterCall",
            AgentState::Allocated => "agentAllocated",
        },
        // Not a documented event: only a Welljoint source's own is given back.
        (_, EventKind::LegCreated) => match said {
            Some("originated") => "originated",
            Some("serviceInitiated") => "serviceInitiated",
            _ => return None,
        },
        (_, EventKind::LegRinging) => "delivered",
        (_, EventKind::LegAnswered) => "established",
        (_, EventKind::LegHeld) => "held",
        (_, EventKind::LegRetrieved) => "retrieved",
        (Details::Leg(l), EventKind::LegEnded)
            if l.leg.result.is_some_and(|r| {
                matches!(
                    r,
                    LegResult::Failed | LegResult::Busy | LegResult::NoAnswer | LegResult::Rejected
                )
            }) && said != Some("connectionCleared") =>
        {
            "failed"
        }
        (_, EventKind::LegEnded) => "connectionCleared",
        (_, EventKind::Transferred) => "transferred",
        (_, EventKind::Conferenced) => "conferenced",
        (_, EventKind::RecordingStarted) => "recordStarted",
        (_, EventKind::RecordingStopped) => "recordStopped",
        _ => return None,
    };
    let mut out = Map::new();
    let put = |out: &mut Map<String, Value>, key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(key.to_string(), value);
        }
    };
    out.insert("eventName".into(), json!(name));
    out.insert(
        "eventTime".into(),
        json!(fact
            .occurred_at
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y.%m.%d %H:%M:%S")
            .to_string()),
    );
    let agent = matches!(fact.details, Details::Agent(_));
    out.insert(
        "eventType".into(),
        v.get("eventType")
            .cloned()
            .unwrap_or_else(|| json!(if agent { "agent" } else { "csta" })),
    );
    // Always an integer, increasing as the server's does: the source's own, else the
    // millisecond the hub stamped into the event's (time-ordered) id.
    let serial = v
        .get("serial")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| (event.id.as_u128() >> 80) as i64);
    out.insert("serial".into(), json!(serial));
    for key in [
        "namespace",
        "srcDeviceId",
        "deviceId",
        "cause",
        "userData",
        "failedCode",
        "failedMsg",
        "isSuccess",
    ] {
        put(&mut out, key, v.get(key).cloned());
    }
    put(&mut out, "callId", fact.call_id.clone().map(Value::from));
    let (from, to) = match &fact.details {
        Details::Leg(l) => (l.leg.from.as_ref(), l.leg.to.as_ref()),
        _ => (None, None),
    };
    // The device a leg event is about: a Welljoint leg's is the first part of its id
    // (`device|call`); another source's, the party the leg reaches.
    let own = event.source.dialect == Dialect::Welljoint;
    let leg_device = if own {
        fact.leg_id
            .as_deref()
            .map(|l| l.split('|').next().unwrap_or(l).to_string())
    } else {
        to.or(from).and_then(party_text)
    };
    // The namespace is the domain of the centre's devices: the source's, a party's, or
    // `switchboard`.
    if !out.contains_key("namespace") {
        let domain = [to, from]
            .into_iter()
            .flatten()
            .find_map(|p| p.domain.clone());
        out.insert(
            "namespace".into(),
            json!(domain.unwrap_or_else(|| "switchboard".into())),
        );
    }
    // The document's rule is that an event's `srcDeviceId` is the device whose view it is
    // (`alertingDevice == srcDeviceId` when that device rings).
    let agent_device = match &fact.details {
        Details::Agent(a) => a.device.clone(),
        _ => None,
    };
    let device = agent_device
        .or_else(|| leg_device.clone())
        .unwrap_or_default();
    for key in ["srcDeviceId", "deviceId"] {
        if !out.contains_key(key) {
            out.insert(key.into(), json!(device));
        }
    }
    match &fact.details {
        Details::Agent(a) => {
            out.insert("agentId".into(), json!(a.agent_id));
            put(&mut out, "deviceId", a.device.clone().map(Value::from));
            let mode = match a.state {
                AgentState::Ready | AgentState::OnCall => "Ready",
                AgentState::NotReady => "NotReady",
                AgentState::AfterCallWork => "WorkNotReady",
                AgentState::LoggedOut => "Logout",
                AgentState::Allocated => "Allocated",
            };
            out.insert("agentMode".into(), json!(mode));
            put(
                &mut out,
                "devices",
                a.device.clone().map(|d| json!({ "Voice": d })),
            );
        }
        Details::Leg(l) => {
            out.insert(
                "callingDevice".into(),
                json!(l.leg.from.as_ref().and_then(party_text).unwrap_or_default()),
            );
            out.insert(
                "calledDevice".into(),
                json!(l
                    .leg
                    .to
                    .as_ref()
                    .and_then(party_text)
                    .unwrap_or_else(|| device.clone())),
            );
            let field = match name {
                "delivered" => Some("alertingDevice"),
                "established" => Some("answeringDevice"),
                "held" => Some("holdingDevice"),
                "retrieved" => Some("retrievingDevice"),
                "connectionCleared" => Some("releasingDevice"),
                _ => None,
            };
            if let (Some(field), Some(dev)) = (field, leg_device.clone()) {
                out.insert(field.into(), json!(dev));
            }
            if name == "serviceInitiated" || name == "originated" {
                if let Some(dev) = leg_device {
                    out.insert("callingDevice".into(), json!(dev));
                }
            }
            if name == "failed" && !out.contains_key("failedCode") {
                let code = match l.leg.result {
                    Some(LegResult::Busy) => "1",
                    Some(LegResult::NoAnswer) => "11",
                    Some(LegResult::Rejected) => "4",
                    _ => "14",
                };
                out.insert("failedCode".into(), json!(code));
            }
            if let Some(h) = &l.hangup {
                if !out.contains_key("cause") {
                    put(&mut out, "cause", h.text.clone().map(Value::from));
                }
                if name == "connectionCleared" {
                    put(
                        &mut out,
                        "hangupDevice",
                        h.by.as_ref().and_then(party_text).map(Value::from),
                    );
                }
            }
        }
        Details::Transfer(t) => {
            let conference = fact.kind == EventKind::Conferenced;
            out.insert(
                "primaryOldCall".into(),
                json!(t.old_calls.first().cloned().unwrap_or_else(|| "0".into())),
            );
            out.insert(
                "secondaryOldCall".into(),
                json!(t.old_calls.get(1).cloned().unwrap_or_else(|| "0".into())),
            );
            out.insert(
                "newCall".into(),
                json!(t.new_call.clone().unwrap_or_else(|| "0".into())),
            );
            let (by, to) = if conference {
                ("conferencingDevice", "addedParty")
            } else {
                ("transferringDevice", "transferredToDevice")
            };
            put(
                &mut out,
                by,
                t.by.as_ref().and_then(party_text).map(Value::from),
            );
            put(
                &mut out,
                to,
                t.to.as_ref().and_then(party_text).map(Value::from),
            );
        }
        Details::Recording(r) => {
            let id = r.recording_id.clone().unwrap_or_else(|| {
                uuid_for(
                    "recording",
                    &format!(
                        "{}:{}",
                        fact.call_id.as_deref().unwrap_or_default(),
                        r.url.as_deref().unwrap_or(&fact.source_key)
                    ),
                )
            });
            out.insert("recordId".into(), json!(id));
            put(&mut out, "fileName", r.url.clone().map(Value::from));
        }
        _ => {}
    }
    Some(serde_json::to_vec(&Value::Object(out)).expect("JSON"))
}
