//! `tel4vn`: the Vietnamese PBX's event hooks.
//!
//! A flat payload per event: `ringing`, `answered`, `hangup` follow one extension leg
//! (`call_id` per leg); `cdr` describes the whole flow under a *different* `call_id`, joined
//! through `sip_call_id`; `missed` an inbound call nobody answered; `cdr_autocall` an autocall
//! CDR with `press_key` and `customer_id`. No event id and usually no timestamp: the key is a
//! hash of the content and the time is the time of receipt (or `time_started`,
//! `time_answered`, `time_ended` when the PBX sends them). `duration`/`billsec` come only with
//! `hangup`, `recording_url` only with `cdr`; real CDRs are not always consistent (billsec on a
//! BUSY call, a numeric direction), so the source's figures are kept as sent in `vendor`.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;

/// The hook events a tel4vn subscriber can ask for.
pub const EVENTS: &[&str] = &[
    "hangup",
    "ringing",
    "answered",
    "cdr",
    "missed",
    "cdr_autocall",
];
