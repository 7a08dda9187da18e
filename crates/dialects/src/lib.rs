//! Vendor dialects: pure translation between vendor JSON and Switchboard's canonical model.
//!
//! Each dialect is a folder with the same files: `mod.rs` (what the dialect is), `decode.rs`
//! (vendor JSON → [`Fact`]s), `encode.rs` (canonical [`Event`] → vendor JSON, or nothing where
//! the dialect has no such event) and `tests.rs` with fixtures. Nothing here does I/O or reads
//! the clock: time comes in through [`DecodeContext`].

pub mod batch;
pub mod callable;
pub mod canonical;
mod common;
mod error;
pub mod limits;
pub mod phonecom;
pub mod tel4vn;
#[cfg(test)]
mod testkit;
mod unknown;
pub mod welljoint;
pub mod workonflow;

pub use batch::{split_batch, Batch};
pub use common::{uuid_for, EARLIEST_TIME};
pub use error::DecodeError;

use batch::split_validating;

use jiff::Timestamp;
use std::borrow::Cow;
use std::time::Duration;
use switchboard_model::{AccountId, Dialect, Event, Fact};

/// What a decoder may know beyond the payload itself.
#[derive(Debug, Clone)]
pub struct DecodeContext {
    /// When the hub received the payload; used where a dialect carries no timestamp.
    pub received_at: Timestamp,
    /// The time zone of sources that send local times without a zone.
    pub tz: jiff::tz::TimeZone,
    /// A source time further than this ahead of `received_at` is refused as absurd; `None`
    /// accepts any future time (offline decoding). Past times are history and always taken
    /// (back to [`EARLIEST_TIME`]).
    pub max_ahead: Option<Duration>,
}

impl DecodeContext {
    /// A context for events received now in UTC, refusing times more than a day ahead.
    pub fn at(received_at: Timestamp) -> DecodeContext {
        DecodeContext {
            received_at,
            tz: jiff::tz::TimeZone::UTC,
            max_ahead: Some(Duration::from_secs(86_400)),
        }
    }
}

/// Who an encoded event is addressed to.
#[derive(Debug, Clone, Default)]
pub struct Recipient {
    pub listener_id: i64,
    pub account: AccountId,
    /// Set when the listener was created at extension level.
    pub extension_id: Option<i64>,
    /// Only this vendor event name is wanted (a tel4vn hook's `event`); others encode to nothing.
    pub only_event: Option<String>,
    /// The direction the hub concluded for the event's call, for a dialect that always states
    /// one when the event itself does not.
    pub call_direction: Option<switchboard_model::Direction>,
}

/// The dialects that can be ingested.
pub fn decodable() -> &'static [Dialect] {
    &Dialect::ALL
}

/// The dialects a listener's `version` may name.
pub fn encodable() -> &'static [Dialect] {
    &Dialect::ALL
}

/// The elements of a request body: the body's own text, or text made from it (a JSON5 body
/// read as JSON).
#[derive(Debug)]
pub struct Body<'a> {
    pub items: Vec<Cow<'a, str>>,
    /// True when the body was one bare object: its error paths start at the object itself.
    pub single: bool,
}

impl Body<'_> {
    /// The JSON path prefix of the `index`th element.
    pub fn prefix(&self, index: usize) -> String {
        if self.single {
            String::new()
        } else {
            format!("[{index}]")
        }
    }
}

impl<'b, 'a> IntoIterator for &'b Body<'a> {
    type Item = &'b Cow<'a, str>;
    type IntoIter = std::slice::Iter<'b, Cow<'a, str>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a> std::ops::Deref for Body<'a> {
    type Target = [Cow<'a, str>];
    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

/// Splits a request body into its elements. Workonflow's documented examples are JavaScript
/// object literals, so for that dialect a body that is not JSON is read as JSON5.
pub fn parse_body(dialect: Dialect, body: &[u8]) -> Result<Body<'_>, DecodeError> {
    let split = if dialect == Dialect::Workonflow {
        split_validating(body)
    } else {
        split_batch(body)
    };
    match split {
        Ok(batch) => Ok(Body {
            single: batch.single,
            items: batch.items.into_iter().map(Cow::Borrowed).collect(),
        }),
        Err(e) if dialect == Dialect::Workonflow && e.syntax => workonflow::relaxed(body),
        Err(e) => Err(e),
    }
}

/// Decodes one vendor event (one element of a batch) into facts. The element is read whole,
/// and one that is not JSON is refused with a syntax error. One whose only fault is a value
/// its vendor added since (a new state or event name) is kept as not understood
/// ([`EventKind::NotUnderstood`](switchboard_model::EventKind::NotUnderstood)).
pub fn decode(dialect: Dialect, item: &str, ctx: &DecodeContext) -> Result<Vec<Fact>, DecodeError> {
    let decoded = match dialect {
        Dialect::Phonecom => phonecom::decode(item, ctx),
        Dialect::Tel4vn => tel4vn::decode(item, ctx),
        Dialect::Callable => callable::decode(item, ctx),
        Dialect::Welljoint => welljoint::decode(item, ctx),
        Dialect::Workonflow => workonflow::decode(item, ctx),
        Dialect::Canonical => canonical::decode(item, ctx),
    };
    let facts = match decoded {
        Err(e) if e.unknown_value => unknown::not_understood(dialect, item, ctx, e),
        other => other,
    }?;
    limits::check(dialect, &facts)?;
    Ok(facts)
}

/// Encodes an event for a recipient in a dialect; `None` where the dialect has no such event.
///
/// A vendor's own event going to a listener of the same vendor passes through: the payload
/// exactly as the vendor sent it, every documented field and value as it came (Phone.com's
/// keeps the sender's `data` inside the listener's own envelope: see its encoder).
pub fn encode(dialect: Dialect, event: &Event, to: &Recipient) -> Option<Vec<u8>> {
    let encoded = match dialect {
        Dialect::Phonecom => phonecom::encode(event, to),
        Dialect::Tel4vn => tel4vn::encode(event, to),
        Dialect::Callable => callable::encode(event, to),
        Dialect::Welljoint => welljoint::encode(event, to),
        Dialect::Workonflow => workonflow::encode(event, to),
        Dialect::Canonical => canonical::encode(event, to),
    }?;
    let passes_through = event.source.dialect == dialect
        && matches!(
            dialect,
            Dialect::Tel4vn | Dialect::Callable | Dialect::Welljoint | Dialect::Workonflow
        );
    Some(if passes_through {
        event.fact.raw.get().as_bytes().to_vec()
    } else {
        encoded
    })
}
