//! Phone.com-style tags, derived from an event's content whatever its dialect.
//!
//! Subscriptions select events by these tags (all tags of one subscription must be present),
//! so they are computed here, once, from canonical facts; a sender's own tags (Phone.com's)
//! are kept beside them only where the hub has no reason to dispute them.

use crate::event::{Details, Direction, EventKind, Fact};
use crate::party::{Party, PartyKind};

/// Every tag the hub can put on an event: Phone.com's own and the hub's additions.
pub const KNOWN: &[&str] = &[
    "call",
    "new-call",
    "connecting-call",
    "connected-call",
    "completed-call",
    "first-leg",
    "not-first-leg",
    "inbound",
    "outbound",
    "from-did",
    "to-did",
    "from-extension",
    "to-extension",
    "call-log",
    "recording",
    "call-recording",
    "message",
    "sms-message",
    "mms-message",
    "*ms-message",
    "api-error",
    "api-error-trusted",
    "held-call",
    "retrieved-call",
    "dtmf",
    "transferred-call",
    "conference-call",
    "missed-call",
    "failed-call",
    "agent-state",
    "listener-callback",
    "deactivated-listener-callback",
    // Phone.com's planned ones: the hub derives none of them, but keeps a sender's.
    "received-message",
    "sent-message",
    "delivered-message",
    "fax",
    "voicemail-recording",
    "voicemail-transcript",
    "deleted-listener-callback",
];

/// Tags of which an event has at most one: where the hub derived one, a sender's other is
/// disputed.
const EXCLUSIVE: &[&[&str]] = &[
    &["inbound", "outbound"],
    &["first-leg", "not-first-leg"],
    &[
        "new-call",
        "connecting-call",
        "connected-call",
        "completed-call",
    ],
    &["from-did", "from-extension"],
    &["to-did", "to-extension"],
    &["sms-message", "mms-message"],
];

/// What an event is about: the hub decides it from the event's content alone.
const CATEGORIES: &[&str] = &[
    "call",
    "message",
    "recording",
    "call-recording",
    "call-log",
    "api-error",
    "api-error-trusted",
    "listener-callback",
    "deactivated-listener-callback",
    "deleted-listener-callback",
    "agent-state",
    "missed-call",
];

/// A sender's tag the hub keeps beside its own: one of the vocabulary, not a category (those
/// are the hub's to say), and not contradicting a tag the hub derived.
fn undisputed(tag: &str, derived: &[&str]) -> bool {
    is_known(tag)
        && !CATEGORIES.contains(&tag)
        && !derived.contains(&tag)
        && !EXCLUSIVE
            .iter()
            .any(|group| group.contains(&tag) && derived.iter().any(|d| group.contains(d)))
}

/// True when `tag` is one the hub ever puts on an event.
pub fn is_known(tag: &str) -> bool {
    KNOWN.contains(&tag)
}

fn direction_tag(direction: Option<Direction>, tags: &mut Vec<&'static str>) {
    match direction {
        Some(Direction::Inbound) => tags.push("inbound"),
        Some(Direction::Outbound) => tags.push("outbound"),
        Some(Direction::Internal) | None => {}
    }
}

fn party_tag(party: Option<&Party>, did: &'static str, ext: &'static str) -> Option<&'static str> {
    let party = party?;
    match party.kind {
        PartyKind::Number => Some(did),
        PartyKind::Extension | PartyKind::Device => Some(ext),
        _ => None,
    }
}

/// The tags of a fact, in a stable order.
pub fn derive(fact: &Fact) -> Vec<String> {
    let tags = of_content(fact);
    let mut out: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    // The sender's own tags the hub has no reason to dispute (a Phone.com sender's, kept in
    // `vendor.tags` by its decoder): `received-message`, or a direction the content did not say.
    if let Some(serde_json::Value::Array(said)) = fact.vendor.get("tags") {
        for tag in said.iter().filter_map(|t| t.as_str()) {
            if undisputed(tag, &tags) && !out.iter().any(|t| t == tag) {
                out.push(tag.to_owned());
            }
        }
    }
    out
}

