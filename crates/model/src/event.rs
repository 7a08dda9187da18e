//! Facts and events: what a decoder extracts, and what the hub keeps and delivers.

use crate::party::Party;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use uuid::Uuid;

/// An account's id: an integer, like a Phone.com `voip_id`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The vendor dialects Switchboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    Phonecom,
    Tel4vn,
    Callable,
    Welljoint,
    Workonflow,
    Canonical,
}

impl Dialect {
    pub const ALL: [Dialect; 6] = [
        Dialect::Phonecom,
        Dialect::Tel4vn,
        Dialect::Callable,
        Dialect::Welljoint,
        Dialect::Workonflow,
        Dialect::Canonical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Phonecom => "phonecom",
            Dialect::Tel4vn => "tel4vn",
            Dialect::Callable => "callable",
            Dialect::Welljoint => "welljoint",
            Dialect::Workonflow => "workonflow",
            Dialect::Canonical => "canonical",
        }
    }

    pub fn parse(name: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an event came from: the dialect it was decoded from and the ingest source's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub dialect: Dialect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The canonical event kinds (CloudEvents `type` is `switchboard.` + this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "call.leg.created")]
    LegCreated,
    #[serde(rename = "call.leg.ringing")]
    LegRinging,
    #[serde(rename = "call.leg.answered")]
    LegAnswered,
    #[serde(rename = "call.leg.held")]
    LegHeld,
    #[serde(rename = "call.leg.retrieved")]
    LegRetrieved,
    #[serde(rename = "call.leg.ended")]
    LegEnded,
    #[serde(rename = "call.dtmf")]
    Dtmf,
    #[serde(rename = "call.transferred")]
    Transferred,
    #[serde(rename = "call.conferenced")]
    Conferenced,
    #[serde(rename = "call.ended")]
    CallEnded,
    #[serde(rename = "call.log")]
    CallLog,
    #[serde(rename = "call.missed")]
    CallMissed,
    /// A source's own call detail record (a tel4vn `cdr` or `missed` hook, a Phone.com
    /// `call-log` sent in): a fact about the call whose figures, ids and recording fold into
    /// the hub's record. It is never delivered as a call log: the hub's `call.log` is the one.
    #[serde(rename = "call.cdr")]
    SourceCdr,
    #[serde(rename = "recording.started")]
    RecordingStarted,
    #[serde(rename = "recording.stopped")]
    RecordingStopped,
    #[serde(rename = "recording.ready")]
    RecordingReady,
    #[serde(rename = "agent.state")]
    AgentState,
    #[serde(rename = "message")]
    Message,
    #[serde(rename = "api.error")]
    ApiError,
    /// The hub switched a callback off (410 Gone, or failing for too long).
    #[serde(rename = "callback.deactivated")]
    CallbackDeactivated,
    /// An event the hub could not understand — a state or event name its vendor added since —
    /// kept as it came (with its ids, so it stands on its call's timeline), counted on the
    /// call, and delivered to no one. `vendor.not_understood` says which field and why.
    #[serde(rename = "not_understood")]
    NotUnderstood,
}

impl EventKind {
    /// The kind's canonical name, e.g. `call.leg.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LegCreated => "call.leg.created",
            EventKind::LegRinging => "call.leg.ringing",
            EventKind::LegAnswered => "call.leg.answered",
            EventKind::LegHeld => "call.leg.held",
            EventKind::LegRetrieved => "call.leg.retrieved",
            EventKind::LegEnded => "call.leg.ended",
            EventKind::Dtmf => "call.dtmf",
            EventKind::Transferred => "call.transferred",
            EventKind::Conferenced => "call.conferenced",
            EventKind::CallEnded => "call.ended",
            EventKind::CallLog => "call.log",
            EventKind::CallMissed => "call.missed",
            EventKind::SourceCdr => "call.cdr",
            EventKind::RecordingStarted => "recording.started",
            EventKind::RecordingStopped => "recording.stopped",
            EventKind::RecordingReady => "recording.ready",
            EventKind::AgentState => "agent.state",
            EventKind::Message => "message",
            EventKind::ApiError => "api.error",
            EventKind::CallbackDeactivated => "callback.deactivated",
            EventKind::NotUnderstood => "not_understood",
        }
    }

    /// True for the kinds that describe a call or one of its legs.
    pub fn is_call(self) -> bool {
        self.as_str().starts_with("call.")
    }
}

/// Direction of a call or message, as seen from the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

/// How a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegResult {
    Answered,
    NoAnswer,
    Busy,
    Rejected,
    Cancelled,
    AnsweredElsewhere,
    Failed,
    Unknown,
}

/// What a leg looked like when a source described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegSnapshot {
    /// The source's id of the leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_first: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<LegResult>,
}

/// Details of a `call.leg.*` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The leg the event is about.
    pub leg: LegSnapshot,
    /// The call's first leg, when the source described it beside the event's leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_leg: Option<LegSnapshot>,
    /// The leg this one was started from (a PBX sub-leg's B leg), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_leg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup: Option<Hangup>,
}

/// Details of a `recording.*` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    /// What was recorded: `call` for call recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One attachment of an MMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMedia {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// Details of a `message` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// `sms` or `mms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Party>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MessageMedia>,
}

