//! A call's fold kept between events gives the record of all its events, whatever order they
//! arrive in: an event is applied to it when `follows` says so, and otherwise the fold is made
//! again from all the events, as the store does.

mod support;

use support::number;
use switchboard_engine::calls::CallFold;
use switchboard_model::{Direction, Event, EventKind, LegFacts, LegResult, LegSnapshot};

fn leg_event(
    leg: &str,
    kind: EventKind,
    at_s: i64,
    direction: Option<Direction>,
    result: Option<LegResult>,
) -> Event {
    let facts = LegFacts {
        direction,
        leg: LegSnapshot {
            id: Some(leg.into()),
            is_first: Some(leg == "call-1"),
            from: Some(number("+15550001")),
            to: Some(number(&format!("+1555{}", leg.len()))),
            result,
        },
        first_leg: None,
        parent_leg: None,
        hangup: None,
    };
    support::leg_event("call-1", kind, at_s, facts)
}

/// A ring group whose moment of answer is sent as one leg's answer, another's end, then the
/// first leg's answer; and a rollover whose second leg starts as the first ringing one ends.
fn calls() -> Vec<Vec<Event>> {
    use EventKind::*;
    let inbound = Some(Direction::Inbound);
    let ring_group = vec![
        leg_event("call-1", LegCreated, 0, inbound, None),
        leg_event("call-1", LegRinging, 0, inbound, None),
        leg_event("call-1-a", LegRinging, 1, inbound, None),
        leg_event("call-1-b", LegRinging, 1, inbound, None),
        leg_event("call-1-b", LegAnswered, 6, inbound, None),
        leg_event("call-1-a", LegEnded, 6, inbound, Some(LegResult::Cancelled)),
        leg_event("call-1", LegAnswered, 6, inbound, None),
        leg_event("call-1-b", LegEnded, 40, inbound, Some(LegResult::Answered)),
        leg_event("call-1", LegEnded, 40, inbound, Some(LegResult::Answered)),
    ];
    let rollover = vec![
        leg_event("call-1", LegCreated, 0, inbound, None),
        leg_event("call-1", LegRinging, 0, inbound, None),
        leg_event("call-1-a", LegCreated, 1, inbound, None),
        leg_event("call-1-a", LegRinging, 1, inbound, None),
        leg_event(
            "call-1-a",
            LegEnded,
            21,
            inbound,
            Some(LegResult::Cancelled),
        ),
        leg_event("call-1-b", LegCreated, 21, inbound, None),
        leg_event("call-1-b", LegRinging, 22, inbound, None),
        leg_event("call-1-b", LegAnswered, 25, inbound, None),
        leg_event("call-1", LegAnswered, 25, inbound, None),
        leg_event("call-1-b", LegEnded, 85, inbound, Some(LegResult::Answered)),
        leg_event("call-1", LegEnded, 86, inbound, Some(LegResult::Answered)),
    ];
    // Two legs appear at the same moment, and one leg's events share a moment: the order they
    // are folded in shows (the legs' order, a leg's state), so these must be folded again.
    let same_moment = vec![
        leg_event("call-1", LegCreated, 0, inbound, None),
        leg_event("call-1-a", LegRinging, 3, inbound, None),
        leg_event("call-1-b", LegRinging, 3, Some(Direction::Outbound), None),
        leg_event("call-1-a", LegAnswered, 3, inbound, None),
        leg_event("call-1-a", LegEnded, 3, inbound, Some(LegResult::Answered)),
        leg_event("call-1", LegEnded, 9, inbound, None),
    ];
    vec![ring_group, rollover, same_moment]
}

/// Folds `events` as they arrive; returns the fold and how many arrivals were applied to it.
fn fold_as_arriving(events: &[&Event]) -> (CallFold, usize) {
    let mut fold = CallFold::default();
    let mut applied = 0;
    for (i, e) in events.iter().enumerate() {
        if fold.follows(e) {
            fold.apply(e);
            applied += 1;
        } else {
            let so_far: Vec<Event> = events[..=i].iter().map(|e| (*e).clone()).collect();
            fold = CallFold::of(&so_far);
        }
        let so_far: Vec<Event> = events[..=i].iter().map(|e| (*e).clone()).collect();
        assert_eq!(
            fold.finish(),
            CallFold::of(&so_far).finish(),
            "after {} of {} events",
            i + 1,
            events.len()
        );
    }
    (fold, applied)
}

#[test]
fn events_sent_in_a_sources_own_order_at_one_moment_are_applied_without_folding_again() {
    for events in &calls()[..2] {
        let in_order: Vec<&Event> = events.iter().collect();
        let (_, applied) = fold_as_arriving(&in_order);
        assert_eq!(applied, events.len(), "every event applied as it came");
    }
}

#[test]
fn the_record_is_the_same_whatever_order_the_events_arrive_in() {
    // Every rotation, its reverse, and a shuffle of each call's events.
    for events in calls() {
        let n = events.len();
        let mut orders: Vec<Vec<usize>> = Vec::new();
        for start in 0..n {
            let rotation: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
            orders.push(rotation.iter().rev().copied().collect());
            orders.push(rotation);
        }
        let mut state = 7u64;
        for _ in 0..50 {
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                order.swap(i, (state >> 33) as usize % (i + 1));
            }
            orders.push(order);
        }
        for order in orders {
            let arriving: Vec<&Event> = order.iter().map(|&i| &events[i]).collect();
            fold_as_arriving(&arriving);
        }
    }
}

#[test]
fn events_whose_order_at_one_moment_shows_are_not_applied_out_of_order() {
    let events = &calls()[2];
    // Leg b appears after leg a at the same moment, and a's end arrives before its answer.
    let order = [0, 2, 1, 4, 3, 5];
    let arriving: Vec<&Event> = order.iter().map(|&i| &events[i]).collect();
    let (_, applied) = fold_as_arriving(&arriving);
    assert!(applied < events.len(), "some arrivals were folded again");
}

#[test]
fn new_legs_of_one_moment_are_applied_in_any_order_without_folding_again() {
    // A PBX ringing fifty devices at once, whose ringing events come in reverse order of
    // their ids: each new leg takes its place among the legs by its times, not by arrival,
    // so none of them makes the call be folded again (which costs the whole call).
    let inbound = Some(Direction::Inbound);
    let mut events = vec![leg_event("call-1", EventKind::LegCreated, 0, inbound, None)];
    for i in (0..50).rev() {
        events.push(leg_event(
            &format!("call-1-{i:02}"),
            EventKind::LegRinging,
            3,
            inbound,
            None,
        ));
    }
    let arriving: Vec<&Event> = events.iter().collect();
    let (fold, applied) = fold_as_arriving(&arriving);
    assert_eq!(applied, events.len());
    let legs: Vec<String> = fold.finish().legs.iter().map(|l| l.id.clone()).collect();
    assert_eq!(legs[0], "call-1");
    assert_eq!(legs[1], "call-1-00");
    assert_eq!(legs[50], "call-1-49");
}
