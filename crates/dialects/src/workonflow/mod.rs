//! `workonflow`: Workonflow team-chat call events.
//!
//! Eight events: `Call.created`, `Call.Member.invited`, `Call.Member.Invite.ended`
//! (`answered`), `Call.Member.leaved`, `Call.Member.held`, `Call.Member.unheld`,
//! `Call.Member.dtmf`, `Call.ended`. There is no call id: the call is `threadId` when `type` is
//! `thread`, otherwise `streamId` (both are kept in `vendor` so they can be joined). Members
//! (`userId`/`phone`) are legs. The documented examples are JavaScript object literals (single
//! quotes, unquoted keys, trailing commas), accepted as written; `dtmfNumber` is documented as a
//! number but sent as a string, and both are accepted. Only `Call.created` has a time
//! (`createdAt`, ms); the others use the time of receipt. Durations do not come with
//! `Call.ended`.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::{decode, relaxed};
pub use encode::encode;

/// Every `eventType` the decoder accepts.
pub const EVENTS: &[&str] = &[
    "Call.created",
    "Call.ended",
    "Call.Member.invited",
    "Call.Member.Invite.ended",
    "Call.Member.leaved",
    "Call.Member.held",
    "Call.Member.unheld",
    "Call.Member.dtmf",
];
