//! Canonical events → CloudEvents.

use crate::Recipient;
use serde_json::json;
use switchboard_model::Event;

/// Encodes any event as a CloudEvent.
pub fn encode(event: &Event, _to: &Recipient) -> Option<Vec<u8>> {
    let fact = &event.fact;
    let out = json!({
        "specversion": "1.0",
        "id": event.id.to_string(),
        "source": format!("/switchboard/accounts/{}/{}", event.account, event.source.dialect),
        "type": format!("switchboard.{}", fact.kind.as_str()),
        "subject": fact.call_id,
        "time": fact.occurred_at.to_string(),
        "datacontenttype": "application/json",
        "data": {
            "event": event,
            "call": fact.call_id.as_ref().map(|id| json!({ "id": id })),
        },
    });
    Some(serde_json::to_vec(&out).expect("JSON"))
}
