//! `callable`: Callable.io's generic event.
//!
//! Three levels: Level 1 is the A leg (`callSid == parentCallSid`), Level 2 the B legs
//! (`trying`, `ringing`, `in-progress`, `completed`, `failed`) and their recordings (`record`:
//! `start`, `end`, `transcoded`), Level 3 the customer PBX's own events (`phone`/`extension`:
//! `connected`, `disconnected`, `parked`) with `childSid` the PBX's sub-leg id. The call is
//! `parentCallSid`. Timestamps are milliseconds. `meta` (call tags) is kept in `vendor`.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;
