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
use switchboard_model::{Details, Dialect, Direction, Event, EventKind, Hangup, LegResult, Party};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The call record: what users want to know about a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
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
    /// The sources' own figures (a tel4vn `duration`/`billsec`), beside the hub's.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub source_figures: Map<String, Value>,
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
        EventKind::LegEnded => 6,
        EventKind::CallEnded | EventKind::CallLog | EventKind::CallMissed => 7,
        _ => 5,
    }
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

/// The external ids an event's call is known by, namespaced by dialect. Any shared id joins
/// events into one call.
pub fn aliases_of(event: &Event) -> Vec<String> {
    let fact = &event.fact;
    let d = event.source.dialect.as_str();
    let mut out = Vec::new();
    if let Some(call) = &fact.call_id {
        out.push(format!("{d}:{call}"));
    }
    match event.source.dialect {
        Dialect::Tel4vn => {
            if let Some(sip) = fact.vendor.get("sip_call_id").and_then(Value::as_str) {
                out.push(format!("tel4vn-sip:{sip}"));
            }
        }
        Dialect::Welljoint => {
            // A consult call is merged into the call it was made from.
            if let Details::Transfer(t) = &fact.details {
                out.extend(t.old_calls.iter().map(|c| format!("{d}:{c}")));
                out.extend(t.new_call.iter().map(|c| format!("{d}:{c}")));
            }
        }
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// True for events that belong to a call.
pub fn is_call_event(event: &Event) -> bool {
    event.fact.call_id.is_some() && !matches!(event.fact.kind, EventKind::AgentState | EventKind::Message | EventKind::ApiError | EventKind::CallbackDeactivated)
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
    last: Option<(Timestamp, u8, String)>,
    /// For each of `legs` (at the same index): when its first event and its latest event
    /// occurred.
    leg_times: Vec<(Timestamp, Timestamp)>,
}

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
                last_event_at: None,
            },
            legs: Vec::new(),
            source_end: None,
            source_missed: false,
            log_parties: (None, None),
            last: None,
            leg_times: Vec::new(),
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
    /// changes the fold alone, whatever it sorts before: its leg has no event at that time
    /// yet (or, a new leg, no leg first appeared at that time, so it takes the same place
    /// among the legs), and it does not set the call's direction or agents differently than
    /// they are. (Sources often send a moment's legs in their own order — one leg's end,
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
        match self.legs.iter().position(|x| &x.id == id) {
            Some(i) => self.leg_times[i].1 < f.occurred_at,
            None => self
                .leg_times
                .iter()
                .all(|(appeared, _)| *appeared < f.occurred_at),
        }
    }

    /// Folds one more event (the caller makes sure it [`follows`](Self::follows)).
    pub fn apply(&mut self, e: &Event) {
        if self.follows_last(e) {
            self.last = Some(sort_key(e));
        }
        let CallFold {
            rec,
            legs,
            leg_times,
            source_end,
            source_missed,
            log_parties,
            ..
        } = self;
        let f = &e.fact;
        earliest(&mut rec.started_at, f.occurred_at);
        if rec.last_event_at.is_none_or(|l| f.occurred_at > l) {
            rec.last_event_at = Some(f.occurred_at);
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
                let idx = match legs.iter().position(|x| x.id == id) {
                    Some(i) => {
                        let (appeared, latest) = &mut leg_times[i];
                        *appeared = (*appeared).min(at);
                        *latest = (*latest).max(at);
                        i
                    }
                    None => {
                        // Room for one more leg, not the four a first push makes room for:
                        // most calls have one to three legs, and the writer keeps the folds
                        // of thousands of calls at once (a leg takes 512 bytes).
                        legs.reserve_exact(1);
                        leg_times.reserve_exact(1);
                        leg_times.push((at, at));
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
                earliest(source_end, f.occurred_at);
                if f.kind == EventKind::CallMissed {
                    *source_missed = true;
                }
                for key in ["duration", "billsec", "status"] {
                    if let Some(v) = f.vendor.get(key) {
                        rec.source_figures.insert(key.into(), v.clone());
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
            Details::Recording(r) => {
                let state = match f.kind {
                    EventKind::RecordingStarted => "started",
                    EventKind::RecordingStopped => "stopped",
                    _ => "ready",
                };
                let key = r.recording_id.clone().or_else(|| r.url.clone());
                let existing = rec
                    .recordings
                    .iter_mut()
                    .find(|x| key.is_some() && (x.id.as_ref().or(x.url.as_ref()) == key.as_ref()));
                match existing {
                    Some(x) => {
                        x.state = state.into();
                        if x.url.is_none() {
                            x.url.clone_from(&r.url);
                        }
                        x.duration_ms = x.duration_ms.or(r.duration_ms);
                    }
                    None => rec.recordings.push(RecordingRecord {
                        id: r.recording_id.clone(),
                        leg_id: f.leg_id.clone(),
                        url: r.url.clone(),
                        state: state.into(),
                        duration_ms: r.duration_ms,
                    }),
                }
            }
            _ => {
                if f.kind == EventKind::CallEnded {
                    earliest(source_end, f.occurred_at);
                }
            }
        }
    }

    /// The record the folded events describe.
    pub fn finish(&self) -> CallRecord {
        let mut rec = self.rec.clone();
        let mut legs = self.legs.clone();
        let source_end = self.source_end;
        let source_missed = self.source_missed;
        // Who answered: the earliest connected leg that is not the first (the first leg is the
        // caller's, answered by the PBX itself), or the first leg when the call has no other.
        // (By its place among the legs: the writer finishes a call's fold for every event.)
        let has_other = legs.iter().any(|l| l.is_first != Some(true));
        let answered_at = legs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.answered_at.is_some() && (l.is_first != Some(true) || !has_other))
            .min_by(|(_, a), (_, b)| (a.answered_at, &a.id).cmp(&(b.answered_at, &b.id)))
            .map(|(i, _)| i);
        let all_ended = !legs.is_empty() && legs.iter().all(|l| l.state == LegState::Ended);
        let ended = source_end.is_some() || all_ended;
        let ended_at = [source_end, legs.iter().filter_map(|l| l.ended_at).max()]
            .into_iter()
            .flatten()
            .max();
        for (i, leg) in legs.iter_mut().enumerate() {
            if leg.state == LegState::Ended && leg.result.is_none() {
                leg.result = Some(if leg.answered_at.is_some() {
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
            if lost
                && leg.is_first != Some(true)
                && answered_at.is_some_and(|a| a != i)
                && leg.state == LegState::Ended
            {
                leg.result = Some(LegResult::AnsweredElsewhere);
            }
        }
        let answered = answered_at.map(|i| &legs[i]);
        let first = legs.iter().find(|l| l.is_first == Some(true)).or_else(|| {
            legs.iter().min_by(|a, b| {
                (a.created_at.or(a.ringing_at), &a.id).cmp(&(b.created_at.or(b.ringing_at), &b.id))
            })
        });
        rec.from = first
            .and_then(|l| l.from.clone())
            .or_else(|| self.log_parties.0.clone());
        rec.to = first
            .and_then(|l| l.to.clone())
            .or_else(|| self.log_parties.1.clone());
        if let Some(a) = answered {
            rec.answered_by = a.to.clone();
            rec.answered_at = a.answered_at;
        }
        rec.disposition = if answered.is_some() {
            Disposition::Answered
        } else if !ended {
            Disposition::Unknown
        } else {
            let results: Vec<LegResult> = legs.iter().filter_map(|l| l.result).collect();
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
        rec.duration_ms = match (rec.started_at, rec.ended_at) {
            (Some(s), Some(e)) => Some((e.as_millisecond() - s.as_millisecond()).max(0)),
            _ => None,
        };
        rec.talk_ms = match (rec.answered_at, rec.ended_at) {
            (Some(a), Some(e)) => Some((e.as_millisecond() - a.as_millisecond()).max(0)),
            _ => None,
        };
        rec.missed = source_missed
            || (ended && answered.is_none() && rec.direction == Some(Direction::Inbound));
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
        legs.sort_by(|a, b| {
            (a.created_at.or(a.ringing_at).or(a.answered_at), &a.id)
                .cmp(&(b.created_at.or(b.ringing_at).or(b.answered_at), &b.id))
        });
        rec.legs = legs;
        rec
    }
}

/// Builds the record of a call from its events, in any order.
pub fn build(events: &[Event]) -> CallRecord {
    CallFold::of(events).finish()
}

impl CallRecord {
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
            self.duration_ms = match (self.started_at, self.ended_at) {
                (Some(s), Some(e)) => Some(e.as_millisecond() - s.as_millisecond()),
                _ => None,
            };
            self.talk_ms = match (self.answered_at, self.ended_at) {
                (Some(a), Some(e)) => Some(e.as_millisecond() - a.as_millisecond()),
                _ => None,
            };
        }
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