/// Details of a `call.log`/`call.missed` event (the hub's own records) and of a `call.cdr`
/// (a source's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLogFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Party>,
}

/// Details of an `api.error` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Details of a `call.dtmf` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtmfFacts {
    pub digits: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<Party>,
}

/// An agent's state, as contact-centre CTI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    LoggedOut,
    Ready,
    NotReady,
    AfterCallWork,
    Allocated,
    OnCall,
}

/// Details of an `agent.state` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFacts {
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub state: AgentState,
    /// True when the agent logged on (rather than changed state while logged on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logged_on: bool,
}

/// Details of `call.transferred` and `call.conferenced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFacts {
    /// Calls that were merged into `new_call` (a consult call, the held call).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_calls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_call: Option<String>,
    /// Who transferred, or started the conference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Party>,
    /// Who the call went to, or who was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Party>,
}

/// Why and how a leg ended, each as the source said it (never derived from one another).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hangup {
    /// Who hung up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q850: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_code: Option<u16>,
    /// The vendor's own text (`NORMAL_CLEARING`, `busy now`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Details of a notice the hub raises about its own resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeFacts {
    pub callback_id: i64,
    pub reason: String,
}

/// The kind-specific part of a fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "details_type", rename_all = "snake_case")]
pub enum Details {
    Leg(Box<LegFacts>),
    Recording(RecordingFacts),
    Message(MessageFacts),
    CallLog(CallLogFacts),
    ApiError(ApiErrorFacts),
    Notice(NoticeFacts),
    Dtmf(DtmfFacts),
    Agent(AgentFacts),
    Transfer(TransferFacts),
    None,
}

/// What a decoder extracts from one vendor event: everything but the hub's own stamps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fact {
    /// Dedupe key: the vendor's event id or another key unique per source event.
    pub source_key: String,
    pub kind: EventKind,
    pub occurred_at: Timestamp,
    /// The source's id of the call this fact belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub details: Details,
    /// True when the source gave no time for the fact, so `occurred_at` is when the hub
    /// received it: an estimate, which the source's own figures beat.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time_estimated: bool,
    /// What the source said that the canonical model has no field for (a tel4vn `hotline`,
    /// a Callable `meta`, a Welljoint `userData`, …), kept under the source's own names.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vendor: serde_json::Map<String, serde_json::Value>,
    /// The vendor payload exactly as received.
    pub raw: Box<RawValue>,
}

impl PartialEq for Fact {
    fn eq(&self, other: &Self) -> bool {
        self.source_key == other.source_key
            && self.kind == other.kind
            && self.occurred_at == other.occurred_at
            && self.call_id == other.call_id
            && self.leg_id == other.leg_id
            && self.agent_id == other.agent_id
            && self.details == other.details
            && self.time_estimated == other.time_estimated
            && self.vendor == other.vendor
            && self.raw.get() == other.raw.get()
    }
}

/// One fact the hub accepted, stamped with its id, account, source and tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// UUIDv7 assigned by the hub; stable across every delivery and retry.
    pub id: Uuid,
    pub account: AccountId,
    pub source: Source,
    pub received_at: Timestamp,
    pub tags: Vec<String>,
    /// Stored and correlated but never delivered: an import of history (`?deliver=false`).
    /// The call log of a call that only such events made is not delivered either.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
    /// What the source said (kept nested: `raw` cannot be flattened by serde).
    pub fact: Fact,
}

/// The parties a fact's details name, as references made by `$iter` (`iter` or `iter_mut`):
/// one list of where parties are, for [`Fact::parties`] and [`Fact::parties_mut`].
macro_rules! parties_in {
    ($details:expr, $iter:ident, $opt:ident) => {{
        let mut out = Vec::new();
        match $details {
            Details::Leg(l) => {
                out.extend(l.leg.from.$iter());
                out.extend(l.leg.to.$iter());
                if let Some(first) = l.first_leg.$opt() {
                    out.extend(first.from.$iter());
                    out.extend(first.to.$iter());
                }
            }
            Details::Message(m) => {
                out.extend(m.from.$iter());
                out.extend(m.to.$iter());
            }
            Details::CallLog(c) => {
                out.extend(c.from.$iter());
                out.extend(c.to.$iter());
            }
            Details::Dtmf(d) => out.extend(d.party.$iter()),
            Details::Transfer(t) => {
                out.extend(t.by.$iter());
                out.extend(t.to.$iter());
            }
            Details::Recording(_)
            | Details::ApiError(_)
            | Details::Notice(_)
            | Details::Agent(_)
            | Details::None => {}
        }
        out
    }};
}

impl Fact {
    /// Every party the fact names.
    pub fn parties(&self) -> Vec<&Party> {
        parties_in!(&self.details, iter, as_ref)
    }

    /// Every party the fact names, to mark.
    pub fn parties_mut(&mut self) -> Vec<&mut Party> {
        parties_in!(&mut self.details, iter_mut, as_mut)
    }
}

impl Event {
    /// Every party named by the event.
    pub fn parties(&self) -> Vec<&Party> {
        self.fact.parties()
    }
}
