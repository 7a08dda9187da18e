//! Vendor dialects: pure translation between vendor JSON and Switchboard's canonical model.
//!
//! Each dialect is a folder with the same files: `mod.rs` (what the dialect is), `decode.rs`
//! (vendor JSON → [`Fact`]s), `encode.rs` (canonical [`Event`] → vendor JSON, or nothing where
//! the dialect has no such event) and `tests.rs` with fixtures. Nothing here does I/O or reads
//! the clock: time comes in through [`DecodeContext`].

pub mod batch;
mod error;
pub mod phonecom;

pub use batch::split_batch;
pub use error::DecodeError;

use jiff::Timestamp;
use serde_json::value::RawValue;
use switchboard_model::{AccountId, Dialect, Event, Fact};

/// What a decoder may know beyond the payload itself.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext {
    /// When the hub received the payload; used where a dialect carries no timestamp.
    pub received_at: Timestamp,
}

/// Who an encoded event is addressed to.
#[derive(Debug, Clone, Copy)]
pub struct Recipient {
    pub listener_id: i64,
    pub account: AccountId,
    /// Set when the listener was created at extension level.
    pub extension_id: Option<i64>,
}

/// The dialects whose decoders are built so far.
pub fn decodable() -> &'static [Dialect] {
    &[Dialect::Phonecom]
}

/// The dialects whose encoders are built so far (what a listener's `version` may name).
pub fn encodable() -> &'static [Dialect] {
    &[Dialect::Phonecom]
}

/// Decodes one vendor event (one element of a batch) into facts.
pub fn decode(
    dialect: Dialect,
    item: &RawValue,
    ctx: &DecodeContext,
) -> Result<Vec<Fact>, DecodeError> {
    match dialect {
        Dialect::Phonecom => phonecom::decode(item, ctx),
        other => Err(DecodeError::new(
            "",
            format!("the {other} dialect cannot be ingested yet"),
        )),
    }
}

/// Encodes an event for a recipient in a dialect; `None` where the dialect has no such event.
pub fn encode(dialect: Dialect, event: &Event, to: &Recipient) -> Option<Vec<u8>> {
    match dialect {
        Dialect::Phonecom => Some(phonecom::encode(event, to)),
        _ => None,
    }
}
