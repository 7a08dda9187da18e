//! Which call an event joins: the decision, made from what a store found for the event's ids.
//!
//! A store looks up each alias of an event ([`crate::calls::aliases_of`]), and, when the
//! event may begin a new call after the one its ids name ([`ended_call_window`]), when those
//! calls ended; [`decide`] says what follows: the call the event joins (or a new one), the
//! calls that merge into it, and the ids to add to it. Every store carries the decision out
//! the same way, whatever its locking or its SQL.

use crate::calls::names_its_call;
use switchboard_model::{Details, Dialect, Event, EventKind};

/// How long (ms) after the call its ids name ended an event may still be of that call; `None`
/// for ever. A first leg's creation begins a call, so it is of no call that had ended before
/// it; a Workonflow event names its stream or thread, which the next call there names again,
/// so one that comes more than a minute after the call ended is of the next call. (Any other
/// late event — a recording made ready, a PBX's CDR — is of the call it names.)
pub fn ended_call_window(event: &Event) -> Option<i64> {
    let opens = event.fact.kind == EventKind::LegCreated
        && matches!(&event.fact.details, Details::Leg(l) if l.leg.is_first == Some(true));
    if opens {
        Some(0)
    } else if event.source.dialect == Dialect::Workonflow {
        Some(60_000)
    } else {
        None
    }
}

/// A call one of the event's ids names, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCall {
    /// The hub's id of the call.
    pub id: String,
    /// When it ended (ms), if it has ended (or was finalized). Asked for only when
    /// [`ended_call_window`] gives a window; `None` otherwise.
    pub ended_at_ms: Option<i64>,
}

/// What joining an event to its call takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Join {
    /// The call the event joins; `None`: a new call, made for it.
    pub target: Option<String>,
    /// Calls the event's ids join to the target: each folds into it (its aliases and events
    /// move over, and it is deleted). The earliest id is the target, so the order in which
    /// a call's events arrive does not change which id survives.
    pub merges: Vec<String>,
    /// The event's ids no call has: added to the target.
    pub new_aliases: Vec<String>,
    /// Ids that named a call that had ended before the event: the target takes them over.
    pub taken_over: Vec<String>,
    /// The ended calls whose ids were taken over: they keep their events, lose those ids.
    pub left_behind: Vec<String>,
}

