//! Switchboard's canonical model: the one vocabulary every dialect is translated into.
//!
//! Everything here is plain data with no I/O: the [`Fact`] a decoder produces from a vendor
//! payload, the [`Event`] the hub stamps it into once accepted, the [`Party`] on either end of
//! a leg, and the Phone.com-style [`tags`] every event carries whatever its dialect.

pub mod event;
pub mod party;
pub mod tags;

pub use event::{
    AccountId, AgentFacts, AgentState, ApiErrorFacts, CallLogFacts, Details, Dialect, Direction,
    DtmfFacts, Event, EventKind, Fact, Hangup, LegFacts, LegResult, LegSnapshot, MessageFacts,
    MessageMedia, NoticeFacts, RecordingFacts, Source, TransferFacts,
};
pub use party::{normalize_number, InternalNumbers, Party, PartyKind};
