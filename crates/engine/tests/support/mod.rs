//! Events for the engine's tests, stamped as the hub stamps what a source sent.

use jiff::Timestamp;
use switchboard_model::{
    AccountId, Details, Dialect, Event, EventKind, Fact, LegFacts, Party, PartyKind, Source,
};

/// A party known by its number.
pub fn number(n: &str) -> Party {
    let mut p = Party::new(PartyKind::Number);
    p.number = Some(n.into());
    p
}

/// An event of call `call` about the leg `facts` describes, `at_s` seconds in.
pub fn leg_event(call: &str, kind: EventKind, at_s: i64, facts: LegFacts) -> Event {
    let leg = facts.leg.id.clone().expect("the leg's id");
    let fact = Fact {
        time_estimated: false,
        source_key: format!("{call}:{leg}:{}:{at_s}", kind.as_str()),
        kind,
        occurred_at: Timestamp::from_second(1_700_000_000 + at_s).unwrap(),
        call_id: Some(call.into()),
        leg_id: Some(leg),
        agent_id: None,
        details: Details::Leg(Box::new(facts)),
        vendor: Default::default(),
        raw: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
    };
    let source = Source {
        dialect: Dialect::Canonical,
        name: None,
    };
    let at = fact.occurred_at;
    switchboard_engine::stamp(AccountId(1), &source, at, vec![fact], uuid::Uuid::now_v7).remove(0)
}
