//! `canonical`: Switchboard's own dialect, CloudEvents 1.0 in structured JSON mode.
//!
//! `specversion` `1.0`, `id` (the hub's event id), `source`
//! (`/switchboard/accounts/{account}/{dialect}`), `type` (`switchboard.` + the kind),
//! `subject` (the call id), `time`, `datacontenttype` `application/json`, and `data` with the
//! canonical `event` and a `call` snapshot. Every kind is expressible. Ingested canonical
//! events are deduplicated on `source` + `id`.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;
