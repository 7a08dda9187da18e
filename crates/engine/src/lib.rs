//! The deterministic core between decoding and storage: it stamps accepted facts into events
//! and decides which listeners an event goes to.
//!
//! Nothing here reads the clock or does I/O: the time and the id source are passed in, so the
//! same input always gives the same output and every rule can be tested in isolation.

pub mod calls;
pub mod correlation;
pub mod finalization;
pub mod matching;
pub mod schedule;

pub use matching::{
    FilterRule, FilterSpec, ListenerIndex, ListenerSpec, NumberPattern, NumberRule,
};
pub use schedule::{ScheduleError, WeeklySchedule};

use jiff::Timestamp;
use switchboard_model::{tags, AccountId, Event, Fact, Source};
use uuid::Uuid;

/// Stamps decoded facts into events: the hub's id, the account, the source, the receipt time
/// and the tags derived from the content (whatever tags the sender wrote).
pub fn stamp(
    account: AccountId,
    source: &Source,
    received_at: Timestamp,
    facts: Vec<Fact>,
    mut next_id: impl FnMut() -> Uuid,
) -> Vec<Event> {
    facts
        .into_iter()
        .map(|fact| Event {
            silent: false,
            id: next_id(),
            account,
            source: source.clone(),
            received_at,
            tags: tags::derive(&fact),
            fact,
        })
        .collect()
}
