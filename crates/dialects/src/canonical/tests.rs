use crate::testkit::{arb_event, seed_ctx};
use crate::{decode, encode, parse_body, Recipient};
use proptest::prelude::*;
use switchboard_model::{Dialect, EventKind};

proptest! {
    /// Every kind is expressible in the canonical dialect, and decoding gives the fact back.
    #[test]
    fn cloudevents_round_trip_every_fact(event in arb_event(vec![
        EventKind::LegCreated, EventKind::LegEnded, EventKind::CallLog, EventKind::CallMissed, EventKind::RecordingReady,
        EventKind::AgentState, EventKind::Dtmf, EventKind::Transferred, EventKind::Conferenced, EventKind::CallEnded,
    ])) {
        let out = encode(Dialect::Canonical, &event, &Recipient::default()).unwrap();
        let ce: serde_json::Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(&ce["specversion"], "1.0");
        prop_assert_eq!(ce["type"].as_str().unwrap(), format!("switchboard.{}", event.fact.kind.as_str()));
        prop_assert_eq!(&ce["id"], &serde_json::json!(event.id.to_string()));
        let items = parse_body(Dialect::Canonical, &out).unwrap();
        let fact = decode(Dialect::Canonical, &items[0], &seed_ctx("UTC")).unwrap().remove(0);
        prop_assert_eq!(fact.kind, event.fact.kind);
        prop_assert_eq!(&fact.details, &event.fact.details);
        prop_assert_eq!(&fact.call_id, &event.fact.call_id);
        prop_assert_eq!(fact.occurred_at, event.fact.occurred_at);
        prop_assert!(fact.source_key.starts_with("ce:/switchboard/accounts/"));
    }
}

#[test]
fn bad_cloudevents_name_their_field() {
    let refused = |body: &str| {
        let items = parse_body(Dialect::Canonical, body.as_bytes()).unwrap();
        decode(Dialect::Canonical, &items[0], &seed_ctx("UTC"))
            .unwrap_err()
            .path
    };
    assert_eq!(
        refused(
            r#"{"specversion": "0.3", "id": "1", "source": "s", "type": "switchboard.call.ended", "data": {}}"#
        ),
        "specversion"
    );
    assert_eq!(
        refused(
            r#"{"specversion": "1.0", "id": "1", "source": "s", "type": "com.example.x", "data": {}}"#
        ),
        "type"
    );
    assert_eq!(
        refused(
            r#"{"specversion": "1.0", "id": "1", "source": "s", "type": "switchboard.call.ended", "data": {}}"#
        ),
        "data.event"
    );
    assert_eq!(
        refused(
            r#"{"specversion": "1.0", "source": "s", "type": "switchboard.call.ended", "data": {}}"#
        ),
        "id"
    );
}
