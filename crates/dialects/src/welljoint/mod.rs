//! `welljoint`: CSTA-style contact-centre CTI events (wellClient).
//!
//! Agent events (`agentLoggedOn/Off`, `agentReady`, `agentNotReady`, `agentWorkingAfterCall`,
//! `agentAllocated`) and call events (`serviceInitiated`, `originated`, `delivered`,
//! `established`, `connectionCleared`, `transferred`, `conferenced`, `held`, `retrieved`,
//! `failed`, `recordStarted`, `recordStopped`). Every device in a call gets its own copy of each
//! event (`srcDeviceId` says whose view it is): the leg an event is about is named by the
//! event's own device field (`alertingDevice`, `answeringDevice`, `releasingDevice`, …), so the
//! copies decode to the same leg. `eventTime` is local time (`YYYY.MM.DD HH:MM:SS`) with no
//! zone: it is read in the source's time zone. `"0"` means "no call". Causes come both as
//! `NORMAL_CLEARING` and `normalClearing`; the hangup text is normalized to the former and the
//! cause as sent stays in `vendor`. The dedupe key is `namespace` + `serial`.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;

/// Every event name the decoder accepts.
pub const EVENTS: &[&str] = &[
    "agentLoggedOn",
    "agentLoggedOff",
    "agentReady",
    "agentNotReady",
    "agentWorkingAfterCall",
    "agentAllocated",
    "serviceInitiated",
    "originated",
    "delivered",
    "established",
    "connectionCleared",
    "transferred",
    "conferenced",
    "held",
    "retrieved",
    "failed",
    "recordStarted",
    "recordStopped",
];
