//! Canonical events → Welljoint CTI events. `eventTime` is written in UTC.

use crate::common::party_text;
use crate::Recipient;
use serde_json::{json, Map, Value};
use switchboard_model::{AgentState, Details, Event, EventKind, LegResult};

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
        (_, EventKind::LegCreated) => {
            if said == Some("originated") {
                "originated"
            } else {
                "serviceInitiated"
            }
        }
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
    out.insert(
        "serial".into(),
        v.get("serial")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(Value::Null, Value::from),
    );
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
    // The device a leg event is about is the first part of its leg id.
    let leg_device = fact
        .leg_id
        .as_deref()
        .map(|l| l.split('|').next().unwrap_or(l).to_string());
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
            put(
                &mut out,
                "callingDevice",
                l.leg.from.as_ref().and_then(party_text).map(Value::from),
            );
            put(
                &mut out,
                "calledDevice",
                l.leg.to.as_ref().and_then(party_text).map(Value::from),
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
            put(
                &mut out,
                "recordId",
                r.recording_id.clone().map(Value::from),
            );
            put(&mut out, "fileName", r.url.clone().map(Value::from));
        }
        _ => {}
    }
    Some(serde_json::to_vec(&Value::Object(out)).expect("JSON"))
}
