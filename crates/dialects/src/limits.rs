//! How long an id or a number may be. No vendor's id or phone number comes near it; a payload
//! whose ids are longer (a megabyte call id) is refused with the field named, rather than
//! stored, indexed and listed in every answer about its call.

use crate::error::DecodeError;
use switchboard_model::{Dialect, Fact};

/// The longest id, key or number an event may carry, in bytes.
pub const MAX_ID: usize = 256;

/// Where each id of a fact comes from in its dialect's payload: the event key, the call, the
/// leg, the agent, and the parties.
fn fields(dialect: Dialect) -> [&'static str; 5] {
    match dialect {
        Dialect::Phonecom => [
            "uuid",
            "data.uuid",
            "data.event_leg.uuid",
            "agent",
            "data.event_leg",
        ],
        Dialect::Tel4vn => ["call_id", "call_id", "call_id", "agent", "from_number"],
        Dialect::Callable => ["callSid", "parentCallSid", "callSid", "agent", "from"],
        Dialect::Welljoint => ["serial", "callId", "deviceId", "agentId", "callingDevice"],
        Dialect::Workonflow => ["streamId", "streamId", "userId", "agent", "userId"],
        Dialect::Canonical => [
            "id",
            "data.event.fact.call_id",
            "data.event.fact.leg_id",
            "data.event.fact.agent_id",
            "data.event.fact.details",
        ],
    }
}

/// Refuses facts with an id, key or number longer than [`MAX_ID`].
pub(crate) fn check(dialect: Dialect, facts: &[Fact]) -> Result<(), DecodeError> {
    let [key, call, leg, agent, parties] = fields(dialect);
    let too_long = |path: &str, what: &str| {
        DecodeError::new(
            path,
            format!("{what} longer than {MAX_ID} bytes: no vendor's is"),
        )
    };
    for fact in facts {
        if fact.source_key.len() > MAX_ID {
            return Err(too_long(key, "an event id"));
        }
        for (value, path) in [
            (&fact.call_id, call),
            (&fact.leg_id, leg),
            (&fact.agent_id, agent),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_ID) {
                return Err(too_long(path, "an id"));
            }
        }
        for party in fact.parties() {
            let long = [
                &party.id,
                &party.number,
                &party.extension,
                &party.extension_id,
            ]
            .into_iter()
            .flatten()
            .any(|v| v.len() > MAX_ID);
            if long {
                return Err(too_long(parties, "a party's id or number"));
            }
        }
    }
    Ok(())
}
