//! Calls from scattered events: the call record is a pure function of the set of events the
//! call has, so it does not depend on the order they arrived in.
//!
//! Events are folded in occurrence order (ties broken by the leg state they report, then by
//! their source key), legs never move back (a late `ringing` only fills its timestamp; only a
//! hold and its retrieval alternate), and everything else — who answered, the disposition,
//! missed, durations, each leg's result — is derived from the legs at the end.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use switchboard_model::{
    Details, Dialect, Direction, Event, EventKind, Hangup, LegResult, Party, PartyKind,
    RecordingFacts,
};

/// A call's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Initiated,
    Ringing,
    Active,
    Ended,
    Finalized,
}

/// A leg's progress; `Held` alternates with `Connected`, nothing else moves back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegState {
    Initiated,
    Ringing,
    Connected,
    Held,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    NoAnswer,
    Busy,
    Rejected,
    Cancelled,
    Failed,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegRecord {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_first: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Party>,
    pub state: LegState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<LegResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ringing_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Boxed: most legs of the calls the writer holds have not hung up, and a hangup inline
    /// would take 200 bytes in each of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hangup: Option<Box<Hangup>>,
    /// What the source said of this leg in figures (a tel4vn hangup's `duration`, `billsec`,
    /// `status`), beside the hub's times. Boxed for the same reason as `hangup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_figures: Option<Box<Map<String, Value>>>,
    /// The agent on this leg (named by the source, or logged on at its device): the leg's
    /// times say when the agent rang, answered and hung up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `started`, `stopped` or `ready`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    /// The source's figure, else the time from its start to its stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The call record: what users want to know about a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// True when no source stated the direction and the hub inferred it (from which devices
    /// are the contact centre's own, or which parties are extensions).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub direction_inferred: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<Party>,
    pub state: CallState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talk_ms: Option<i64>,
    pub disposition: Disposition,
    pub missed: bool,
    pub transferred: bool,
    pub conferenced: bool,
    pub inferred_end: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hangup: Option<Hangup>,
    pub legs: Vec<LegRecord>,
    pub recordings: Vec<RecordingRecord>,
    pub agents: Vec<String>,
    /// The sources' own figures and ids of the whole call: a source's CDR (a tel4vn `cdr`:
    /// `call_id`, `sip_call_id`, `duration`, `billsec`, `recording_url`, …), else the figures
    /// of the leg that answered (or ended last). `duration_ms` and `talk_ms` are taken from
    /// them where they are given: a PBX's figures beat times the hub had to guess.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub source_figures: Map<String, Value>,
    /// How many of the call's events the hub did not understand (a state or event name its
    /// vendor added since): they are on the call's timeline as `not_understood`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_understood: u32,
    /// The record's fields that are the hub's estimates (`started_at`, `answered_at`,
    /// `ended_at`, `duration_ms`, `talk_ms`): times of events that carried none of their own,
    /// which are when the hub received them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub estimated: Vec<String>,
    /// When the last event of the call occurred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<Timestamp>,
}

fn rank(kind: EventKind) -> u8 {
    match kind {
        EventKind::LegCreated => 0,
        EventKind::LegRinging => 1,
        EventKind::LegAnswered => 2,
        EventKind::LegHeld => 3,
        EventKind::LegRetrieved => 4,
        // A recording's events at the same second (sources with second precision) fold in
        // their own order: started, stopped, ready.
        EventKind::RecordingStarted => 5,
        EventKind::RecordingStopped => 7,
        EventKind::RecordingReady => 8,
        EventKind::LegEnded => 9,
        EventKind::CallEnded
        | EventKind::CallLog
        | EventKind::CallMissed
        | EventKind::SourceCdr => 10,
        _ => 6,
    }
}

/// How far apart a source may stamp what happened at one moment (one leg's answer, another's
/// cancel): a leg that stopped ringing this close to the call's answer was answered elsewhere.
const SAME_MOMENT_MS: i64 = 1_000;

/// The figures a source states about a leg or a call, kept under its own names.
const LEG_FIGURES: [&str; 4] = ["duration", "billsec", "status", "sip_call_id"];
const CALL_FIGURES: [&str; 14] = [
    "sip_call_id",
    "domain",
    "hotline",
    "duration",
    "billsec",
    "status",
    "recording_url",
    "press_key",
    "customer_id",
    "autocall",
    "missed",
    "time_started",
    "time_answered",
    "time_ended",
];

/// Seconds a source states (a number, or a number in a string).
fn seconds(figures: &Map<String, Value>, key: &str) -> Option<f64> {
    match figures.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
}

/// True when a source's figures say the call (or leg) was answered: its status says so, or,
/// with no status, it billed time.
fn figures_say_answered(figures: &Map<String, Value>) -> bool {
    match figures.get("status").and_then(Value::as_str) {
        Some(status) => {
            let status = status.trim().to_ascii_uppercase();
            status == "ANSWERED" || status == "ANSWER"
        }
        None => seconds(figures, "billsec").is_some_and(|b| b > 0.0),
    }
}