/// A tag's place in the vocabulary ([`KNOWN`], fewer than 64), for a set of tags as bits.
pub fn place_of(tag: &str) -> Option<usize> {
    // A match (by length, then bytes) rather than a walk of the list: every Phone.com event
    // comes with its sender's tags.
    Some(match tag {
        "call" => 0,
        "new-call" => 1,
        "connecting-call" => 2,
        "connected-call" => 3,
        "completed-call" => 4,
        "first-leg" => 5,
        "not-first-leg" => 6,
        "inbound" => 7,
        "outbound" => 8,
        "from-did" => 9,
        "to-did" => 10,
        "from-extension" => 11,
        "to-extension" => 12,
        "call-log" => 13,
        "recording" => 14,
        "call-recording" => 15,
        "message" => 16,
        "sms-message" => 17,
        "mms-message" => 18,
        "*ms-message" => 19,
        "api-error" => 20,
        "api-error-trusted" => 21,
        "held-call" => 22,
        "retrieved-call" => 23,
        "dtmf" => 24,
        "transferred-call" => 25,
        "conference-call" => 26,
        "missed-call" => 27,
        "failed-call" => 28,
        "agent-state" => 29,
        "listener-callback" => 30,
        "deactivated-listener-callback" => 31,
        "received-message" => 32,
        "sent-message" => 33,
        "delivered-message" => 34,
        "fax" => 35,
        "voicemail-recording" => 36,
        "voicemail-transcript" => 37,
        "deleted-listener-callback" => 38,
        _ => return None,
    })
}

/// Of the tags a sender wrote (the set of their [places](place_of)), those the hub keeps
/// beside its own (see [`derive`]): what a decoder keeps of them, so an event whose sender
/// wrote what the hub derives keeps nothing.
pub fn senders_own(fact: &Fact, said: u64) -> Vec<String> {
    let tags = of_content(fact);
    (0..KNOWN.len())
        .filter(|i| said & (1 << i) != 0)
        .map(|i| KNOWN[i])
        .filter(|tag| undisputed(tag, &tags))
        .map(str::to_owned)
        .collect()
}

