//! How a call's record says who hung up and why: each leg keeps what its ending events said
//! (the first word on each point stands), and the call takes its first leg's.

mod support;

use support::number;
use switchboard_engine::calls::{build, CallState};
use switchboard_model::{Direction, Event, EventKind, Hangup, LegFacts, LegSnapshot};

/// An event of `leg` of call `c-1`, `at_s` seconds in, ending it with `hangup` if given.
fn leg(leg: &str, kind: EventKind, at_s: i64, hangup: Option<Hangup>) -> Event {
    let facts = LegFacts {
        direction: Some(Direction::Inbound),
        leg: LegSnapshot {
            id: Some(leg.into()),
            is_first: Some(leg == "caller"),
            from: Some(number("+15550001")),
            to: Some(number(if leg == "caller" { "+15550100" } else { "101" })),
            result: None,
        },
        first_leg: None,
        parent_leg: None,
        hangup,
    };
    support::leg_event("c-1", kind, at_s, facts)
}

fn hangup(by: Option<&str>, q850: Option<u16>, sip: Option<u16>, text: Option<&str>) -> Hangup {
    Hangup {
        by: by.map(number),
        q850,
        sip_code: sip,
        text: text.map(str::to_owned),
    }
}

#[test]
fn each_leg_keeps_its_hangup_and_the_call_takes_the_first_legs() {
    use EventKind::*;
    let events = vec![
        leg("caller", LegCreated, 0, None),
        leg("device", LegRinging, 1, None),
        leg("device", LegAnswered, 4, None),
        leg("caller", LegAnswered, 4, None),
        // The device's leg is ended twice: the second word adds what the first left out and
        // changes nothing the first said.
        leg(
            "device",
            LegEnded,
            60,
            Some(hangup(Some("101"), None, Some(487), Some("first word"))),
        ),
        leg(
            "device",
            LegEnded,
            61,
            Some(hangup(
                Some("+15550001"),
                Some(16),
                Some(200),
                Some("second word"),
            )),
        ),
        leg(
            "caller",
            LegEnded,
            61,
            Some(hangup(
                Some("+15550001"),
                Some(16),
                None,
                Some("NORMAL_CLEARING"),
            )),
        ),
    ];
    let rec = build(&events);
    assert_eq!(rec.state, CallState::Ended);
    let device = rec.legs.iter().find(|l| l.id == "device").unwrap();
    assert_eq!(
        device.hangup.as_deref(),
        Some(&hangup(
            Some("101"),
            Some(16),
            Some(487),
            Some("first word")
        ))
    );
    assert_eq!(
        rec.hangup,
        Some(hangup(
            Some("+15550001"),
            Some(16),
            None,
            Some("NORMAL_CLEARING")
        ))
    );
    // As users read it: the same fields, in the leg and in the call.
    let json = serde_json::to_value(&rec).unwrap();
    let legs = json["legs"].as_array().unwrap();
    let device = legs.iter().find(|l| l["id"] == "device").unwrap();
    assert_eq!(device["hangup"]["q850"], 16);
    assert_eq!(device["hangup"]["sip_code"], 487);
    assert_eq!(device["hangup"]["by"]["number"], "101");
    assert_eq!(json["hangup"]["text"], "NORMAL_CLEARING");
    let ringing_only = build(&events[..2]);
    assert!(ringing_only.hangup.is_none() && ringing_only.legs.iter().all(|l| l.hangup.is_none()));
}

#[test]
fn a_call_whose_first_leg_said_nothing_takes_the_hangup_of_the_leg_that_ended_last() {
    use EventKind::*;
    let events = vec![
        leg("caller", LegCreated, 0, None),
        leg("device", LegRinging, 1, None),
        leg("other", LegRinging, 1, None),
        leg(
            "other",
            LegEnded,
            20,
            Some(hangup(None, Some(19), None, None)),
        ),
        leg(
            "device",
            LegEnded,
            30,
            Some(hangup(None, Some(17), Some(486), Some("busy"))),
        ),
        leg("caller", LegEnded, 31, None),
    ];
    let rec = build(&events);
    assert_eq!(
        rec.hangup,
        Some(hangup(None, Some(17), Some(486), Some("busy")))
    );
}
