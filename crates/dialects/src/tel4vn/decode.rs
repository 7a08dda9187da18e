//! tel4vn JSON → canonical facts.

use crate::common::{content_key, non_empty, parse, party_from, plausible, raw_json, Text};
use crate::error::DecodeError;
use crate::DecodeContext;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchboard_model::{
    CallLogFacts, Details, Direction, EventKind, Fact, LegFacts, LegResult, LegSnapshot, Party,
    RecordingFacts,
};

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum State {
    Ringing,
    Answered,
    Hangup,
    Cdr,
    Missed,
    CdrAutocall,
}

#[derive(Debug, Deserialize)]
struct Hook {
    call_id: Text,
    #[serde(default)]
    sip_call_id: Option<Text>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    direction: Option<Value>,
    #[serde(default)]
    from_number: Option<Text>,
    #[serde(default)]
    to_number: Option<Text>,
    #[serde(default)]
    hotline: Option<Text>,
    state: State,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    billsec: Option<f64>,
    #[serde(default)]
    recording_url: Option<String>,
    #[serde(default)]
    press_key: Option<Text>,
    #[serde(default)]
    customer_id: Option<Text>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    time_started: Option<Text>,
    #[serde(default)]
    time_answered: Option<Text>,
    #[serde(default)]
    time_ended: Option<Text>,
}

/// A tel4vn time: Unix seconds (or milliseconds), or `YYYY-MM-DD HH:MM:SS` local time.
fn time(value: Text, ctx: &DecodeContext, path: &str) -> Result<Timestamp, DecodeError> {
    let at = match value {
        Text::Int(n) if n > 100_000_000_000 => Timestamp::from_millisecond(n).ok(),
        Text::Int(n) => Timestamp::from_second(n).ok(),
        Text::Float(f) => Timestamp::from_second(f as i64).ok(),
        Text::Str(s) => match s.trim().parse::<i64>() {
            Ok(n) => Timestamp::from_second(n).ok(),
            Err(_) => s
                .trim()
                .replace('T', " ")
                .parse::<jiff::civil::DateTime>()
                .ok()
                .and_then(|dt| dt.to_zoned(ctx.tz.clone()).ok())
                .map(|z| z.timestamp()),
        },
    };
    let at =
        at.ok_or_else(|| DecodeError::new(path, "expected Unix seconds or YYYY-MM-DD HH:MM:SS"))?;
    plausible(at, ctx, path)
}

/// Seconds as the PBX wrote them: a whole number stays one (`10`, not `10.0`).
fn seconds(s: f64) -> Value {
    if s.fract() == 0.0 && s.abs() < 9.0e15 {
        json!(s as i64)
    } else {
        json!(s)
    }
}

/// How a leg ended, from the PBX's status or else its billsec; `None` when it says neither.
fn result_of(status: Option<&str>, billsec: Option<f64>) -> Option<LegResult> {
    if status.is_none() && billsec.is_none() {
        return None;
    }
    let status = status.map(|s| s.trim().to_ascii_uppercase().replace(['_', '-'], " "));
    Some(match status.as_deref() {
        Some("BUSY" | "USER BUSY") => LegResult::Busy,
        Some("NO ANSWER" | "NOANSWER") => LegResult::NoAnswer,
        Some("FAILED" | "CONGESTION" | "CHANUNAVAIL") => LegResult::Failed,
        Some("CANCEL" | "CANCELLED" | "CANCELED") => LegResult::Cancelled,
        Some("ANSWERED" | "ANSWER") => LegResult::Answered,
        _ if billsec.is_some_and(|b| b > 0.0) => LegResult::Answered,
        _ => LegResult::NoAnswer,
    })
}

