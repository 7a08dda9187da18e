//! Welljoint JSON → canonical facts.

use crate::common::{content_key, loose_bool, parse, party_from, plausible, raw_json, Text};
use crate::error::DecodeError;
use crate::DecodeContext;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_model::{
    AgentFacts, AgentState, Details, EventKind, Fact, Hangup, LegFacts, LegResult, LegSnapshot,
    Party, RecordingFacts, TransferFacts,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cti {
    event_name: String,
    event_time: String,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    serial: Option<Text>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    event_src: Option<String>,
    #[serde(default)]
    src_device_id: Option<String>,
    #[serde(default)]
    call_id: Option<Text>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    agent_mode: Option<String>,
    #[serde(default)]
    cause: Option<String>,
    #[serde(default)]
    alerting_device: Option<String>,
    #[serde(default)]
    answering_device: Option<String>,
    #[serde(default)]
    calling_device: Option<String>,
    #[serde(default)]
    called_device: Option<String>,
    #[serde(default)]
    releasing_device: Option<String>,
    #[serde(default)]
    hangup_device: Option<String>,
    #[serde(default)]
    holding_device: Option<String>,
    #[serde(default)]
    retrieving_device: Option<String>,
    #[serde(default)]
    primary_old_call: Option<Text>,
    #[serde(default)]
    secondary_old_call: Option<Text>,
    #[serde(default)]
    new_call: Option<Text>,
    #[serde(default)]
    transferring_device: Option<String>,
    #[serde(default)]
    transferred_to_device: Option<String>,
    #[serde(default)]
    conferencing_device: Option<String>,
    #[serde(default)]
    added_party: Option<String>,
    #[serde(default)]
    record_id: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    is_success: Option<bool>,
    #[serde(default)]
    failed_code: Option<Text>,
    #[serde(default)]
    failed_msg: Option<String>,
    #[serde(default)]
    user_data: Option<Value>,
}

/// A call id, where `"0"` (or nothing) means none.
fn call(v: Option<Text>) -> Option<String> {
    v.map(Text::into_string)
        .filter(|s| !s.is_empty() && s != "0")
}

/// `normalClearing` and `NORMAL_CLEARING` are the same cause.
pub(crate) fn normalize_cause(cause: &str) -> String {
    if cause.contains('_') || cause.chars().all(|c| !c.is_ascii_lowercase()) {
        return cause.to_ascii_uppercase();
    }
    let mut out = String::new();
    for (i, c) in cause.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn agent_state(mode: Option<&str>) -> Option<AgentState> {
    Some(match mode? {
        "Ready" => AgentState::Ready,
        "NotReady" => AgentState::NotReady,
        "WorkNotReady" | "AfterCallWork" => AgentState::AfterCallWork,
        "Logout" => AgentState::LoggedOut,
        "Allocated" => AgentState::Allocated,
        "Busy" | "OnCall" => AgentState::OnCall,
        _ => return None,
    })
}

fn device(d: &Option<String>) -> Option<Party> {
    d.as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| party_from(d, true))
}

fn failed_result(code: Option<&str>) -> LegResult {
    match code.and_then(|c| c.trim().parse::<u8>().ok()) {
        Some(1 | 9 | 10) => LegResult::Busy,
        Some(11) => LegResult::NoAnswer,
        Some(4) => LegResult::Rejected,
        _ => LegResult::Failed,
    }
}

/// Decodes one Welljoint CTI event.
pub fn decode(item: &str, ctx: &DecodeContext) -> Result<Vec<Fact>, DecodeError> {
    let e: Cti = parse(item, "")?;
    let local = jiff::civil::DateTime::strptime("%Y.%m.%d %H:%M:%S", e.event_time.trim())
        .map_err(|_| DecodeError::new("eventTime", "expected local time as YYYY.MM.DD HH:MM:SS"))?;
    let at = local
        .to_zoned(ctx.tz.clone())
        .map_err(|err| {
            DecodeError::new(
                "eventTime",
                format!("not a time in the source's zone: {err}"),
            )
        })?
        .timestamp();
    let occurred_at = plausible(at, ctx, "eventTime")?;
    let call_id = call(e.call_id.clone());
    let mut vendor = Map::new();
    vendor.insert("eventName".into(), Value::from(e.event_name.clone()));
    for (key, value) in [
        ("eventType", e.event_type.clone().map(Value::from)),
        (
            "serial",
            e.serial.clone().map(|s| Value::from(s.into_string())),
        ),
        ("namespace", e.namespace.clone().map(Value::from)),
        ("srcDeviceId", e.src_device_id.clone().map(Value::from)),
        ("eventSrc", e.event_src.clone().map(Value::from)),
        ("deviceId", e.device_id.clone().map(Value::from)),
        ("cause", e.cause.clone().map(Value::from)),
        ("agentMode", e.agent_mode.clone().map(Value::from)),
        (
            "failedCode",
            e.failed_code.clone().map(|c| Value::from(c.into_string())),
        ),
        ("failedMsg", e.failed_msg.clone().map(Value::from)),
        ("isSuccess", e.is_success.map(Value::from)),
        ("userData", e.user_data.clone()),
    ] {
        if let Some(v) = value {
            vendor.insert(key.into(), v);
        }
    }
    let name = e.event_name.as_str();
    let leg_of = |dev: &Option<String>| -> Option<String> {
        let dev = dev.as_deref().or(e.device_id.as_deref())?;
        Some(match &call_id {
            Some(c) => format!("{dev}|{c}"),
            None => dev.to_string(),
        })
    };
    let leg =
        |dev: &Option<String>, result: Option<LegResult>, hangup: Option<Hangup>| -> Details {
            Details::Leg(Box::new(LegFacts {
                direction: None,
                leg: LegSnapshot {
                    id: leg_of(dev),
                    is_first: None,
                    from: device(&e.calling_device),
                    to: device(&e.called_device),
                    result,
                },
                first_leg: None,
                parent_leg: None,
                hangup,
            }))
        };
    let mut agent_id = e.agent_id.clone();
    let (kind, leg_id, details) = match name {
        "agentLoggedOn"
        | "agentLoggedOff"
        | "agentReady"
        | "agentNotReady"
        | "agentWorkingAfterCall"
        | "agentAllocated" => {
            let agent = e.agent_id.clone().ok_or_else(|| {
                DecodeError::new("agentId", "missing: agent events name the agent")
            })?;
            let state = match name {
                "agentLoggedOff" => AgentState::LoggedOut,
                "agentReady" => AgentState::Ready,
                "agentNotReady" => AgentState::NotReady,
                "agentWorkingAfterCall" => AgentState::AfterCallWork,
                "agentAllocated" => AgentState::Allocated,
                _ => agent_state(e.agent_mode.as_deref()).unwrap_or(AgentState::Ready),
            };
            agent_id = Some(agent.clone());
            let details = Details::Agent(AgentFacts {
                agent_id: agent,
                device: e.device_id.clone(),
                state,
                logged_on: name == "agentLoggedOn",
            });
            (EventKind::AgentState, None, details)
        }
        "serviceInitiated" | "originated" => (
            EventKind::LegCreated,
            leg_of(&e.calling_device),
            leg(&e.calling_device, None, None),
        ),
        "delivered" => (
            EventKind::LegRinging,
            leg_of(&e.alerting_device),
            leg(&e.alerting_device, None, None),
        ),
        "established" => (
            EventKind::LegAnswered,
            leg_of(&e.answering_device),
            leg(&e.answering_device, None, None),
        ),
        "held" => (
            EventKind::LegHeld,
            leg_of(&e.holding_device),
            leg(&e.holding_device, None, None),
        ),
        "retrieved" => (
            EventKind::LegRetrieved,
            leg_of(&e.retrieving_device),
            leg(&e.retrieving_device, None, None),
        ),
        "connectionCleared" => {
            let hangup = Hangup {
                by: device(&e.hangup_device),
                text: e.cause.as_deref().map(normalize_cause),
                ..Hangup::default()
            };
            (
                EventKind::LegEnded,
                leg_of(&e.releasing_device),
                leg(&e.releasing_device, None, Some(hangup)),
            )
        }
        "failed" => {
            // Codes 1 to 11 and 14 are documented; another is a failure all the same (kept
            // as sent in the vendor fields).
            let code = e.failed_code.clone().map(Text::into_string);
            let hangup = Hangup {
                text: e.failed_msg.clone().or(e.cause.clone()),
                ..Hangup::default()
            };
            let result = failed_result(code.as_deref());
            (
                EventKind::LegEnded,
                leg_of(&e.called_device),
                leg(&e.called_device, Some(result), Some(hangup)),
            )
        }
        "transferred" | "conferenced" => {
            let conference = name == "conferenced";
            let old_calls: Vec<String> = [
                call(e.primary_old_call.clone()),
                call(e.secondary_old_call.clone()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let details = Details::Transfer(TransferFacts {
                old_calls,
                new_call: call(e.new_call.clone()),
                by: device(if conference {
                    &e.conferencing_device
                } else {
                    &e.transferring_device
                }),
                to: device(if conference {
                    &e.added_party
                } else {
                    &e.transferred_to_device
                }),
            });
            (
                if conference {
                    EventKind::Conferenced
                } else {
                    EventKind::Transferred
                },
                None,
                details,
            )
        }
        "recordStarted" | "recordStopped" => {
            let details = Details::Recording(RecordingFacts {
                recording_id: e.record_id.clone(),
                subject: Some("call".into()),
                size_bytes: None,
                duration_ms: None,
                url: e.file_name.clone(),
            });
            (
                if name == "recordStarted" {
                    EventKind::RecordingStarted
                } else {
                    EventKind::RecordingStopped
                },
                None,
                details,
            )
        }
        other => {
            return Err(DecodeError::unknown_value(
                "eventName",
                format!(
                    "unknown event {other:?}; expected one of {}",
                    super::EVENTS.join(", ")
                ),
            ));
        }
    };
    let source_key = match (&e.namespace, &e.serial) {
        (Some(ns), Some(serial)) => format!("welljoint:{ns}:{}", serial.clone().into_string()),
        _ => content_key("welljoint", item),
    };
    Ok(vec![Fact {
        time_estimated: false,
        source_key,
        kind,
        occurred_at,
        call_id,
        leg_id,
        agent_id,
        details,
        vendor,
        raw: raw_json(item),
    }])
}
