use crate::testkit::{arb_event, check_goldens, round_trips, seed_ctx};
use crate::{decode, parse_body};
use proptest::prelude::*;
use switchboard_model::{Dialect, EventKind};

#[test]
fn every_seed_example_decodes_to_its_golden_canonical_form() {
    assert_eq!(check_goldens(Dialect::Callable, "UTC"), 4);
}

proptest! {
    #[test]
    fn canonical_encode_decode_keeps_what_the_dialect_expresses(event in arb_event(vec![EventKind::LegCreated, EventKind::LegRinging, EventKind::LegAnswered, EventKind::LegEnded, EventKind::RecordingStarted, EventKind::RecordingStopped, EventKind::RecordingReady])) {
        round_trips(Dialect::Callable, &event)?;
    }
}

/// Decodes a body that must be refused, returning the path of the error.
fn refused(body: &str) -> String {
    let items = match parse_body(Dialect::Callable, body.as_bytes()) {
        Ok(items) => items,
        Err(e) => return e.path,
    };
    let err = decode(Dialect::Callable, &items[0], &seed_ctx("UTC")).expect_err(body);
    assert!(!err.message.is_empty());
    err.path
}

#[test]
fn bad_events_name_their_field() {
    let base = |extra: &str| {
        format!(
            r#"{{"parentCallSid": "p", "callSid": "p", "event": "call", "status": "ringing", "timestamp": 1600000000000{extra}}}"#
        )
    };
    // A status or event Callable adds later is kept as not understood, in its call.
    assert_eq!(
        crate::testkit::not_understood(
            Dialect::Callable,
            &base("").replace("ringing", "dialing"),
            "UTC",
            Some("p")
        ),
        "status"
    );
    assert_eq!(
        crate::testkit::not_understood(
            Dialect::Callable,
            &base("").replace("\"event\": \"call\"", "\"event\": \"sms\""),
            "UTC",
            Some("p")
        ),
        "event"
    );
    assert_eq!(
        refused(&base("").replace("\"parentCallSid\": \"p\", ", "")),
        "parentCallSid"
    );
    assert_eq!(
        refused(&base("").replace("1600000000000", "\"noon\"")),
        "timestamp"
    );
    assert_eq!(
        refused(&base("").replace(
            "\"event\": \"call\", \"status\": \"ringing\"",
            "\"event\": \"phone\", \"status\": \"connected\""
        )),
        "childSid"
    );
}

#[test]
fn seconds_where_milliseconds_belong_are_refused_as_absurd() {
    let body = r#"{"parentCallSid": "p", "callSid": "p", "event": "call", "status": "ringing", "timestamp": 1600000000}"#;
    let items = parse_body(Dialect::Callable, body.as_bytes()).unwrap();
    let ctx = crate::DecodeContext {
        max_ahead: Some(std::time::Duration::from_secs(86_400)),
        ..seed_ctx("UTC")
    };
    let err = decode(Dialect::Callable, &items[0], &ctx).unwrap_err();
    assert_eq!(err.path, "timestamp");
    assert!(err.message.contains("seconds vs milliseconds"), "{err}");
}

#[test]
fn legs_group_by_parent_call_sid() {
    for name in [
        "seed-level1-a-leg",
        "seed-level2-b-leg",
        "seed-level3-phone",
    ] {
        let body = std::fs::read(format!(
            "{}/src/callable/fixtures/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let items = parse_body(Dialect::Callable, &body).unwrap();
        let fact = decode(Dialect::Callable, &items[0], &seed_ctx("UTC"))
            .unwrap()
            .remove(0);
        assert_eq!(
            fact.call_id.as_deref(),
            Some("e5bc544c-2186-47e8-8784-6182cf8190cb"),
            "{name}"
        );
        assert!(fact.vendor.contains_key("meta"));
    }
}