/// Decodes one tel4vn hook payload.
pub fn decode(item: &str, ctx: &DecodeContext) -> Result<Vec<Fact>, DecodeError> {
    let hook: Hook = parse(item, "")?;
    let call_id = hook.call_id.into_string();
    if call_id.trim().is_empty() {
        return Err(DecodeError::new("call_id", "must not be empty"));
    }
    let direction = match hook.direction.as_ref().and_then(Value::as_str) {
        Some("inbound") => Some(Direction::Inbound),
        Some("outbound") => Some(Direction::Outbound),
        Some("local" | "internal") => Some(Direction::Internal),
        _ => None,
    };
    let mut vendor = Map::new();
    if let Some(d) = hook.direction.as_ref().filter(|_| direction.is_none()) {
        // Seen in real CDRs: a numeric direction; and any the PBX adds. Kept as sent.
        vendor.insert("direction".into(), d.clone());
    }
    let from_text = non_empty(hook.from_number);
    let to_text = non_empty(hook.to_number);
    // "from_number is the extension for outbound calls; to_number for inbound ones".
    let party = |text: &Option<String>, ext_side: bool| -> Option<Party> {
        text.as_deref().map(|t| {
            let mut p = party_from(t, direction.is_none());
            if ext_side && direction.is_some() {
                p.kind = switchboard_model::PartyKind::Extension;
                p.extension = Some(t.to_string());
                p.number = None;
            }
            p
        })
    };
    let from = party(&from_text, direction == Some(Direction::Outbound));
    let to = party(&to_text, direction == Some(Direction::Inbound));
    for (key, value) in [
        ("sip_call_id", non_empty(hook.sip_call_id).map(Value::from)),
        ("domain", hook.domain.map(Value::from)),
        ("hotline", non_empty(hook.hotline).map(Value::from)),
        ("duration", hook.duration.map(seconds)),
        ("billsec", hook.billsec.map(seconds)),
        ("recording_url", hook.recording_url.clone().map(Value::from)),
        ("press_key", non_empty(hook.press_key).map(Value::from)),
        ("customer_id", non_empty(hook.customer_id).map(Value::from)),
        ("status", hook.status.clone().map(Value::from)),
    ] {
        if let Some(v) = value {
            vendor.insert(key.into(), v);
        }
    }
    let started = hook
        .time_started
        .map(|t| time(t, ctx, "time_started"))
        .transpose()?;
    let answered = hook
        .time_answered
        .map(|t| time(t, ctx, "time_answered"))
        .transpose()?;
    let ended = hook
        .time_ended
        .map(|t| time(t, ctx, "time_ended"))
        .transpose()?;
    for (key, at) in [
        ("time_started", started),
        ("time_answered", answered),
        ("time_ended", ended),
    ] {
        if let Some(at) = at {
            vendor.insert(key.into(), json!(at.to_string()));
        }
    }
    // Live hooks carry no time of their own; the PBX's optional time fields are used when sent.
    let stated = match hook.state {
        State::Ringing => started,
        State::Answered => answered,
        _ => ended,
    };
    let occurred_at = stated.unwrap_or(ctx.received_at);
    let leg = LegSnapshot {
        id: Some(call_id.clone()),
        is_first: None,
        from: from.clone(),
        to: to.clone(),
        result: None,
    };
    let (kind, details) = match hook.state {
        State::Ringing => (EventKind::LegRinging, leg_details(direction, leg)),
        State::Answered => (EventKind::LegAnswered, leg_details(direction, leg)),
        State::Hangup => {
            let result = result_of(hook.status.as_deref(), hook.billsec);
            (
                EventKind::LegEnded,
                leg_details(direction, LegSnapshot { result, ..leg }),
            )
        }
        // The PBX's own records of the call: facts about it, folded into the hub's record.
        State::Missed | State::Cdr | State::CdrAutocall => {
            match hook.state {
                State::CdrAutocall => {
                    vendor.insert("autocall".into(), Value::Bool(true));
                }
                State::Missed => {
                    vendor.insert("missed".into(), Value::Bool(true));
                }
                _ => {}
            }
            (
                EventKind::SourceCdr,
                Details::CallLog(CallLogFacts {
                    direction,
                    from,
                    to,
                }),
            )
        }
    };
    let source_key = content_key("tel4vn", item);
    let mut facts = vec![Fact {
        time_estimated: false,
        source_key: source_key.clone(),
        kind,
        occurred_at,
        call_id: Some(call_id.clone()),
        leg_id: Some(call_id.clone()),
        agent_id: None,
        details,
        vendor,
        raw: raw_json(item),
    }];
    facts[0].time_estimated = stated.is_none();
    // A recording URL is a recording, whichever hook carries it (documented on `cdr`, sent on
    // `hangup` too).
    if let (State::Cdr | State::CdrAutocall | State::Hangup, Some(url)) = (
        hook.state,
        hook.recording_url.filter(|u| !u.trim().is_empty()),
    ) {
        facts.push(Fact {
            time_estimated: stated.is_none(),
            source_key: format!("{source_key}:recording"),
            kind: EventKind::RecordingReady,
            occurred_at,
            call_id: Some(call_id.clone()),
            leg_id: (hook.state == State::Hangup).then(|| call_id.clone()),
            agent_id: None,
            details: Details::Recording(RecordingFacts {
                recording_id: None,
                subject: Some("call".into()),
                size_bytes: None,
                duration_ms: None,
                url: Some(url),
            }),
            vendor: Map::new(),
            raw: raw_json(item),
        });
    }
    Ok(facts)
}

fn leg_details(direction: Option<Direction>, leg: LegSnapshot) -> Details {
    Details::Leg(Box::new(LegFacts {
        direction,
        leg,
        first_leg: None,
        parent_leg: None,
        hangup: None,
    }))
}