/// Decides the call an event joins. `named` holds each of the event's aliases (as
/// [`crate::calls::aliases_of`] gives them, in that order) with the call it names, if any.
pub fn decide(event: &Event, named: Vec<(String, Option<NamedCall>)>) -> Join {
    let mut named = named;
    let mut join = Join::default();
    // An event that happened after the call its ids name had ended (beyond what it may still
    // say of that call) begins a new call, which takes the ids over; the ended call keeps its
    // events. (Workonflow names calls by their stream or thread, which the next call uses.)
    if let Some(allowed) = ended_call_window(event) {
        let begins = event.fact.occurred_at.as_millisecond() - allowed;
        for (alias, call) in &mut named {
            if let Some(ended) = call
                .as_ref()
                .filter(|c| c.ended_at_ms.is_some_and(|e| e < begins))
            {
                if !join.left_behind.contains(&ended.id) {
                    join.left_behind.push(ended.id.clone());
                }
                join.taken_over.push(alias.clone());
                *call = None;
            }
        }
    }
    let mut found: Vec<String> = Vec::new();
    for (alias, call) in named {
        match call {
            Some(call) if !found.contains(&call.id) => found.push(call.id),
            Some(_) => {}
            None => join.new_aliases.push(alias),
        }
    }
    // Ids that may name only the place around the call join the call the first of them
    // names, and add nothing to it.
    if !found.is_empty() && !names_its_call(event) {
        found.truncate(1);
        join.new_aliases.clear();
    }
    join.taken_over.retain(|a| join.new_aliases.contains(a));
    join.new_aliases.retain(|a| !join.taken_over.contains(a));
    found.sort();
    let mut found = found.into_iter();
    join.target = found.next();
    join.merges = found.collect();
    join
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::aliases_of;
    use jiff::Timestamp;
    use switchboard_model::{AccountId, Fact, LegFacts, LegSnapshot, Source};

    fn event(dialect: Dialect, kind: EventKind, call: &str, at_ms: i64, first: bool) -> Event {
        let details = if matches!(kind, EventKind::LegCreated) {
            Details::Leg(Box::new(LegFacts {
                direction: None,
                leg: LegSnapshot {
                    id: None,
                    is_first: Some(first),
                    from: None,
                    to: None,
                    result: None,
                },
                first_leg: None,
                parent_leg: None,
                hangup: None,
            }))
        } else {
            Details::None
        };
        let fact = Fact {
            time_estimated: false,
            source_key: format!("{call}:{at_ms}"),
            kind,
            occurred_at: Timestamp::from_millisecond(at_ms).unwrap(),
            call_id: Some(call.into()),
            leg_id: None,
            agent_id: None,
            details,
            vendor: Default::default(),
            raw: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
        };
        let source = Source {
            dialect,
            name: None,
        };
        crate::stamp(
            AccountId(1),
            &source,
            Timestamp::UNIX_EPOCH,
            vec![fact],
            uuid::Uuid::nil,
        )
        .remove(0)
    }

    fn named(id: &str, ended: Option<i64>) -> Option<NamedCall> {
        Some(NamedCall {
            id: id.into(),
            ended_at_ms: ended,
        })
    }

    #[test]
    fn unknown_ids_make_a_new_call_with_them() {
        let e = event(
            Dialect::Phonecom,
            EventKind::LegAnswered,
            "c1",
            1_000,
            false,
        );
        let aliases = aliases_of(&e);
        let join = decide(&e, aliases.iter().map(|a| (a.clone(), None)).collect());
        assert_eq!(join.target, None);
        assert_eq!(join.new_aliases, aliases);
        assert!(join.merges.is_empty() && join.taken_over.is_empty());
    }

    #[test]
    fn ids_of_two_calls_merge_them_into_the_earliest_id() {
        let e = event(
            Dialect::Welljoint,
            EventKind::LegAnswered,
            "c1",
            1_000,
            false,
        );
        let join = decide(
            &e,
            vec![
                ("a".into(), named("0199-b", None)),
                ("b".into(), None),
                ("c".into(), named("0199-a", None)),
                ("d".into(), named("0199-b", None)),
            ],
        );
        assert_eq!(join.target.as_deref(), Some("0199-a"));
        assert_eq!(join.merges, vec!["0199-b".to_string()]);
        assert_eq!(join.new_aliases, vec!["b".to_string()]);
    }

    #[test]
    fn a_first_leg_after_the_call_ended_begins_a_new_call_taking_the_ids_over() {
        let e = event(Dialect::Phonecom, EventKind::LegCreated, "c1", 10_000, true);
        let join = decide(&e, vec![("phonecom:c1".into(), named("old", Some(9_000)))]);
        assert_eq!(join.target, None);
        assert_eq!(join.taken_over, vec!["phonecom:c1".to_string()]);
        assert!(join.new_aliases.is_empty());
        assert_eq!(join.left_behind, vec!["old".to_string()]);
        // The same event at the moment the call ended is still of it.
        let e = event(Dialect::Phonecom, EventKind::LegCreated, "c1", 9_000, true);
        let join = decide(&e, vec![("phonecom:c1".into(), named("old", Some(9_000)))]);
        assert_eq!(join.target.as_deref(), Some("old"));
        assert!(join.taken_over.is_empty() && join.left_behind.is_empty());
    }

    #[test]
    fn a_late_event_that_opens_nothing_joins_the_ended_call() {
        let e = event(Dialect::Phonecom, EventKind::LegEnded, "c1", 999_000, false);
        assert_eq!(ended_call_window(&e), None);
        let join = decide(&e, vec![("phonecom:c1".into(), named("old", Some(9_000)))]);
        assert_eq!(join.target.as_deref(), Some("old"));
    }

    #[test]
    fn a_workonflow_event_a_minute_after_the_call_is_of_the_next_call() {
        let e = event(
            Dialect::Workonflow,
            EventKind::LegEnded,
            "c1",
            70_001,
            false,
        );
        assert_eq!(ended_call_window(&e), Some(60_000));
        let join = decide(
            &e,
            vec![("workonflow:t".into(), named("old", Some(10_000)))],
        );
        assert_eq!(join.target, None);
        assert_eq!(join.taken_over, vec!["workonflow:t".to_string()]);
        let e = event(
            Dialect::Workonflow,
            EventKind::LegEnded,
            "c1",
            70_000,
            false,
        );
        let join = decide(
            &e,
            vec![("workonflow:t".into(), named("old", Some(10_000)))],
        );
        assert_eq!(join.target.as_deref(), Some("old"));
    }

    #[test]
    fn ids_that_may_name_the_place_join_the_first_call_found_and_add_nothing() {
        let e = event(Dialect::Workonflow, EventKind::LegEnded, "c1", 1_000, false);
        assert!(!names_its_call(&e));
        let join = decide(
            &e,
            vec![
                ("workonflow:thread".into(), named("0199-z", None)),
                ("workonflow:stream".into(), named("0199-a", None)),
            ],
        );
        assert_eq!(join.target.as_deref(), Some("0199-z"));
        assert!(join.merges.is_empty() && join.new_aliases.is_empty());
        let join = decide(
            &e,
            vec![
                ("workonflow:thread".into(), None),
                ("workonflow:stream".into(), named("0199-a", None)),
            ],
        );
        assert_eq!(join.target.as_deref(), Some("0199-a"));
        assert!(join.new_aliases.is_empty());
    }
}
