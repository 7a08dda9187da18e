//! Canonical events → Workonflow call events.

use crate::Recipient;
use serde_json::{json, Map, Value};
use switchboard_model::{Details, Event, EventKind, LegResult, Party};

/// A member's `userId` and `phone`, always strings: "" where the party does not say.
fn member(out: &mut Map<String, Value>, p: Option<&Party>) {
    let user = p.and_then(|p| p.id.clone().or_else(|| p.extension.clone()));
    let phone = p.and_then(|p| p.number.clone().or_else(|| p.extension.clone()));
    out.insert("userId".into(), json!(user.unwrap_or_default()));
    out.insert("phone".into(), json!(phone.unwrap_or_default()));
}

/// Encodes an event as a Workonflow call event, if Workonflow has one for it.
pub fn encode(event: &Event, to: &Recipient) -> Option<Vec<u8>> {
    let fact = &event.fact;
    let v = &fact.vendor;
    let leg = match &fact.details {
        Details::Leg(l) => Some(l.as_ref()),
        _ => None,
    };
    let first = leg.is_some_and(|l| l.leg.is_first == Some(true));
    let name = match fact.kind {
        EventKind::LegCreated if first => "Call.created",
        // A member's leg starts ringing when invited; there is no separate "created".
        EventKind::LegRinging => "Call.Member.invited",
        EventKind::LegAnswered => "Call.Member.Invite.ended",
        EventKind::LegEnded => match leg.and_then(|l| l.leg.result) {
            Some(
                LegResult::NoAnswer | LegResult::Busy | LegResult::Rejected | LegResult::Cancelled,
            ) => "Call.Member.Invite.ended",
            _ => "Call.Member.leaved",
        },
        EventKind::LegHeld => "Call.Member.held",
        EventKind::LegRetrieved => "Call.Member.unheld",
        EventKind::Dtmf => "Call.Member.dtmf",
        EventKind::CallEnded => "Call.ended",
        _ => return None,
    };
    let call = fact.call_id.clone()?;
    let mut out = Map::new();
    // A team id is 24 hex characters: the account's number, written so, where the source
    // was no Workonflow team.
    out.insert(
        "teamId".into(),
        v.get("teamId")
            .cloned()
            .unwrap_or_else(|| json!(format!("{:024x}", to.account.0))),
    );
    out.insert("eventType".into(), json!(name));
    out.insert(
        "streamId".into(),
        v.get("streamId").cloned().unwrap_or_else(|| json!(call)),
    );
    out.insert(
        "threadId".into(),
        v.get("threadId").cloned().unwrap_or_else(|| json!(call)),
    );
    match name {
        "Call.created" => {
            let l = leg?;
            let id = |p: Option<&Party>| {
                p.and_then(|p| p.id.clone().or_else(|| p.number.clone()))
                    .unwrap_or_default()
            };
            out.insert("originateUserId".into(), json!(id(l.leg.from.as_ref())));
            out.insert("destinationId".into(), json!(id(l.leg.to.as_ref())));
            out.insert(
                "type".into(),
                v.get("type").cloned().unwrap_or_else(|| json!("stream")),
            );
            out.insert("createdAt".into(), json!(fact.occurred_at.as_millisecond()));
        }
        "Call.ended" => {}
        "Call.Member.dtmf" => {
            if let Details::Dtmf(d) = &fact.details {
                member(&mut out, d.party.as_ref());
                out.insert("dtmfNumber".into(), json!(d.digits));
            }
        }
        _ => {
            member(&mut out, leg.and_then(|l| l.leg.to.as_ref()));
            if name == "Call.Member.Invite.ended" {
                out.insert(
                    "answered".into(),
                    json!(fact.kind == EventKind::LegAnswered),
                );
            }
        }
    }
    Some(serde_json::to_vec(&Value::Object(out)).expect("JSON"))
}
