//! Shared test tools for the dialects: golden files of seed examples and the round-trip
//! property (canonical → encode → decode keeps everything the dialect can express).

use crate::{decode, encode, parse_body, DecodeContext, Recipient};
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::Value;
use std::path::PathBuf;
use switchboard_model::{
    tags, AccountId, AgentFacts, AgentState, CallLogFacts, Details, Dialect, Direction, DtmfFacts,
    Event, EventKind, Fact, LegFacts, LegResult, LegSnapshot, Party, PartyKind, RecordingFacts,
    Source, TransferFacts,
};

/// Seeds are old: decode them as if received when they were sent, accepting any time.
pub fn seed_ctx(tz: &str) -> DecodeContext {
    DecodeContext {
        received_at: Timestamp::from_second(1_600_000_000).unwrap(),
        tz: jiff::tz::TimeZone::get(tz).unwrap(),
        max_ahead: None,
    }
}

fn fixture_dir(dialect: Dialect) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(dialect.as_str())
        .join("fixtures")
}

/// Decodes every seed fixture of a dialect and compares the canonical result (without the raw
/// payload) with its `.golden.json`. `UPDATE_GOLDEN=1` writes the golden files instead.
pub fn check_goldens(dialect: Dialect, tz: &str) -> usize {
    let dir = fixture_dir(dialect);
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("seed") || name.ends_with(".golden.json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let items = parse_body(dialect, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut facts = Vec::new();
        for item in items.iter() {
            facts.extend(
                decode(dialect, item, &seed_ctx(tz)).unwrap_or_else(|e| panic!("{name}: {e}")),
            );
        }
        let shown: Vec<Value> = facts
            .iter()
            .map(|f| {
                let mut v = serde_json::to_value(f).unwrap();
                v.as_object_mut().unwrap().remove("raw");
                v["tags"] = serde_json::to_value(tags::derive(f)).unwrap();
                v
            })
            .collect();
        let text = serde_json::to_string_pretty(&shown).unwrap() + "\n";
        let golden = dir.join(format!("{}.golden.json", name.rsplit_once('.').unwrap().0));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &text).unwrap();
        } else {
            let want = std::fs::read_to_string(&golden)
                .unwrap_or_else(|_| panic!("no golden file for {name}: run with UPDATE_GOLDEN=1"));
            assert_eq!(
                text,
                want,
                "{name} decodes differently from {}",
                golden.display()
            );
        }
        seen += 1;
    }
    seen
}

fn arb_party(kind: PartyKind) -> impl Strategy<Value = Party> {
    (1000u32..9999, 100_000u32..999_999).prop_map(move |(ext, n)| {
        let mut p = Party::new(kind);
        match kind {
            PartyKind::Number => {
                let number = format!("+1555{n}");
                p.id = Some(number.clone());
                p.number = Some(number);
            }
            _ => {
                p.id = Some(ext.to_string());
                p.extension = Some(ext.to_string());
            }
        }
        p
    })
}