/// The tags of an event's content alone.
fn of_content(fact: &Fact) -> Vec<&'static str> {
    let mut tags: Vec<&'static str> = Vec::with_capacity(8);
    match &fact.details {
        Details::Leg(leg) => {
            tags.push("call");
            match fact.kind {
                EventKind::LegCreated => tags.push("new-call"),
                EventKind::LegRinging => tags.push("connecting-call"),
                EventKind::LegAnswered => tags.push("connected-call"),
                EventKind::LegEnded => tags.push("completed-call"),
                EventKind::LegHeld => tags.push("held-call"),
                EventKind::LegRetrieved => tags.push("retrieved-call"),
                _ => {}
            }
            match leg.leg.is_first {
                Some(true) => tags.push("first-leg"),
                Some(false) => tags.push("not-first-leg"),
                None => {}
            }
            if fact.kind == EventKind::LegEnded
                && leg.leg.result == Some(crate::event::LegResult::Failed)
            {
                tags.push("failed-call");
            }
            direction_tag(leg.direction, &mut tags);
            tags.extend(party_tag(
                leg.leg.from.as_ref(),
                "from-did",
                "from-extension",
            ));
            tags.extend(party_tag(leg.leg.to.as_ref(), "to-did", "to-extension"));
        }
        Details::Recording(rec) => {
            tags.push("recording");
            if rec.subject.as_deref().unwrap_or("call") == "call" {
                tags.push("call-recording");
            }
        }
        Details::Message(msg) => {
            tags.push("message");
            match msg.channel.as_deref() {
                Some("sms") => tags.extend(["sms-message", "*ms-message"]),
                Some("mms") => tags.extend(["mms-message", "*ms-message"]),
                _ => {}
            }
            direction_tag(msg.direction, &mut tags);
        }
        Details::CallLog(log) => {
            match fact.kind {
                EventKind::CallMissed => tags.extend(["call", "missed-call"]),
                // A source's own record is a fact of the call; the hub's call log is the one
                // a `call-log` subscriber gets.
                EventKind::SourceCdr => tags.push("call"),
                _ => tags.push("call-log"),
            }
            direction_tag(log.direction, &mut tags);
            tags.extend(party_tag(log.from.as_ref(), "from-did", "from-extension"));
            tags.extend(party_tag(log.to.as_ref(), "to-did", "to-extension"));
        }
        Details::ApiError(err) => {
            tags.push("api-error");
            if !matches!(err.status, Some(401)) {
                tags.push("api-error-trusted");
            }
        }
        Details::Notice(_) => tags.extend(["listener-callback", "deactivated-listener-callback"]),
        Details::Dtmf(_) => tags.extend(["call", "dtmf"]),
        Details::Agent(_) => tags.push("agent-state"),
        Details::Transfer(t) => {
            tags.push("call");
            tags.push(if fact.kind == EventKind::Conferenced {
                "conference-call"
            } else {
                "transferred-call"
            });
            tags.extend(party_tag(t.by.as_ref(), "from-did", "from-extension"));
            tags.extend(party_tag(t.to.as_ref(), "to-did", "to-extension"));
        }
        Details::None => {
            if fact.kind.is_call() {
                tags.push("call");
            }
            match fact.kind {
                EventKind::Dtmf => tags.push("dtmf"),
                EventKind::Transferred => tags.push("transferred-call"),
                EventKind::Conferenced => tags.push("conference-call"),
                EventKind::CallMissed => tags.push("missed-call"),
                EventKind::AgentState => tags.push("agent-state"),
                _ => {}
            }
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LegFacts, LegSnapshot};
    use serde_json::value::RawValue;

    fn leg_fact(kind: EventKind, is_first: bool, from: PartyKind, to: PartyKind) -> Fact {
        Fact {
            time_estimated: false,
            source_key: "k".into(),
            kind,
            occurred_at: jiff::Timestamp::UNIX_EPOCH,
            call_id: None,
            leg_id: None,
            agent_id: None,
            details: Details::Leg(Box::new(LegFacts {
                direction: Some(Direction::Inbound),
                leg: LegSnapshot {
                    id: None,
                    is_first: Some(is_first),
                    from: Some(Party::new(from)),
                    to: Some(Party::new(to)),
                    result: None,
                },
                first_leg: None,
                parent_leg: None,
                hangup: None,
            })),
            vendor: Default::default(),
            raw: RawValue::from_string("{}".into()).unwrap(),
        }
    }

    #[test]
    fn a_completed_second_leg_to_a_device_has_the_reference_tags() {
        let fact = leg_fact(
            EventKind::LegEnded,
            false,
            PartyKind::Number,
            PartyKind::Device,
        );
        assert_eq!(
            derive(&fact),
            [
                "call",
                "completed-call",
                "not-first-leg",
                "inbound",
                "from-did",
                "to-extension"
            ]
        );
    }

    #[test]
    fn a_new_first_leg_between_numbers() {
        let fact = leg_fact(
            EventKind::LegCreated,
            true,
            PartyKind::Number,
            PartyKind::Number,
        );
        assert_eq!(
            derive(&fact),
            [
                "call",
                "new-call",
                "first-leg",
                "inbound",
                "from-did",
                "to-did"
            ]
        );
    }

    #[test]
    fn every_derived_tag_is_known() {
        let fact = leg_fact(
            EventKind::LegAnswered,
            true,
            PartyKind::Extension,
            PartyKind::Number,
        );
        assert!(derive(&fact).iter().all(|t| is_known(t)));
    }
}

#[cfg(test)]
mod vocabulary {
    #[test]
    fn a_set_of_tags_fits_in_64_bits_and_each_has_its_place() {
        assert!(super::KNOWN.len() <= 64);
        for (i, tag) in super::KNOWN.iter().enumerate() {
            assert_eq!(super::place_of(tag), Some(i), "{tag}");
        }
        assert_eq!(super::place_of("whatever"), None);
    }
}