/// When an answer was, for a source that says only how long was billed before `end`.
fn billed_before(end: Timestamp, billed_seconds: f64) -> Option<Timestamp> {
    end.checked_sub(jiff::SignedDuration::from_millis(
        (billed_seconds * 1000.0) as i64,
    ))
    .ok()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn earliest(slot: &mut Option<Timestamp>, at: Timestamp) {
    if slot.is_none_or(|s| at < s) {
        *slot = Some(at);
    }
}

fn fill(slot: &mut Option<Party>, p: &Option<Party>) {
    if slot.is_none() {
        slot.clone_from(p);
    }
}

/// How far a recording has got: started, stopped, then ready (a file to fetch).
fn recording_step(state: &str) -> u8 {
    match state {
        "started" => 0,
        "stopped" => 1,
        _ => 2,
    }
}

/// Folds a recording's event into the call's recordings. A recording is one object from its
/// start to its file: its events join by the source's recording id (or its URL); an event
/// with neither (Callable's `record` events) joins the latest recording of its leg that has
/// not got as far, and a start with neither begins a new one. Two recordings are two objects.
fn fold_recording(recordings: &mut Vec<RecordingRecord>, e: &Event, r: &RecordingFacts) {
    let f = &e.fact;
    let (state, step) = match f.kind {
        EventKind::RecordingStarted => ("started", 0),
        EventKind::RecordingStopped => ("stopped", 1),
        _ => ("ready", 2),
    };
    let keyed = r.recording_id.is_some() || r.url.is_some();
    let by_key = recordings.iter().position(|x| {
        (r.recording_id.is_some() && x.id == r.recording_id) || (r.url.is_some() && x.url == r.url)
    });
    let by_order = || {
        recordings.iter().rposition(|x| {
            x.leg_id == f.leg_id
                && recording_step(&x.state) < step
                && (!keyed || (x.id.is_none() && x.url.is_none()))
        })
    };
    let found = match by_key {
        Some(i) => Some(i),
        None if step > 0 => by_order(),
        None => None,
    };
    let at = f.occurred_at;
    match found {
        Some(i) => {
            let x = &mut recordings[i];
            if recording_step(&x.state) < step {
                x.state = state.into();
            }
            if x.id.is_none() {
                x.id.clone_from(&r.recording_id);
            }
            if x.url.is_none() {
                x.url.clone_from(&r.url);
            }
            if x.leg_id.is_none() {
                x.leg_id.clone_from(&f.leg_id);
            }
            x.duration_ms = x.duration_ms.or(r.duration_ms);
            match step {
                0 => earliest(&mut x.started_at, at),
                1 => earliest(&mut x.stopped_at, at),
                _ => {}
            }
        }
        None => recordings.push(RecordingRecord {
            id: r.recording_id.clone(),
            leg_id: f.leg_id.clone(),
            url: r.url.clone(),
            state: state.into(),
            started_at: (step == 0).then_some(at),
            stopped_at: (step == 1).then_some(at),
            duration_ms: r.duration_ms,
        }),
    }
}

/// The namespace of a Tel4vn call's SIP Call-ID among a call's ids.
const TEL4VN_SIP: &str = "tel4vn-sip";
/// The namespace of a Welljoint recording's id among a call's ids.
const WELLJOINT_RECORDING: &str = "welljoint-rec";

/// The ids of calls an id a user gives may be (`GET /calls/{id}`), most likely first: the id
/// as the hub lists a call's ids (`phonecom:abc`), then a vendor's bare id in every namespace
/// [`aliases_of`] puts ids in (`abc`). A store looks each up by its key, so finding a call
/// costs a few index probes however many calls there are.
pub fn aliases_naming(id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    let spaces = Dialect::ALL
        .iter()
        .map(|d| d.as_str())
        .chain([TEL4VN_SIP, WELLJOINT_RECORDING]);
    out.extend(spaces.map(|space| format!("{space}:{id}")));
    out
}

/// The external ids an event's call is known by, namespaced by dialect. Any shared id joins
/// events into one call.
pub fn aliases_of(event: &Event) -> Vec<String> {
    let fact = &event.fact;
    let d = event.source.dialect.as_str();
    let mut out = Vec::new();
    // A Workonflow call is its thread or its stream, as `Call.created`'s `type` says (its call
    // id); the other events carry both ids and no type, so either may name their call: the
    // thread first, the narrower. (Both are 24-character ids, unique across streams and
    // threads.) In that order of preference, not sorted (see `names_its_call`).
    if event.source.dialect == Dialect::Workonflow && fact.kind != EventKind::LegCreated {
        for key in ["threadId", "streamId"] {
            if let Some(id) = fact.vendor.get(key).and_then(Value::as_str) {
                let alias = format!("{d}:{id}");
                if !out.contains(&alias) {
                    out.push(alias);
                }
            }
        }
        if !out.is_empty() {
            return out;
        }
    }
    if let Some(call) = &fact.call_id {
        out.push(format!("{d}:{call}"));
    }
    match event.source.dialect {
        Dialect::Tel4vn => {
            if let Some(sip) = fact.vendor.get("sip_call_id").and_then(Value::as_str) {
                out.push(format!("{TEL4VN_SIP}:{sip}"));
            }
        }
        Dialect::Welljoint => match &fact.details {
            // A consult call is merged into the call it was made from.
            Details::Transfer(t) => {
                out.extend(t.old_calls.iter().map(|c| format!("{d}:{c}")));
                out.extend(t.new_call.iter().map(|c| format!("{d}:{c}")));
            }
            // `recordStopped` names only the recording: it joins the call its start named.
            Details::Recording(r) => {
                out.extend(
                    r.recording_id
                        .iter()
                        .map(|id| format!("{WELLJOINT_RECORDING}:{id}")),
                );
            }
            _ => {}
        },
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// False for an event whose ids may name its call or only the place around it (a Workonflow
/// member's or `Call.ended`'s thread and stream, in that order of preference): it joins the
/// call its first id that names one names, merges no calls, and adds its ids to no call it
/// found, lest a stream's next call join this one. (When they find none, they are the new
/// call's ids: the call's own is among them.)
pub fn names_its_call(event: &Event) -> bool {
    !(event.source.dialect == Dialect::Workonflow && event.fact.kind != EventKind::LegCreated)
}

/// The device a call event is seen at, where the source keeps a leg per device (Welljoint:
/// `device|call`): the agent logged on there handled that leg.
pub fn device_of(event: &Event) -> Option<&str> {
    if event.source.dialect != Dialect::Welljoint || !matches!(event.fact.details, Details::Leg(_))
    {
        return None;
    }
    let leg = event.fact.leg_id.as_deref()?;
    leg.split_once('|').map(|(device, _)| device)
}

/// True for events that belong to a call.
pub fn is_call_event(event: &Event) -> bool {
    let joinable = event.fact.call_id.is_some()
        || (event.source.dialect == Dialect::Welljoint
            && matches!(&event.fact.details, Details::Recording(r) if r.recording_id.is_some()));
    joinable && !matches!(event.fact.kind, EventKind::AgentState | EventKind::Message | EventKind::ApiError | EventKind::CallbackDeactivated)
        // The hub's own call records are about calls, not facts of them.
        && !(event.source.dialect == Dialect::Canonical && event.source.name.as_deref() == Some("switchboard"))
}

/// A call's events folded in sort order: what [`build`] derives the record from. Kept between
/// events, it lets a new event that sorts after all the others be applied without reading the
/// call's other events again; the result is the same as folding them all.
#[derive(Debug, Clone)]
pub struct CallFold {
    rec: CallRecord,
    legs: Vec<LegRecord>,
    source_end: Option<Timestamp>,
    source_missed: bool,
    log_parties: (Option<Party>, Option<Party>),
    /// When a source's own CDR of the call came (the earliest), and what it said: it ends the
    /// call, but its own time (usually when the PBX got round to it) stretches nothing.
    cdr_at: Option<Timestamp>,
    cdr_figures: Map<String, Value>,
    /// The times of events that carried none of their own (sorted): a record time among them
    /// is the hub's estimate.
    guessed: Vec<Timestamp>,
    /// Devices some event was seen from (a Welljoint `srcDeviceId`/`eventSrc`): the contact
    /// centre's own.
    monitored: Vec<String>,
    /// Some event of the call is to be delivered (not only imported history).
    audible: bool,
    last: Option<(Timestamp, u8, String)>,
    /// For each of `legs` (at the same index): when its latest event occurred, and that
    /// event's rank (the highest of that moment).
    leg_latest: Vec<(Timestamp, u8)>,
    /// How many events were folded.
    folded: usize,
    /// Each leg's place in `legs` by its id, once a call has more legs than a look along them
    /// finds quickly (most calls never do, and keep no table).
    leg_index: Option<HashMap<String, usize>>,
}

/// Legs beyond which a call's fold finds a leg by a table rather than by looking along them.
const INDEXED_LEGS: usize = 16;

fn sort_key(e: &Event) -> (Timestamp, u8, String) {
    (
        e.fact.occurred_at,
        rank(e.fact.kind),
        e.fact.source_key.clone(),
    )
}

impl Default for CallFold {
    fn default() -> Self {
        CallFold {
            rec: CallRecord {
                direction: None,
                direction_inferred: false,
                from: None,
                to: None,
                answered_by: None,
                state: CallState::Initiated,
                started_at: None,
                answered_at: None,
                ended_at: None,
                duration_ms: None,
                talk_ms: None,
                disposition: Disposition::Unknown,
                missed: false,
                transferred: false,
                conferenced: false,
                inferred_end: false,
                hangup: None,
                legs: Vec::new(),
                recordings: Vec::new(),
                agents: Vec::new(),
                source_figures: Map::new(),
                not_understood: 0,
                estimated: Vec::new(),
                last_event_at: None,
            },
            legs: Vec::new(),
            source_end: None,
            source_missed: false,
            log_parties: (None, None),
            cdr_at: None,
            cdr_figures: Map::new(),
            guessed: Vec::new(),
            monitored: Vec::new(),
            audible: false,
            last: None,
            leg_latest: Vec::new(),
            folded: 0,
            leg_index: None,
        }
    }
}

impl CallFold {
    /// Folds a whole set of events, in sort order.
    pub fn of(events: &[Event]) -> CallFold {
        let mut sorted: Vec<&Event> = events.iter().collect();
        sorted.sort_by_cached_key(|e| sort_key(e));
        let mut fold = CallFold::default();
        for e in sorted {
            fold.apply(e);
        }
        fold
    }

    /// True when applying `e` gives the same fold as starting over with it: `e` sorts after
    /// every event folded so far, or it occurred at the same time as the latest of them and
    /// [commutes](Self::commutes) with those it sorts before.
    pub fn follows(&self, e: &Event) -> bool {
        self.follows_last(e)
            || (self
                .last
                .as_ref()
                .is_some_and(|(at, ..)| e.fact.occurred_at == *at)
                && self.commutes(e))
    }

    /// True when `e` sorts after the latest event folded (it becomes the latest).
    fn follows_last(&self, e: &Event) -> bool {
        let f = &e.fact;
        self.last.as_ref().is_none_or(|(at, r, key)| {
            (f.occurred_at, rank(f.kind), f.source_key.as_str()) > (*at, *r, key.as_str())
        })
    }

    /// True when `e`, a leg's event occurring at the same time as the latest events folded,
    /// changes the fold alone, whatever it sorts before: it sorts after its own leg's events
    /// (or it is a new leg), and it does not set the call's direction or agents differently
    /// than they are. (Sources often send a moment's legs in their own order — one leg's end,
    /// then another's start — which sorts the other way.)
    fn commutes(&self, e: &Event) -> bool {
        let f = &e.fact;
        let Details::Leg(l) = &f.details else {
            return false;
        };
        if l.direction.is_some() && self.rec.direction.is_some_and(|d| Some(d) != l.direction) {
            return false;
        }
        if let Some(agent) = &f.agent_id {
            if self.rec.agents.first().is_some_and(|a| a != agent) {
                return false;
            }
        }
        let Some(id) = l.leg.id.as_ref().or(f.leg_id.as_ref()) else {
            return true;
        };
        // A leg not yet heard of is a new leg, whose place among the legs `finish` gives by
        // its times, not by when it was folded; a leg's own events must come in its order
        // (a ringing before the end of that moment), which other legs' do not change.
        self.leg_at(id)
            .is_none_or(|i| self.leg_latest[i] < (f.occurred_at, rank(f.kind)))
    }

    /// Where the leg `id` is in `legs`.
    fn leg_at(&self, id: &str) -> Option<usize> {
        match &self.leg_index {
            Some(index) => index.get(id).copied(),
            None => self.legs.iter().position(|x| x.id == id),
        }
    }

    /// Folds one more event (the caller makes sure it [`follows`](Self::follows)).
    pub fn apply(&mut self, e: &Event) {
        self.folded += 1;
        if self.follows_last(e) {
            self.last = Some(sort_key(e));
        }
        let CallFold {
            rec,
            legs,
            leg_latest,
            leg_index,
            source_end,
            source_missed,
            log_parties,
            cdr_at,
            cdr_figures,
            guessed,
            monitored,
            audible,
            ..
        } = self;
        let f = &e.fact;
        *audible |= !e.silent;
        if f.time_estimated {
            if let Err(i) = guessed.binary_search(&f.occurred_at) {
                guessed.insert(i, f.occurred_at);
            }
        }
        for key in ["srcDeviceId", "eventSrc"] {
            if let Some(device) = f.vendor.get(key).and_then(Value::as_str) {
                if !monitored.iter().any(|m| m == device) {
                    monitored.push(device.to_string());
                }
            }
        }
        if f.kind == EventKind::NotUnderstood {
            // Kept on the timeline and counted; it says nothing the record can use.
            rec.not_understood += 1;
            return;
        }
        // A source's CDR says when the PBX wrote it, not when anything happened on the call.
        if f.kind != EventKind::SourceCdr {
            earliest(&mut rec.started_at, f.occurred_at);
            if rec.last_event_at.is_none_or(|l| f.occurred_at > l) {
                rec.last_event_at = Some(f.occurred_at);
            }
        }
        if let Some(agent) = &f.agent_id {
            if !rec.agents.contains(agent) {
                rec.agents.push(agent.clone());
            }
        }
        match &f.details {
            Details::Leg(l) => {
                if rec.direction.is_none() {
                    rec.direction = l.direction;
                }
                let Some(id) = l.leg.id.clone().or_else(|| f.leg_id.clone()) else {
                    return;
                };
                let at = f.occurred_at;
                let known = match leg_index {
                    Some(index) => index.get(&id).copied(),
                    None => legs.iter().position(|x| x.id == id),
                };
                let idx = match known {
                    Some(i) => {
                        let latest = &mut leg_latest[i];
                        *latest = (*latest).max((at, rank(f.kind)));
                        i
                    }
                    None => {
                        // Room for one more leg, not the four a first push makes room for:
                        // most calls have one to three legs, and the writer keeps the folds
                        // of thousands of calls at once (a leg takes 512 bytes).
                        legs.reserve_exact(1);
                        leg_latest.reserve_exact(1);
                        leg_latest.push((at, rank(f.kind)));
                        match leg_index {
                            Some(index) => {
                                index.insert(id.clone(), legs.len());
                            }
                            None if legs.len() >= INDEXED_LEGS => {
                                let mut index: HashMap<String, usize> = legs
                                    .iter()
                                    .enumerate()
                                    .map(|(i, l)| (l.id.clone(), i))
                                    .collect();
                                index.insert(id.clone(), legs.len());
                                *leg_index = Some(index);
                            }
                            None => {}
                        }
                        legs.push(LegRecord {
                            id,
                            is_first: None,
                            parent: None,
                            from: None,
                            to: None,
                            state: LegState::Initiated,
                            result: None,
                            created_at: None,
                            ringing_at: None,
                            answered_at: None,
                            ended_at: None,
                            hangup: None,
                            source_figures: None,
                            agent: None,
                        });
                        legs.len() - 1
                    }
                };
                let leg = &mut legs[idx];
                if leg.is_first.is_none() {
                    leg.is_first = l.leg.is_first;
                }
                if leg.parent.is_none() {
                    leg.parent.clone_from(&l.parent_leg);
                }
                fill(&mut leg.from, &l.leg.from);
                fill(&mut leg.to, &l.leg.to);
                if leg.agent.is_none() {
                    leg.agent.clone_from(&f.agent_id);
                }
                match f.kind {
                    EventKind::LegCreated => earliest(&mut leg.created_at, at),
                    EventKind::LegRinging => {
                        earliest(&mut leg.ringing_at, at);
                        leg.state = leg.state.max(LegState::Ringing);
                    }
                    EventKind::LegAnswered => {
                        earliest(&mut leg.answered_at, at);
                        if leg.state < LegState::Connected {
                            leg.state = LegState::Connected;
                        }
                    }
                    EventKind::LegHeld => {
                        if matches!(
                            leg.state,
                            LegState::Connected | LegState::Initiated | LegState::Ringing
                        ) {
                            leg.state = LegState::Held;
                        }
                    }
                    EventKind::LegRetrieved if leg.state == LegState::Held => {
                        leg.state = LegState::Connected;
                    }
                    EventKind::LegEnded => {
                        earliest(&mut leg.ended_at, at);
                        leg.state = LegState::Ended;
                        if leg.result.is_none() {
                            leg.result = l.leg.result;
                        }
                        if let Some(h) = &l.hangup {
                            let mine = leg.hangup.get_or_insert_with(Box::default);
                            if mine.by.is_none() {
                                mine.by.clone_from(&h.by);
                            }
                            mine.q850 = mine.q850.or(h.q850);
                            mine.sip_code = mine.sip_code.or(h.sip_code);
                            if mine.text.is_none() {
                                mine.text.clone_from(&h.text);
                            }
                        }
                        for key in LEG_FIGURES {
                            if let Some(v) = f.vendor.get(key) {
                                leg.source_figures
                                    .get_or_insert_with(Box::default)
                                    .entry(key)
                                    .or_insert_with(|| v.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            Details::CallLog(c) => {
                if rec.direction.is_none() {
                    rec.direction = c.direction;
                }
                fill(&mut log_parties.0, &c.from);
                fill(&mut log_parties.1, &c.to);
                match f.kind {
                    EventKind::SourceCdr => {
                        earliest(cdr_at, f.occurred_at);
                        if let Some(id) = &f.call_id {
                            cdr_figures
                                .entry("call_id")
                                .or_insert_with(|| Value::from(id.as_str()));
                        }
                        for key in CALL_FIGURES {
                            if let Some(v) = f.vendor.get(key) {
                                cdr_figures.entry(key).or_insert_with(|| v.clone());
                            }
                        }
                        if f.vendor.get("missed") == Some(&Value::Bool(true)) {
                            *source_missed = true;
                        }
                    }
                    // The hub's own records, when a canonical source sends them back in.
                    _ => {
                        earliest(source_end, f.occurred_at);
                        if f.kind == EventKind::CallMissed {
                            *source_missed = true;
                        }
                    }
                }
            }
            Details::Transfer(_) => {
                if f.kind == EventKind::Conferenced {
                    rec.conferenced = true;
                } else {
                    rec.transferred = true;
                }
            }
            Details::Recording(r) => fold_recording(&mut rec.recordings, e, r),
            _ => {
                if f.kind == EventKind::CallEnded {
                    earliest(source_end, f.occurred_at);
                }
            }
        }
    }

    /// How many events the fold holds.
    pub fn events_folded(&self) -> usize {
        self.folded
    }

    /// True when some event of the call is to be delivered; a call only imported history
    /// made (`?deliver=false`) has its call log stored, not delivered.
    pub fn audible(&self) -> bool {
        self.audible
    }

    /// The record the folded events describe.
    pub fn finish(&self) -> CallRecord {
        let mut rec = self.rec.clone();
        let mut legs = self.legs.clone();
        // Legs in the order they started (by id on a tie), whatever order their events were
        // folded in: everything below that looks for "the first" leg finds the same one
        // either way, so a new leg's event commutes with the others of its moment.
        legs.sort_by(|a, b| {
            (a.created_at.or(a.ringing_at).or(a.answered_at), &a.id)
                .cmp(&(b.created_at.or(b.ringing_at).or(b.answered_at), &b.id))
        });
        let source_end = self.source_end;
        // Who called whom: the first leg's parties, else those of the earliest leg that names
        // them, else the source's CDR's.
        let parties = {
            let first = first_of(&legs);
            let named = |side: fn(&LegRecord) -> &Option<Party>| {
                first
                    .and_then(|l| side(l).clone())
                    .or_else(|| in_start_order(&legs).find_map(|l| side(l).clone()))
            };
            (
                named(|l| &l.from).or_else(|| self.log_parties.0.clone()),
                named(|l| &l.to).or_else(|| self.log_parties.1.clone()),
            )
        };
        // The caller's own leg, as its source marks it, ended: the caller is gone, the call
        // is over (whatever other legs the hub heard no end of).
        let caller_gone = legs
            .iter()
            .any(|l| l.is_first == Some(true) && l.state == LegState::Ended);
        // A source that keeps a leg per device (Welljoint: `device|call`) marks no first leg;
        // the caller's device's leg is the first.
        if !legs.iter().any(|l| l.is_first == Some(true)) {
            if let Some(caller) = parties.0.as_ref().and_then(|p| p.id.as_deref()) {
                for leg in legs.iter_mut().filter(|l| l.is_first.is_none()) {
                    if leg.id == caller
                        || leg
                            .id
                            .strip_prefix(caller)
                            .is_some_and(|rest| rest.starts_with('|'))
                    {
                        leg.is_first = Some(true);
                    }
                }
            }
        }
        let guessed =
            |t: Option<Timestamp>| t.is_some_and(|t| self.guessed.binary_search(&t).is_ok());
        let mut estimated: Vec<&'static str> = Vec::new();
        // A leg whose source says it was answered (a hangup that billed time) without saying
        // when: answered its billed seconds before it ended, as an estimate.
        let mut answer_guessed = vec![false; legs.len()];
        for (i, leg) in legs.iter_mut().enumerate() {
            if leg.answered_at.is_none() && leg.result == Some(LegResult::Answered) {
                if let Some(end) = leg.ended_at {
                    let billed = leg
                        .source_figures
                        .as_deref()
                        .and_then(|f| seconds(f, "billsec"))
                        .unwrap_or(0.0);
                    leg.answered_at = Some(billed_before(end, billed).unwrap_or(end));
                    answer_guessed[i] = true;
                }
            }
        }
        // Who answered: the earliest connected leg that is not the first (the first leg is the
        // caller's, answered by the PBX itself), or the first leg when the call has no other.
        // (By its place among the legs: the writer finishes a call's fold for every event.)
        let has_other = legs.iter().any(|l| l.is_first != Some(true));
        // The index of the earliest answered leg of those `among` admits (by id on a tie).
        let first_answered = |among: &dyn Fn(&LegRecord) -> bool| {
            legs.iter()
                .enumerate()
                .filter(|(_, l)| l.answered_at.is_some() && among(l))
                .min_by(|(_, a), (_, b)| (a.answered_at, &a.id).cmp(&(b.answered_at, &b.id)))
                .map(|(i, _)| i)
        };
        let answered_at = first_answered(&|l| l.is_first != Some(true) || !has_other);
        // A leg answered through a sub-leg (a PBX's extension behind a trunk leg) was answered
        // by whoever its sub-leg reached. (Bounded: a leg is not its own descendant.)
        let answered_at = answered_at.map(|mut i| {
            for _ in 0..legs.len() {
                match first_answered(&|l| l.parent.as_deref() == Some(legs[i].id.as_str())) {
                    Some(c) => i = c,
                    None => break,
                }
            }
            i
        });
        let all_ended = !legs.is_empty() && legs.iter().all(|l| l.state == LegState::Ended);
        let ended = source_end.is_some() || all_ended || caller_gone || self.cdr_at.is_some();
        let ended_at = [source_end, legs.iter().filter_map(|l| l.ended_at).max()]
            .into_iter()
            .flatten()
            .max()
            .or(self.cdr_at);
        let call_answered_at = answered_at.and_then(|i| legs[i].answered_at);
        // While the caller was still on: the first leg had not ended (or ended later).
        let first_leg = legs.iter().find(|l| l.is_first == Some(true));
        let caller_on_after = |end: Timestamp| {
            first_leg.is_some_and(|f| {
                f.ended_at
                    .is_none_or(|fe| fe.as_millisecond() > end.as_millisecond() + SAME_MOMENT_MS)
            })
        };
        let caller_on: Vec<bool> = legs
            .iter()
            .map(|l| l.ended_at.is_some_and(caller_on_after))
            .collect();
        for (i, leg) in legs.iter_mut().enumerate() {
            if leg.state == LegState::Ended && leg.result.is_none() {
                // The caller's own leg, where its source tells only its end (a contact centre
                // sees the caller from its devices), was answered if the call was while the
                // caller was on.
                let caller_answered = leg.is_first == Some(true)
                    && matches!((call_answered_at, leg.ended_at), (Some(a), Some(e)) if e >= a);
                leg.result = Some(if leg.answered_at.is_some() || caller_answered {
                    LegResult::Answered
                } else {
                    LegResult::NoAnswer
                });
            }
            let lost = leg.answered_at.is_none()
                && matches!(
                    leg.result,
                    Some(LegResult::NoAnswer | LegResult::Cancelled) | None
                );
            // Answered elsewhere only if it was still ringing when another leg answered (a
            // ring-all group); a leg that gave up before (a sequential hunt) was not answered.
            let rang_on = match (leg.ended_at, call_answered_at) {
                (Some(end), Some(answer)) => {
                    end.as_millisecond() >= answer.as_millisecond() - SAME_MOMENT_MS
                }
                _ => false,
            };
            if lost
                && leg.is_first != Some(true)
                && answered_at.is_some_and(|a| a != i)
                && leg.state == LegState::Ended
            {
                leg.result = Some(if rang_on {
                    LegResult::AnsweredElsewhere
                } else {
                    // Its ringing was stopped (a PBX "cancels" the leg it gives up on): nobody
                    // answered it.
                    LegResult::NoAnswer
                });
            } else if lost
                && leg.is_first != Some(true)
                && leg.result == Some(LegResult::Cancelled)
                && caller_on[i]
            {
                // Nobody answered anywhere, and the caller stayed on after this leg stopped
                // ringing (rolled over, or to voicemail): the PBX gave up on it, unanswered.
                // (Cancelled stays for a leg stopped because the caller hung up.)
                leg.result = Some(LegResult::NoAnswer);
            }
        }
        let answered = answered_at.map(|i| &legs[i]);
        let first = first_of(&legs);
        rec.from = parties.0;
        rec.to = parties.1;
        // The call's own figures: its source's CDR, else those of the leg that answered, else
        // of the leg that ended last.
        rec.source_figures = if !self.cdr_figures.is_empty() {
            self.cdr_figures.clone()
        } else {
            // (With the leg's own id: the PBX's id of its part of the call, which is what its
            // hooks call `call_id`.)
            answered
                .filter(|l| l.source_figures.is_some())
                .or_else(|| {
                    legs.iter()
                        .filter(|l| l.source_figures.is_some())
                        .max_by(|a, b| (a.ended_at, &a.id).cmp(&(b.ended_at, &b.id)))
                })
                .map(|l| {
                    let mut figures = l.source_figures.as_deref().cloned().unwrap_or_default();
                    figures
                        .entry("call_id")
                        .or_insert_with(|| Value::from(l.id.as_str()));
                    figures
                })
                .unwrap_or_default()
        };
        // A CDR that billed time says the call was answered, even when no answer was heard.
        // (Unless a leg ended with a cause of its own: a real PBX bills seconds on BUSY.)
        let cdr_answered = answered.is_none()
            && !self.cdr_figures.is_empty()
            && figures_say_answered(&self.cdr_figures)
            && !legs.iter().any(|l| {
                matches!(
                    l.result,
                    Some(LegResult::Busy | LegResult::Rejected | LegResult::Failed)
                )
            });
        if let Some(a) = answered {
            rec.answered_by = a.to.clone();
            rec.answered_at = a.answered_at;
            if answered_at.is_some_and(|i| answer_guessed[i]) || guessed(a.answered_at) {
                estimated.push("answered_at");
            }
        } else if cdr_answered {
            rec.answered_by = self.log_parties.1.clone();
            if let (Some(end), Some(billed)) = (ended_at, seconds(&self.cdr_figures, "billsec")) {
                rec.answered_at = billed_before(end, billed);
                estimated.push("answered_at");
            }
        }
        rec.disposition = if answered.is_some() || cdr_answered {
            Disposition::Answered
        } else if !ended {
            Disposition::Unknown
        } else {
            // How the legs that were called ended (the caller's own leg, beside them, says only
            // that the caller gave up, or nothing of its own).
            let results: Vec<LegResult> = legs
                .iter()
                .filter(|l| l.is_first != Some(true) || !has_other)
                .filter_map(|l| l.result)
                .collect();
            let any = |r: LegResult| results.contains(&r);
            if any(LegResult::Busy) {
                Disposition::Busy
            } else if any(LegResult::Rejected) {
                Disposition::Rejected
            } else if any(LegResult::Failed) && !any(LegResult::NoAnswer) {
                Disposition::Failed
            } else if first.and_then(|l| l.result) == Some(LegResult::Cancelled) {
                Disposition::Cancelled
            } else {
                Disposition::NoAnswer
            }
        };
        if ended {
            rec.ended_at = ended_at;
        }
        if rec.started_at.is_none() {
            rec.started_at = self.cdr_at;
        }
        if rec.last_event_at.is_none() {
            rec.last_event_at = self.cdr_at;
        }
        if guessed(rec.started_at) {
            estimated.insert(0, "started_at");
        }
        if guessed(rec.ended_at) {
            estimated.push("ended_at");
        }
        let span = |from: Option<Timestamp>, to: Option<Timestamp>| match (from, to) {
            (Some(s), Some(e)) => Some((e.as_millisecond() - s.as_millisecond()).max(0)),
            _ => None,
        };
        let stated =
            |key: &str| seconds(&rec.source_figures, key).map(|s| (s * 1000.0).round() as i64);
        rec.duration_ms = match stated("duration") {
            Some(ms) if ended => Some(ms),
            _ => {
                if estimated.contains(&"started_at") || estimated.contains(&"ended_at") {
                    estimated.push("duration_ms");
                }
                span(rec.started_at, rec.ended_at)
            }
        };
        rec.talk_ms = match stated("billsec") {
            Some(ms) if ended => Some(ms),
            _ => {
                if rec.answered_at.is_some()
                    && (estimated.contains(&"answered_at") || estimated.contains(&"ended_at"))
                {
                    estimated.push("talk_ms");
                }
                span(rec.answered_at, rec.ended_at)
            }
        };
        rec.estimated = estimated.into_iter().map(str::to_owned).collect();
        if rec.direction.is_none() {
            rec.direction = self.inferred_direction(rec.from.as_ref(), rec.to.as_ref());
            rec.direction_inferred = rec.direction.is_some();
        }
        rec.missed = self.source_missed
            || (ended
                && answered.is_none()
                && !cdr_answered
                && rec.direction == Some(Direction::Inbound));
        rec.hangup = first
            .and_then(|l| l.hangup.as_deref().cloned())
            .or_else(|| {
                legs.iter()
                    .filter(|l| l.hangup.is_some())
                    .max_by_key(|l| l.ended_at)
                    .and_then(|l| l.hangup.as_deref().cloned())
            });
        rec.state = if ended {
            CallState::Ended
        } else if legs.iter().any(|l| l.answered_at.is_some()) {
            CallState::Active
        } else if legs.iter().any(|l| l.state >= LegState::Ringing) {
            CallState::Ringing
        } else {
            CallState::Initiated
        };
        for r in &mut rec.recordings {
            if r.duration_ms.is_none() {
                if let (Some(s), Some(e)) = (r.started_at, r.stopped_at) {
                    r.duration_ms = u64::try_from(e.as_millisecond() - s.as_millisecond()).ok();
                }
            }
        }
        rec.legs = legs;
        rec
    }

    /// The direction no source stated, from which parties are the account's own: a number its
    /// source declared internal, a device some event was seen from (a contact centre's
    /// monitored device), or an extension. An
    /// outside number calling one of them is inbound, one of them calling out is outbound,
    /// two of them make an internal call; anything else stays unknown.
    fn inferred_direction(&self, from: Option<&Party>, to: Option<&Party>) -> Option<Direction> {
        let own = |p: &Party| -> Option<bool> {
            let monitored = [p.id.as_deref(), p.extension.as_deref()]
                .into_iter()
                .flatten()
                .any(|id| self.monitored.iter().any(|m| m == id));
            if p.internal
                || monitored
                || p.kind == PartyKind::Extension
                || (p.extension.is_some() && p.number.is_none())
            {
                Some(true)
            } else if p.number.is_some() {
                Some(false)
            } else {
                None
            }
        };
        match (own(from?)?, own(to?)?) {
            (true, true) => Some(Direction::Internal),
            (true, false) => Some(Direction::Outbound),
            (false, true) => Some(Direction::Inbound),
            (false, false) => None,
        }
    }
}

/// Legs in the order they started; legs heard of only by their end come last.
fn in_start_order(legs: &[LegRecord]) -> impl Iterator<Item = &LegRecord> {
    let mut sorted: Vec<&LegRecord> = legs.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |l: &LegRecord| {
            let at = l.created_at.or(l.ringing_at).or(l.answered_at);
            (at.is_none(), at)
        };
        (key(a), &a.id).cmp(&(key(b), &b.id))
    });
    sorted.into_iter()
}

/// The call's first leg: the one its source marks first, else the one that started first.
fn first_of(legs: &[LegRecord]) -> Option<&LegRecord> {
    legs.iter()
        .find(|l| l.is_first == Some(true))
        .or_else(|| in_start_order(legs).next())
}

/// Builds the record of a call from its events, in any order.
pub fn build(events: &[Event]) -> CallRecord {
    CallFold::of(events).finish()
}

impl CallRecord {
    /// Every party the record names: the call's own, then each leg's.
    pub fn parties(&self) -> impl Iterator<Item = &Party> {
        [&self.from, &self.to, &self.answered_by]
            .into_iter()
            .chain(self.legs.iter().flat_map(|l| [&l.from, &l.to]))
            .flatten()
    }

    /// Closes a call that went quiet without its source saying it ended.
    pub fn infer_end(&mut self) {
        if self.state < CallState::Ended {
            self.inferred_end = true;
            self.state = CallState::Ended;
            self.ended_at = self.last_event_at;
            if self.disposition == Disposition::Unknown {
                self.disposition = if self.answered_at.is_some() {
                    Disposition::Answered
                } else {
                    Disposition::NoAnswer
                };
            }
            self.missed = self.answered_at.is_none() && self.direction == Some(Direction::Inbound);
            let span = |from: Option<Timestamp>, to: Option<Timestamp>| match (from, to) {
                (Some(s), Some(e)) => Some(e.as_millisecond() - s.as_millisecond()),
                _ => None,
            };
            // A source's own figures stand; the rest runs to the last event heard.
            if seconds(&self.source_figures, "duration").is_none() {
                self.duration_ms = span(self.started_at, self.ended_at);
            }
            if seconds(&self.source_figures, "billsec").is_none() {
                self.talk_ms = span(self.answered_at, self.ended_at);
            }
        }
    }

    /// True when the record says something of a call: a leg, a party, a source's own record
    /// or a recording. A "call" made only of events that name no one (a Workonflow
    /// `Call.ended` resent long after its call, which begins the stream's next call) gets no
    /// call log.
    pub fn describes_a_call(&self) -> bool {
        !self.legs.is_empty()
            || self.from.is_some()
            || self.to.is_some()
            || !self.source_figures.is_empty()
            || !self.recordings.is_empty()
    }

    /// A digest of what a call log says, to tell whether a late fact changed it.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let mut copy = self.clone();
        copy.state = CallState::Ended;
        copy.last_event_at = None;
        let bytes = serde_json::to_vec(&copy).expect("JSON");
        hex::encode(&sha2::Sha256::digest(&bytes)[..12])
    }
}