/// Canonical events of the given kinds, with the parts every dialect can carry.
pub fn arb_event(kinds: Vec<EventKind>) -> impl Strategy<Value = Event> {
    (
        proptest::sample::select(kinds),
        "[a-f0-9]{8}",
        "[a-f0-9]{6}",
        arb_party(PartyKind::Number),
        arb_party(PartyKind::Extension),
        any::<bool>(),
        0i64..86_400_000,
        proptest::sample::select(vec![
            None,
            Some(LegResult::Answered),
            Some(LegResult::Busy),
            Some(LegResult::NoAnswer),
            Some(LegResult::Failed),
        ]),
        proptest::sample::select(vec![
            AgentState::Ready,
            AgentState::NotReady,
            AgentState::AfterCallWork,
            AgentState::LoggedOut,
            AgentState::Allocated,
        ]),
        "[0-9*#]{1,3}",
    )
        .prop_map(
            |(kind, call, leg, number, ext, inbound, ms, result, agent_state, digits)| {
                let (from, to) = if inbound {
                    (number.clone(), ext.clone())
                } else {
                    (ext.clone(), number.clone())
                };
                let direction = Some(if inbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                });
                let leg_id = format!("{call}-{leg}");
                let details = match kind {
                    EventKind::CallLog | EventKind::CallMissed => Details::CallLog(CallLogFacts {
                        direction,
                        from: Some(from),
                        to: Some(to),
                    }),
                    EventKind::RecordingStarted
                    | EventKind::RecordingStopped
                    | EventKind::RecordingReady => Details::Recording(RecordingFacts {
                        recording_id: Some(format!("rec-{leg}")),
                        subject: Some("call".into()),
                        size_bytes: None,
                        duration_ms: None,
                        url: Some(format!("https://recordings.example/{leg}.wav")),
                    }),
                    EventKind::AgentState => Details::Agent(AgentFacts {
                        agent_id: format!("50{}", &leg[..2]),
                        device: Some(format!("80{}", &leg[..2])),
                        state: agent_state,
                        logged_on: false,
                    }),
                    EventKind::Dtmf => Details::Dtmf(DtmfFacts {
                        digits,
                        party: Some(to),
                    }),
                    EventKind::Transferred | EventKind::Conferenced => {
                        Details::Transfer(TransferFacts {
                            old_calls: vec![format!("{call}-old")],
                            new_call: Some(call.clone()),
                            by: Some(from),
                            to: Some(to),
                        })
                    }
                    EventKind::CallEnded => Details::None,
                    _ => Details::Leg(Box::new(LegFacts {
                        direction,
                        leg: LegSnapshot {
                            id: Some(leg_id.clone()),
                            is_first: Some(false),
                            from: Some(from),
                            to: Some(to),
                            result: if kind == EventKind::LegEnded {
                                result
                            } else {
                                None
                            },
                        },
                        first_leg: None,
                        parent_leg: None,
                        hangup: None,
                    })),
                };
                let fact = Fact {
                    time_estimated: false,
                    source_key: format!("k-{call}-{leg}"),
                    kind,
                    occurred_at: Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap(),
                    call_id: Some(call),
                    leg_id: if matches!(
                        kind,
                        EventKind::AgentState
                            | EventKind::CallEnded
                            | EventKind::Transferred
                            | EventKind::Conferenced
                    ) {
                        None
                    } else {
                        Some(leg_id)
                    },
                    agent_id: None,
                    details,
                    vendor: Default::default(),
                    raw: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
                };
                Event {
                    silent: false,
                    id: uuid::Uuid::now_v7(),
                    account: AccountId(7),
                    source: Source {
                        dialect: Dialect::Canonical,
                        name: None,
                    },
                    received_at: fact.occurred_at,
                    tags: tags::derive(&fact),
                    fact,
                }
            },
        )
}

/// The round-trip property: once encoded, decoding and encoding again changes nothing, and
/// the kind survives. Whatever the dialect expresses therefore survives its decoder.
pub fn round_trips(dialect: Dialect, event: &Event) -> Result<(), TestCaseError> {
    let to = Recipient {
        listener_id: 1,
        account: AccountId(7),
        ..Recipient::default()
    };
    let Some(first) = encode(dialect, event, &to) else {
        return Ok(());
    };
    let item = std::str::from_utf8(&first).unwrap();
    let ctx = DecodeContext {
        received_at: event.fact.occurred_at,
        tz: jiff::tz::TimeZone::UTC,
        max_ahead: None,
    };
    let facts = decode(dialect, item, &ctx)
        .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&first))))?;
    let fact = facts.into_iter().next().unwrap();
    if matches!(event.fact.kind, EventKind::CallLog | EventKind::CallMissed) {
        // A call log sent in is its source's own record of the call, a fact the hub folds
        // into its record (and says in its own call log, not again as this one).
        prop_assert_eq!(fact.kind, EventKind::SourceCdr);
        return Ok(());
    }
    prop_assert_eq!(
        fact.kind,
        event.fact.kind,
        "{}",
        String::from_utf8_lossy(&first)
    );
    let again = Event {
        silent: false,
        tags: tags::derive(&fact),
        fact,
        ..event.clone()
    };
    let second = encode(dialect, &again, &to).expect("a decoded event encodes again");
    prop_assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
    Ok(())
}

/// Decodes `body` (one element) and returns the path of what was not understood, asserting it
/// was kept as one not-understood event with the ids `call_id` names.
pub fn not_understood(dialect: Dialect, body: &str, tz: &str, call_id: Option<&str>) -> String {
    let items = crate::parse_body(dialect, body.as_bytes()).expect(body);
    let facts = decode(dialect, &items[0], &seed_ctx(tz)).expect(body);
    assert_eq!(facts.len(), 1, "{body}");
    let fact = &facts[0];
    assert_eq!(fact.kind, EventKind::NotUnderstood, "{body}");
    assert_eq!(fact.call_id.as_deref(), call_id, "{body}");
    assert_eq!(fact.raw.get(), items[0].as_ref(), "kept as it came");
    assert!(fact.vendor["not_understood"]["reason"].is_string());
    fact.vendor["not_understood"]["path"]
        .as_str()
        .unwrap()
        .to_string()
}
