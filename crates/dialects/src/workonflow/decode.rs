//! Workonflow JSON (or JavaScript object literals) → canonical facts.

use crate::common::{content_key, from_millis, loose_bool, non_empty, parse, raw_json, Text};
use crate::error::DecodeError;
use crate::DecodeContext;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_model::{
    Details, DtmfFacts, EventKind, Fact, LegFacts, LegResult, LegSnapshot, Party, PartyKind,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Call {
    #[serde(default)]
    team_id: Option<String>,
    event_type: String,
    #[serde(default)]
    stream_id: Option<String>,
    #[serde(default)]
    thread_id: Option<String>,
    #[serde(default)]
    originate_user_id: Option<String>,
    #[serde(default)]
    destination_id: Option<String>,
    #[serde(default, rename = "type")]
    place: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    phone: Option<Text>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    answered: Option<bool>,
    #[serde(default)]
    dtmf_number: Option<Text>,
}

/// Reads a body of JavaScript object literals (one, or an array) as JSON items.
pub fn relaxed(body: &[u8]) -> Result<crate::Body<'static>, DecodeError> {
    let text =
        std::str::from_utf8(body).map_err(|_| DecodeError::syntax("", "the body is not UTF-8"))?;
    let value: Value = json5::from_str(text).map_err(|e| {
        DecodeError::syntax(
            "",
            format!("the body is neither JSON nor a JavaScript object literal: {e}"),
        )
    })?;
    let (items, single) = match value {
        Value::Array(items) => (items, false),
        other => (vec![other], true),
    };
    let items = items
        .into_iter()
        .map(|v| std::borrow::Cow::Owned(v.to_string()))
        .collect();
    Ok(crate::Body { items, single })
}

fn user(id: Option<String>, phone: Option<String>) -> Option<Party> {
    if id.is_none() && phone.is_none() {
        return None;
    }
    let mut p = Party::new(PartyKind::User);
    p.id = id;
    p.number = phone;
    Some(p)
}

fn leg(
    id: String,
    is_first: bool,
    from: Option<Party>,
    to: Option<Party>,
    result: Option<LegResult>,
) -> Details {
    Details::Leg(Box::new(LegFacts {
        direction: None,
        leg: LegSnapshot {
            id: Some(id),
            is_first: Some(is_first),
            from,
            to,
            result,
        },
        first_leg: None,
        parent_leg: None,
        hangup: None,
    }))
}

/// Decodes one Workonflow call event.
pub fn decode(item: &str, ctx: &DecodeContext) -> Result<Vec<Fact>, DecodeError> {
    let c: Call = parse(item, "")?;
    let call_id = match c.place.as_deref() {
        Some("thread") => c.thread_id.clone().ok_or_else(|| {
            DecodeError::new("threadId", "missing: a call of type thread is its thread")
        })?,
        _ => c
            .stream_id
            .clone()
            .or_else(|| c.thread_id.clone())
            .ok_or_else(|| {
                DecodeError::new("streamId", "missing: the call is its stream (or thread)")
            })?,
    };
    let mut vendor = Map::new();
    for (key, value) in [
        ("teamId", c.team_id.clone()),
        ("streamId", c.stream_id.clone()),
        ("threadId", c.thread_id.clone()),
        ("type", c.place.clone()),
    ] {
        if let Some(v) = value {
            vendor.insert(key.into(), Value::from(v));
        }
    }
    let occurred_at = match c.created_at {
        Some(ms) => from_millis(ms, ctx, "createdAt")?,
        None => ctx.received_at,
    };
    let phone = non_empty(c.phone);
    let member_key = c.user_id.clone().or_else(|| phone.clone());
    let member = || user(c.user_id.clone(), phone.clone());
    let member_leg = || -> Result<String, DecodeError> {
        member_key
            .clone()
            .map(|m| format!("{call_id}:{m}"))
            .ok_or_else(|| {
                DecodeError::new(
                    "userId",
                    "missing: member events name the member (userId or phone)",
                )
            })
    };
    let (kind, leg_id, details) = match c.event_type.as_str() {
        "Call.created" => {
            let from = user(c.originate_user_id.clone(), None);
            let to = user(c.destination_id.clone(), None);
            let id = match &c.originate_user_id {
                Some(u) => format!("{call_id}:{u}"),
                None => call_id.clone(),
            };
            (
                EventKind::LegCreated,
                Some(id.clone()),
                leg(id, true, from, to, None),
            )
        }
        "Call.Member.invited" => {
            let id = member_leg()?;
            (
                EventKind::LegRinging,
                Some(id.clone()),
                leg(id, false, None, member(), None),
            )
        }
        "Call.Member.Invite.ended" => {
            let id = member_leg()?;
            match c.answered {
                Some(true) => (
                    EventKind::LegAnswered,
                    Some(id.clone()),
                    leg(id, false, None, member(), None),
                ),
                Some(false) => (
                    EventKind::LegEnded,
                    Some(id.clone()),
                    leg(id, false, None, member(), Some(LegResult::NoAnswer)),
                ),
                None => return Err(DecodeError::new("answered", "missing: true or false")),
            }
        }
        "Call.Member.leaved" => {
            let id = member_leg()?;
            (
                EventKind::LegEnded,
                Some(id.clone()),
                leg(id, false, None, member(), None),
            )
        }
        "Call.Member.held" => {
            let id = member_leg()?;
            (
                EventKind::LegHeld,
                Some(id.clone()),
                leg(id, false, None, member(), None),
            )
        }
        "Call.Member.unheld" => {
            let id = member_leg()?;
            (
                EventKind::LegRetrieved,
                Some(id.clone()),
                leg(id, false, None, member(), None),
            )
        }
        "Call.Member.dtmf" => {
            let id = member_leg()?;
            let digits = non_empty(c.dtmf_number.clone())
                .ok_or_else(|| DecodeError::new("dtmfNumber", "missing: the digits pressed"))?;
            (
                EventKind::Dtmf,
                Some(id),
                Details::Dtmf(DtmfFacts {
                    digits,
                    party: member(),
                }),
            )
        }
        "Call.ended" => (EventKind::CallEnded, None, Details::None),
        other => {
            return Err(DecodeError::unknown_value(
                "eventType",
                format!(
                    "unknown event {other:?}; expected one of {}",
                    super::EVENTS.join(", ")
                ),
            ));
        }
    };
    // Workonflow sends no event id, and no time but a call's creation: the same body again
    // within the same minute is a resend, and later it is a new event (the next call in a
    // stream ends with the very same `Call.ended`).
    let source_key = match c.created_at {
        Some(_) => content_key("workonflow", item),
        None => format!(
            "{}:{}",
            content_key("workonflow", item),
            ctx.received_at.as_second().div_euclid(60)
        ),
    };
    Ok(vec![Fact {
        time_estimated: c.created_at.is_none(),
        source_key,
        kind,
        occurred_at,
        call_id: Some(call_id),
        leg_id,
        agent_id: None,
        details,
        vendor,
        raw: raw_json(item),
    }])
}
