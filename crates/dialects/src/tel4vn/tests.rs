use crate::testkit::{arb_event, check_goldens, round_trips, seed_ctx};
use crate::{decode, parse_body};
use proptest::prelude::*;
use switchboard_model::{Dialect, EventKind};

#[test]
fn every_seed_example_decodes_to_its_golden_canonical_form() {
    assert_eq!(check_goldens(Dialect::Tel4vn, "UTC"), 1);
}

proptest! {
    #[test]
    fn canonical_encode_decode_keeps_what_the_dialect_expresses(event in arb_event(vec![EventKind::LegRinging, EventKind::LegAnswered, EventKind::LegEnded, EventKind::CallLog, EventKind::CallMissed])) {
        round_trips(Dialect::Tel4vn, &event)?;
    }
}

/// Decodes a body that must be refused, returning the path of the error.
fn refused(body: &str) -> String {
    let items = match parse_body(Dialect::Tel4vn, body.as_bytes()) {
        Ok(items) => items,
        Err(e) => return e.path,
    };
    let err = decode(Dialect::Tel4vn, &items[0], &seed_ctx("UTC")).expect_err(body);
    assert!(!err.message.is_empty());
    err.path
}

#[test]
fn bad_hooks_name_their_field() {
    // A state the PBX adds later is kept as not understood, in its call; with no call_id
    // there is nothing to join it to.
    assert_eq!(
        crate::testkit::not_understood(
            Dialect::Tel4vn,
            r#"{"call_id": "a", "state": "dialing"}"#,
            "UTC",
            Some("a")
        ),
        "state"
    );
    assert_eq!(refused(r#"{"state": "dialing"}"#), "state");
    assert_eq!(refused(r#"{"state": "hangup"}"#), "call_id");
    assert_eq!(
        refused(r#"{"call_id": "a", "state": "hangup", "billsec": "five"}"#),
        "billsec"
    );

    assert_eq!(
        refused(r#"{"call_id": "a", "state": "hangup", "time_ended": "yesterday"}"#),
        "time_ended"
    );
}

#[test]
fn the_quirks_are_kept_as_sent() {
    let body = r#"{"call_id": "c", "sip_call_id": "s", "state": "hangup", "direction": 1, "status": "BUSY", "billsec": 7, "duration": 9, "from_number": "0912345678", "to_number": "101"}"#;
    let items = parse_body(Dialect::Tel4vn, body.as_bytes()).unwrap();
    let fact = decode(Dialect::Tel4vn, &items[0], &seed_ctx("UTC"))
        .unwrap()
        .remove(0);
    // A numeric direction and billsec on a BUSY call: kept, not "corrected".
    assert_eq!(fact.vendor["direction"], 1);
    assert_eq!(fact.vendor["billsec"], 7.0);
    let switchboard_model::Details::Leg(leg) = &fact.details else {
        panic!()
    };
    assert_eq!(leg.leg.result, Some(switchboard_model::LegResult::Busy));
    assert_eq!(
        fact.occurred_at,
        seed_ctx("UTC").received_at,
        "no timestamp: the time of receipt"
    );
    // A cdr with a recording gives the PBX's own record of the call and the recording.
    let cdr = r#"{"call_id": "flow", "sip_call_id": "s", "state": "cdr", "direction": "inbound", "recording_url": "https://r/x.wav"}"#;
    let items = parse_body(Dialect::Tel4vn, cdr.as_bytes()).unwrap();
    let facts = decode(Dialect::Tel4vn, &items[0], &seed_ctx("UTC")).unwrap();
    assert_eq!(
        facts.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [EventKind::SourceCdr, EventKind::RecordingReady]
    );
    assert_eq!(facts[0].vendor["sip_call_id"], "s");
}
