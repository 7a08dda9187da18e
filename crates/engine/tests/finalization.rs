//! The rules every store applies when a call ends: when it is due, whether a call log goes
//! out, and what it says.

mod support;

use jiff::Timestamp;
use support::number;
use switchboard_engine::calls::{build, CallState};
use switchboard_engine::finalization::{finalize, search_words, settle, Said};
use switchboard_model::{AccountId, Direction, Event, EventKind, LegFacts, LegResult, LegSnapshot};

fn leg(kind: EventKind, at_s: i64, result: Option<LegResult>) -> Event {
    let facts = LegFacts {
        direction: Some(Direction::Inbound),
        leg: LegSnapshot {
            id: Some("leg-1".into()),
            is_first: Some(true),
            from: Some(number("+15550001")),
            to: Some(number("+15550002")),
            result,
        },
        first_leg: None,
        parent_leg: None,
        hangup: None,
    };
    support::leg_event("call-1", kind, at_s, facts)
}

/// A call that rang and was not answered.
fn missed() -> Vec<Event> {
    vec![
        leg(EventKind::LegCreated, 0, None),
        leg(EventKind::LegRinging, 0, None),
        leg(EventKind::LegEnded, 20, Some(LegResult::NoAnswer)),
    ]
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

#[test]
fn an_open_call_is_due_for_nothing() {
    let rec = build(&missed()[..2]);
    assert_eq!(
        settle(&rec, None, None, 1_000, 2_000),
        (CallState::Ringing, None)
    );
}

#[test]
fn an_ended_call_is_due_after_the_grace_window_from_when_it_was_first_seen_ended() {
    let rec = build(&missed());
    assert_eq!(
        settle(&rec, None, None, 1_000, 2_000),
        (CallState::Ended, Some(3_000))
    );
    // A later event of the ended call does not push its finalization back.
    assert_eq!(
        settle(&rec, None, Some(3_000), 2_500, 2_000),
        (CallState::Ended, Some(3_000))
    );
}

#[test]
fn a_call_whose_call_log_says_its_record_stays_finalized_and_a_changed_one_is_due_again() {
    let rec = build(&missed());
    let said = rec.digest();
    assert_eq!(
        settle(&rec, Some(&said), None, 1_000, 2_000),
        (CallState::Finalized, None)
    );
    assert_eq!(
        settle(&rec, Some("other"), None, 1_000, 2_000),
        (CallState::Ended, Some(3_000))
    );
}

#[test]
fn a_missed_call_emits_its_call_log_and_a_missed_call_once() {
    let rec = build(&missed());
    assert!(rec.missed);
    let done = finalize(
        AccountId(7),
        "c-1",
        rec,
        &Said::default(),
        false,
        true,
        now(),
        uuid::Uuid::now_v7,
    );
    assert_eq!(done.revision, 1);
    assert_eq!(done.record.state, CallState::Finalized);
    let kinds: Vec<EventKind> = done.events.iter().map(|e| e.fact.kind).collect();
    assert_eq!(kinds, vec![EventKind::CallLog, EventKind::CallMissed]);
    let log = &done.events[0];
    assert_eq!(log.account, AccountId(7));
    assert_eq!(log.fact.source_key, "call-log:c-1:1");
    assert_eq!(log.fact.vendor["call"]["revision"], 1);
    assert_eq!(log.fact.vendor["billsec"], 0);
    assert_eq!(log.fact.vendor["duration"], 20);
    assert_eq!(done.events[1].fact.source_key, "call-missed:c-1");
    assert!(done.events.iter().all(|e| !e.silent));

    // Said already: nothing new.
    let said = Said {
        revision: 1,
        emitted: Some(done.digest.clone()),
        missed_emitted: true,
    };
    let again = finalize(
        AccountId(7),
        "c-1",
        build(&missed()),
        &said,
        false,
        true,
        now(),
        uuid::Uuid::now_v7,
    );
    assert!(again.events.is_empty());
    assert_eq!(again.revision, 1);

    // A changed record: a new revision of the call log, no second missed call.
    let said = Said {
        emitted: Some("older".into()),
        ..said
    };
    let changed = finalize(
        AccountId(7),
        "c-1",
        build(&missed()),
        &said,
        false,
        false,
        now(),
        uuid::Uuid::now_v7,
    );
    let kinds: Vec<EventKind> = changed.events.iter().map(|e| e.fact.kind).collect();
    assert_eq!(kinds, vec![EventKind::CallLog]);
    assert_eq!(changed.revision, 2);
    assert_eq!(changed.events[0].fact.source_key, "call-log:c-1:2");
    // Only imported history made it: stored, not to be delivered.
    assert!(changed.events[0].silent);
}

#[test]
fn a_call_gone_quiet_has_its_end_inferred() {
    let rec = build(&missed()[..2]);
    let done = finalize(
        AccountId(1),
        "c-2",
        rec,
        &Said::default(),
        true,
        true,
        now(),
        uuid::Uuid::now_v7,
    );
    assert!(done.record.inferred_end);
    assert_eq!(done.record.state, CallState::Finalized);
    assert_eq!(done.events[0].fact.kind, EventKind::CallLog);
}

#[test]
fn search_words_are_whole_and_each_once() {
    let rec = build(&missed());
    let words = search_words(&rec);
    assert!(words.starts_with(' ') && words.ends_with(' '));
    assert!(words.contains(" +15550001 "), "{words}");
    assert_eq!(words.matches(" +15550002 ").count(), 1, "{words}");
}
