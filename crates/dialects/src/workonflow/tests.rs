use crate::testkit::{arb_event, check_goldens, round_trips, seed_ctx};
use crate::{decode, parse_body};
use proptest::prelude::*;
use switchboard_model::{Dialect, EventKind};

#[test]
fn every_seed_example_decodes_to_its_golden_canonical_form() {
    assert_eq!(check_goldens(Dialect::Workonflow, "UTC"), 8);
}

proptest! {
    #[test]
    fn canonical_encode_decode_keeps_what_the_dialect_expresses(event in arb_event(vec![EventKind::LegCreated, EventKind::LegRinging, EventKind::LegAnswered, EventKind::LegEnded, EventKind::LegHeld, EventKind::LegRetrieved, EventKind::Dtmf, EventKind::CallEnded])) {
        round_trips(Dialect::Workonflow, &event)?;
    }
}

/// Decodes a body that must be refused, returning the path of the error.
fn refused(body: &str) -> String {
    let items = match parse_body(Dialect::Workonflow, body.as_bytes()) {
        Ok(items) => items,
        Err(e) => return e.path,
    };
    let err = decode(Dialect::Workonflow, &items[0], &seed_ctx("UTC")).expect_err(body);
    assert!(!err.message.is_empty());
    err.path
}

#[test]
fn bad_events_name_their_field() {
    assert_eq!(
        crate::testkit::not_understood(
            Dialect::Workonflow,
            "{eventType: 'Call.exploded', streamId: 's'}",
            "UTC",
            Some("s")
        ),
        "eventType"
    );
    assert_eq!(refused("{eventType: 'Call.exploded'}"), "streamId");
    assert_eq!(refused("{eventType: 'Call.ended'}"), "streamId");
    assert_eq!(
        refused("{eventType: 'Call.created', type: 'thread', streamId: 's'}"),
        "threadId"
    );
    assert_eq!(
        refused("{eventType: 'Call.Member.dtmf', streamId: 's', userId: 'u'}"),
        "dtmfNumber"
    );
    assert_eq!(
        refused("{eventType: 'Call.Member.Invite.ended', streamId: 's', userId: 'u'}"),
        "answered"
    );
    assert_eq!(
        refused("{eventType: 'Call.created', streamId: 's', createdAt: 'soon'}"),
        "createdAt"
    );
    assert_eq!(refused("{eventType: "), "");
}

#[test]
fn the_call_is_the_thread_or_the_stream_and_dtmf_may_be_a_number() {
    let decode_one = |body: &str| {
        let items = parse_body(Dialect::Workonflow, body.as_bytes()).unwrap();
        decode(Dialect::Workonflow, &items[0], &seed_ctx("UTC"))
            .unwrap()
            .remove(0)
    };
    let thread = decode_one("{eventType: 'Call.created', streamId: 's', threadId: 't', type: 'thread', createdAt: 1600000000000,}");
    assert_eq!(thread.call_id.as_deref(), Some("t"));
    let stream = decode_one("{eventType: 'Call.created', streamId: 's', threadId: 't', type: 'stream', createdAt: 1600000000000}");
    assert_eq!(stream.call_id.as_deref(), Some("s"));
    for digits in ["'7'", "7"] {
        let dtmf = decode_one(&format!(
            "{{eventType: 'Call.Member.dtmf', streamId: 's', userId: 'u', dtmfNumber: {digits}}}"
        ));
        let switchboard_model::Details::Dtmf(d) = &dtmf.details else {
            panic!()
        };
        assert_eq!(d.digits, "7");
    }
}
