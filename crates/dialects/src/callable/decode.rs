//! Callable JSON → canonical facts.

use crate::common::{from_millis, non_empty, parse, party_from, raw_json, Text};
use crate::error::DecodeError;
use crate::DecodeContext;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_model::{
    Details, EventKind, Fact, LegFacts, LegResult, LegSnapshot, Party, PartyKind, RecordingFacts,
};

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Level {
    Call,
    Record,
    Phone,
    Extension,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Generic {
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    account_name: Option<String>,
    parent_call_sid: String,
    call_sid: String,
    #[serde(default)]
    child_sid: Option<String>,
    #[serde(default, rename = "type")]
    media: Option<String>,
    event: Level,
    status: String,
    #[serde(default)]
    from: Option<Text>,
    #[serde(default)]
    to: Option<Text>,
    #[serde(default)]
    extension: Option<Text>,
    #[serde(default)]
    meta: Option<Value>,
    timestamp: i64,
}

fn bad_status(allowed: &str) -> DecodeError {
    DecodeError::unknown_value("status", format!("expected one of {allowed}"))
}

/// Decodes one Callable generic event.
pub fn decode(item: &str, ctx: &DecodeContext) -> Result<Vec<Fact>, DecodeError> {
    let g: Generic = parse(item, "")?;
    if g.parent_call_sid.trim().is_empty() {
        return Err(DecodeError::new("parentCallSid", "must not be empty"));
    }
    let occurred_at = from_millis(g.timestamp, ctx, "timestamp")?;
    let from = non_empty(g.from).map(|f| party_from(&f, false));
    let mut to = non_empty(g.to).map(|t| party_from(&t, false));
    let extension = non_empty(g.extension);
    let mut vendor = Map::new();
    for (key, value) in [
        ("accountId", g.account_id.map(Value::from)),
        ("accountName", g.account_name.map(Value::from)),
        ("type", g.media.map(Value::from)),
        ("meta", g.meta),
    ] {
        if let Some(v) = value {
            vendor.insert(key.into(), v);
        }
    }
    let is_first = g.call_sid == g.parent_call_sid;
    let status = g.status.as_str();
    let (kind, leg_id, details) = match g.event {
        Level::Call => {
            let (kind, result) = match status {
                "trying" => (EventKind::LegCreated, None),
                "ringing" => (EventKind::LegRinging, None),
                "in-progress" => (EventKind::LegAnswered, None),
                "completed" => (EventKind::LegEnded, None),
                "failed" => (EventKind::LegEnded, Some(LegResult::Failed)),
                _ => {
                    return Err(bad_status(
                        "trying, ringing, in-progress, completed, failed",
                    ))
                }
            };
            let leg = LegSnapshot {
                id: Some(g.call_sid.clone()),
                is_first: Some(is_first),
                from,
                to,
                result,
            };
            let parent = (!is_first).then(|| g.parent_call_sid.clone());
            (
                kind,
                g.call_sid.clone(),
                Details::Leg(Box::new(LegFacts {
                    direction: None,
                    leg,
                    first_leg: None,
                    parent_leg: parent,
                    hangup: None,
                })),
            )
        }
        Level::Record => {
            let kind = match status {
                // The documented example sends `in-progress` for a recording under way.
                "start" | "in-progress" => EventKind::RecordingStarted,
                "end" => EventKind::RecordingStopped,
                // The documentation spells it both ways.
                "transcoded" | "trancoded" => EventKind::RecordingReady,
                _ => return Err(bad_status("start, end, transcoded")),
            };
            let details = Details::Recording(RecordingFacts {
                recording_id: None,
                subject: Some("call".into()),
                size_bytes: None,
                duration_ms: None,
                url: None,
            });
            (kind, g.call_sid.clone(), details)
        }
        Level::Phone | Level::Extension => {
            let kind = match status {
                "connected" => EventKind::LegAnswered,
                "disconnected" => EventKind::LegEnded,
                "parked" => EventKind::LegHeld,
                _ => return Err(bad_status("connected, disconnected, parked")),
            };
            let child = g
                .child_sid
                .clone()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    DecodeError::new("childSid", "missing: Level 3 events name the PBX's sub-leg")
                })?;
            vendor.insert(
                "event".into(),
                Value::from(if g.event == Level::Phone {
                    "phone"
                } else {
                    "extension"
                }),
            );
            if let Some(ext) = &extension {
                let mut device = to
                    .take()
                    .unwrap_or_else(|| Party::new(PartyKind::Extension));
                device.kind = PartyKind::Extension;
                device.extension = Some(ext.clone());
                to = Some(device);
            }
            let leg = LegSnapshot {
                id: Some(child.clone()),
                is_first: Some(false),
                from,
                to,
                result: None,
            };
            (
                kind,
                child,
                Details::Leg(Box::new(LegFacts {
                    direction: None,
                    leg,
                    first_leg: None,
                    parent_leg: Some(g.call_sid.clone()),
                    hangup: None,
                })),
            )
        }
    };
    let level = match g.event {
        Level::Call => "call",
        Level::Record => "record",
        Level::Phone => "phone",
        Level::Extension => "extension",
    };
    Ok(vec![Fact {
        time_estimated: false,
        source_key: format!(
            "callable:{}:{}:{level}:{status}:{}",
            g.call_sid,
            g.child_sid.unwrap_or_default(),
            g.timestamp
        ),
        kind,
        occurred_at,
        call_id: Some(g.parent_call_sid),
        leg_id: Some(leg_id),
        agent_id: None,
        details,
        vendor,
        raw: raw_json(item),
    }])
}
