use super::*;
use crate::{split_batch, DecodeContext, Recipient};
use jiff::Timestamp;
use switchboard_model::{
    tags, AccountId, Details, Dialect, Direction, Event, EventKind, LegResult, PartyKind, Source,
};

fn ctx() -> DecodeContext {
    DecodeContext::at(Timestamp::from_second(1_593_029_700).unwrap())
}

fn decode_one(json: &str) -> switchboard_model::Fact {
    let batch = split_batch(json.as_bytes()).unwrap();
    let mut facts = decode(batch.items[0], &ctx()).unwrap();
    assert_eq!(facts.len(), 1);
    facts.remove(0)
}

#[test]
fn reference_example_decodes_to_a_completed_second_leg() {
    let fact = decode_one(include_str!("fixtures/reference-call-completed.json"));
    assert_eq!(fact.source_key, "00000000-0000-0000-0000-000000000000");
    assert_eq!(fact.kind, EventKind::LegEnded);
    assert_eq!(
        fact.call_id.as_deref(),
        Some("1111-1111-1111-1111-111111111111")
    );
    assert_eq!(
        fact.leg_id.as_deref(),
        Some("22222222-2222-2222-2222-222222222222")
    );
    assert_eq!(fact.occurred_at.as_nanosecond(), 1_593_029_665_343_497_000);
    let Details::Leg(leg) = &fact.details else {
        panic!("not a leg: {:?}", fact.details)
    };
    assert_eq!(leg.direction, Some(Direction::Inbound));
    assert_eq!(leg.leg.is_first, Some(false));
    assert_eq!(leg.leg.result, Some(LegResult::Cancelled));
    let to = leg.leg.to.as_ref().unwrap();
    assert_eq!(to.kind, PartyKind::Device);
    assert_eq!(to.id.as_deref(), Some("777777"));
    assert_eq!(to.extension.as_deref(), Some("500"));
    assert_eq!(to.extension_id.as_deref(), Some("555555"));
    let from = leg.leg.from.as_ref().unwrap();
    assert_eq!(from.number.as_deref(), Some("+15550000001"));
    assert_eq!(
        tags::derive(&fact),
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
fn data_before_data_type_decodes_the_same() {
    let first = decode_one(
        r#"{"uuid":"e1","data_type":"call","timestamp":1593029665,"data":{"uuid":"c1","direction":"inbound","event_leg":{"uuid":"c1","state":"connected","from":{"type":"did","id":"+15550000001"}}}}"#,
    );
    let last = decode_one(
        r#"{"data":{"uuid":"c1","direction":"inbound","event_leg":{"uuid":"c1","state":"connected","from":{"type":"did","id":"+15550000001"}}},"timestamp":1593029665,"uuid":"e1","data_type":"call"}"#,
    );
    assert_eq!(first.kind, EventKind::LegAnswered);
    assert_eq!(
        (first.kind, &first.call_id, &first.leg_id, first.occurred_at),
        (last.kind, &last.call_id, &last.leg_id, last.occurred_at)
    );
    assert_eq!(
        format!("{:?}", first.details),
        format!("{:?}", last.details)
    );
}

#[test]
fn first_leg_null_and_missing_is_first_are_read_from_the_uuids() {
    let fact = decode_one(
        r#"{"uuid":"e1","data_type":"call","timestamp":1593029665,
            "data":{"uuid":"c1","direction":"outbound",
                    "event_leg":{"uuid":"c1","from":{"type":"extension","id":12,"extension":100},
                                 "to":{"type":"did","id":"+15550000009"},"state":"new"},
                    "first_leg":null}}"#,
    );
    let Details::Leg(leg) = &fact.details else {
        panic!()
    };
    assert_eq!(leg.leg.is_first, Some(true));
    assert!(leg.first_leg.is_none());
    assert_eq!(
        tags::derive(&fact),
        [
            "call",
            "new-call",
            "first-leg",
            "outbound",
            "from-extension",
            "to-did"
        ]
    );
}

#[test]
fn wrong_fields_are_named_by_path() {
    let cases = [
        (
            r#"{"data_type":"call","data":{"uuid":"c","event_leg":{"state":"new"}}}"#,
            "uuid",
        ),
        (r#"{"uuid":"x","data":{}}"#, "data_type"),
        (r#"{"uuid":"x","data_type":"call"}"#, "data"),
        // `data` before its type is read after the envelope, with the same paths.
        (
            r#"{"uuid":"x","data":{"uuid":"c","event_leg":{"uuid":"l"}},"data_type":"call"}"#,
            "data.event_leg.state",
        ),
        (
            r#"{"uuid":"x","data_type":"call","data":{"uuid":"c","event_leg":{"uuid":"l"}}}"#,
            "data.event_leg.state",
        ),
        (
            r#"{"uuid":"x","data_type":"call","data":{"uuid":"c","event_leg":{"state":"new","is_first":"yes"}}}"#,
            "data.event_leg.is_first",
        ),
        (
            r#"{"uuid":"x","data_type":"call","data":{"uuid":"c","event_leg":{"state":"new","to":{"type":7}}}}"#,
            "data.event_leg.to.type",
        ),
        (
            r#"{"uuid":"x","data_type":"call","timestamp":"soon","data":{}}"#,
            "timestamp",
        ),
        (
            r#"{"uuid":"x","data_type":"message","data":{"to":"+1555"}}"#,
            "data.to",
        ),
        (r#"[1]"#, ""),
    ];
    for (json, path) in cases {
        let item = if json.starts_with('[') { "1" } else { json };
        let err = decode(item, &ctx()).unwrap_err();
        assert_eq!(err.path, path, "{json}: {err}");
        assert!(!err.message.is_empty());
    }
}

#[test]
fn a_repeated_envelope_field_is_an_error_naming_it() {
    // Which copy would win is anybody's guess, so neither does: the event is refused.
    let cases = [
        (
            r#"{"uuid":"a","uuid":"b","data_type":"call","data":{"uuid":"c","event_leg":{"uuid":"c","state":"new"}}}"#,
            "uuid",
        ),
        (
            r#"{"uuid":"x","data_type":"call","data_type":"call","data":{"uuid":"c","event_leg":{"uuid":"c","state":"new"}}}"#,
            "data_type",
        ),
        (
            r#"{"uuid":"x","data_type":"call","data":{"uuid":"c","event_leg":{"uuid":"c","state":"new"}},"data":{}}"#,
            "data",
        ),
        (
            r#"{"uuid":"x","data":{},"data":{},"data_type":"call"}"#,
            "data",
        ),
        (
            r#"{"uuid":"x","timestamp":1,"timestamp":2,"data_type":"call","data":{"uuid":"c","event_leg":{"uuid":"c","state":"new"}}}"#,
            "timestamp",
        ),
    ];
    for (json, field) in cases {
        let err = decode(json, &ctx()).unwrap_err();
        assert!(
            err.message.contains("duplicate") && err.message.contains(field),
            "{json}: {err}"
        );
    }
}

#[test]
fn recordings_and_messages_get_their_tags() {
    let rec = decode_one(
        r#"{"uuid":"r1","data_type":"recording","data":{"uuid":"rec","type":"call","size":1200,"duration":12.5}}"#,
    );
    assert_eq!(rec.kind, EventKind::RecordingReady);
    assert_eq!(tags::derive(&rec), ["recording", "call-recording"]);
    let msg = decode_one(
        r#"{"uuid":"m1","data_type":"message","data":{"uuid":"m","direction":"inbound","type":"mms","from":{"type":"did","id":"+15550000001"},"to":[{"type":"did","id":"+15550000002"}],"message":"hi","media":[{"url":"https://x/y.png","type":"image/png","size":3}]}}"#,
    );
    assert_eq!(
        tags::derive(&msg),
        ["message", "mms-message", "*ms-message", "inbound"]
    );
    let log = decode_one(
        r#"{"uuid":"l1","data_type":"call-log","data":{"uuid":"c9","direction":"inbound"}}"#,
    );
    assert_eq!(log.call_id.as_deref(), Some("c9"));
    // A source's own call log is a fact of the call, not a second call log.
    assert_eq!(log.kind, switchboard_model::EventKind::SourceCdr);
    assert_eq!(tags::derive(&log), ["call", "inbound"]);
    let err = decode_one(r#"{"uuid":"a1","data_type":"api-error","data":{"status":401}}"#);
    assert_eq!(tags::derive(&err), ["api-error"]);
}

#[test]
fn encoding_keeps_the_senders_data_and_uses_the_hubs_envelope() {
    let fact = decode_one(include_str!("fixtures/reference-call-completed.json"));
    let event = Event {
        silent: false,
        id: uuid::Uuid::now_v7(),
        account: AccountId(42),
        source: Source {
            dialect: Dialect::Phonecom,
            name: None,
        },
        received_at: ctx().received_at,
        tags: tags::derive(&fact),
        fact,
    };
    let out = encode(
        &event,
        &Recipient {
            listener_id: 7,
            account: AccountId(42),
            ..Recipient::default()
        },
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    // The sender's event id stays its own; the hub's has a field of its own.
    assert_eq!(v["uuid"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(v["switchboard_event_id"], event.id.to_string());
    assert_eq!(v["listener_id"], 7);
    assert_eq!(v["context"]["voip_id"], 42);
    assert_eq!(v["timestamp"], 1_593_029_665);
    assert_eq!(v["data_type"], "call");
    assert_eq!(v["data"]["event_leg"]["to"]["domain"], "sip.phone.com");
    assert_eq!(v["tags"][1], "completed-call");
    // And the result decodes again to the same facts.
    let again = decode_one(std::str::from_utf8(&out).unwrap());
    assert_eq!(again.kind, event.fact.kind);
    assert_eq!(again.details, event.fact.details);
}

proptest::proptest! {
    #[test]
    fn canonical_encode_decode_keeps_what_phonecom_expresses(event in crate::testkit::arb_event(vec![
        EventKind::LegCreated, EventKind::LegRinging, EventKind::LegAnswered, EventKind::LegEnded,
        EventKind::CallLog, EventKind::CallMissed, EventKind::RecordingReady,
    ])) {
        crate::testkit::round_trips(Dialect::Phonecom, &event)?;
    }
}

#[test]
fn values_phone_com_adds_later_are_kept() {
    use crate::testkit::not_understood;
    // A data type or leg state: the event is kept as not understood, in its call.
    assert_eq!(
        not_understood(
            Dialect::Phonecom,
            r#"{"uuid":"x","data_type":"fax","data":{}}"#,
            "UTC",
            None
        ),
        "data_type"
    );
    assert_eq!(
        not_understood(
            Dialect::Phonecom,
            r#"{"uuid":"x","data_type":"call","data":{"uuid":"c","event_leg":{"uuid":"l","state":"ringing"}}}"#,
            "UTC",
            Some("c")
        ),
        "data.event_leg.state"
    );
    // A participant type, completion status or direction: the event is understood, the new
    // value left unknown.
    let fact = decode_one(
        r#"{"uuid":"y","data_type":"call","data":{"uuid":"c","direction":"sideways","event_leg":{"uuid":"l","state":"completed","completion_status":"voicemail","to":{"type":"queue","id":4}}}}"#,
    );
    assert_eq!(fact.kind, EventKind::LegEnded);
    let switchboard_model::Details::Leg(leg) = &fact.details else {
        panic!("{fact:?}")
    };
    assert_eq!(leg.direction, None);
    assert_eq!(leg.leg.result, Some(switchboard_model::LegResult::Unknown));
    assert_eq!(
        leg.leg.to.as_ref().map(|p| p.kind),
        Some(switchboard_model::PartyKind::Unknown)
    );
}

#[test]
fn a_senders_tags_the_hub_does_not_dispute_are_kept() {
    let msg = decode_one(
        r#"{"uuid":"m2","data_type":"message","tags":["message","sms-message","received-message","inbound","whatever","call"],"data":{"uuid":"m","direction":"inbound","type":"sms","from":{"type":"did","id":"+15550000001"},"to":[{"type":"did","id":"+15550000002"}],"message":"hi"}}"#,
    );
    assert_eq!(
        tags::derive(&msg),
        [
            "message",
            "sms-message",
            "*ms-message",
            "inbound",
            "received-message"
        ]
    );
    // A tag the content contradicts is the hub's to say: the data says MMS and outbound.
    let mms = decode_one(
        r#"{"uuid":"m3","data_type":"message","tags":["message","sms-message","inbound","sent-message"],"data":{"uuid":"m","direction":"outbound","type":"mms"}}"#,
    );
    assert_eq!(
        tags::derive(&mms),
        [
            "message",
            "mms-message",
            "*ms-message",
            "outbound",
            "sent-message"
        ]
    );
}
