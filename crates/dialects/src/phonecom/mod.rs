//! `phonecom`: Phone.com events v2.0.0.
//!
//! An envelope (`uuid`, `version`, `timestamp`/`timestamp_ns`, `tags`, `data_type`, `data`)
//! around a call leg, a recording, a message, a call-log or an api-error. `data.uuid` is the
//! call and `event_leg.uuid` the leg; the first leg's uuid is the call's. Real payloads send
//! `first_leg: null` on first-leg events, and leg events arrive in any order. The envelope's
//! `uuid` is the dedupe key. Tags a sender wrote are ignored: the hub derives its own.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;

/// The format version Phone.com listeners ask for.
pub const VERSION: &str = "2.0.0";
