use crate::testkit::{arb_event, check_goldens, round_trips, seed_ctx};
use crate::{decode, parse_body};
use proptest::prelude::*;
use switchboard_model::{Dialect, EventKind};

#[test]
fn every_seed_example_decodes_to_its_golden_canonical_form() {
    assert_eq!(check_goldens(Dialect::Welljoint, "Asia/Shanghai"), 17);
}

proptest! {
    #[test]
    fn canonical_encode_decode_keeps_what_the_dialect_expresses(event in arb_event(vec![EventKind::LegCreated, EventKind::LegRinging, EventKind::LegAnswered, EventKind::LegEnded, EventKind::LegHeld, EventKind::LegRetrieved, EventKind::Transferred, EventKind::Conferenced, EventKind::RecordingStarted, EventKind::RecordingStopped, EventKind::AgentState])) {
        round_trips(Dialect::Welljoint, &event)?;
    }
}

/// Decodes a body that must be refused, returning the path of the error.
fn refused(body: &str) -> String {
    let items = match parse_body(Dialect::Welljoint, body.as_bytes()) {
        Ok(items) => items,
        Err(e) => return e.path,
    };
    let err = decode(Dialect::Welljoint, &items[0], &seed_ctx("Asia/Shanghai")).expect_err(body);
    assert!(!err.message.is_empty());
    err.path
}

#[test]
fn bad_events_name_their_field() {
    assert_eq!(
        refused(r#"{"eventName": "delivered", "eventTime": "18/03/2017 14:13"}"#),
        "eventTime"
    );
    // An event name the document does not list: kept as not understood in its call; with no
    // call nor serial, nothing to keep it by.
    assert_eq!(
        crate::testkit::not_understood(
            Dialect::Welljoint,
            r#"{"eventName": "teleported", "eventTime": "2017.03.18 14:13:24", "callId": "c1", "namespace": "x.cc", "serial": 7}"#,
            "Asia/Shanghai",
            Some("c1")
        ),
        "eventName"
    );
    assert_eq!(
        refused(r#"{"eventName": "teleported", "eventTime": "2017.03.18 14:13:24"}"#),
        "eventName"
    );
    assert_eq!(
        refused(r#"{"eventTime": "2017.03.18 14:13:24"}"#),
        "eventName"
    );
    assert_eq!(
        refused(r#"{"eventName": "agentReady", "eventTime": "2017.03.18 14:13:24"}"#),
        "agentId"
    );
    assert_eq!(
        refused(
            r#"{"eventName": "failed", "eventTime": "2017.03.18 14:13:24", "failedCode": {"code": 12}}"#
        ),
        "failedCode"
    );
}

#[test]
fn local_time_is_read_in_the_sources_zone() {
    let body = r#"{"eventName": "held", "eventTime": "2017.03.18 14:37:57", "callId": "c", "holdingDevice": "8002@x.cc", "namespace": "x.cc", "serial": 1}"#;
    let items = parse_body(Dialect::Welljoint, body.as_bytes()).unwrap();
    let shanghai = decode(Dialect::Welljoint, &items[0], &seed_ctx("Asia/Shanghai"))
        .unwrap()
        .remove(0);
    assert_eq!(shanghai.occurred_at.to_string(), "2017-03-18T06:37:57Z");
    let utc = decode(Dialect::Welljoint, &items[0], &seed_ctx("UTC"))
        .unwrap()
        .remove(0);
    assert_eq!(utc.occurred_at.to_string(), "2017-03-18T14:37:57Z");
}

#[test]
fn both_spellings_of_a_cause_are_one_cause_and_copies_are_one_leg() {
    let cleared = |cause: &str, src: &str| {
        format!(
            r#"{{"eventName": "connectionCleared", "eventTime": "2018.10.23 09:22:01", "callId": "c1", "srcDeviceId": "{src}", "releasingDevice": "8016@360.cc", "cause": "{cause}", "namespace": "360.cc", "serial": 1}}"#
        )
    };
    let decode_one = |body: String| {
        let items = parse_body(Dialect::Welljoint, body.as_bytes()).unwrap();
        decode(Dialect::Welljoint, &items[0], &seed_ctx("UTC"))
            .unwrap()
            .remove(0)
    };
    let a = decode_one(cleared("NORMAL_CLEARING", "8016@360.cc"));
    let b = decode_one(cleared("normalClearing", "915825155548@360.cc"));
    let hangup = |f: &switchboard_model::Fact| match &f.details {
        switchboard_model::Details::Leg(l) => l.hangup.clone().unwrap().text,
        _ => None,
    };
    assert_eq!(hangup(&a).as_deref(), Some("NORMAL_CLEARING"));
    assert_eq!(hangup(&a), hangup(&b));
    assert_eq!(
        b.vendor["cause"], "normalClearing",
        "the cause as sent is kept"
    );
    // Each device's copy names the same leg: the releasing device's.
    assert_eq!(a.leg_id, b.leg_id);
}
