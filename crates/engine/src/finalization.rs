//! When a call is finished with, and what the hub says of it then: the rules every store
//! applies to a call's row after an event, and the `call.log` / `call.missed` events a
//! finalized call emits.

use crate::calls::{CallRecord, CallState};
use jiff::Timestamp;
use serde_json::json;
use switchboard_model::{
    normalize_number, AccountId, CallLogFacts, Details, Dialect, Event, EventKind, Fact, Source,
};
use uuid::Uuid;

impl CallState {
    /// The state's name, as stored and as the API says it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Initiated => "initiated",
            CallState::Ringing => "ringing",
            CallState::Active => "active",
            CallState::Ended => "ended",
            CallState::Finalized => "finalized",
        }
    }
}

/// Where a call's row stands once its record is `rec`: its state, and when it is due for
/// finalization. An ended call is due `grace_ms` after the hub first saw it end (`due_ms`,
/// the time it was due before, stands), unless the call log it emitted last (`emitted`, its
/// digest) already says exactly this record: then it stays finalized.
pub fn settle(
    rec: &CallRecord,
    emitted: Option<&str>,
    due_ms: Option<i64>,
    now_ms: i64,
    grace_ms: i64,
) -> (CallState, Option<i64>) {
    if rec.state < CallState::Ended {
        return (rec.state, None);
    }
    // (A call that has not had its call log yet needs no digest to tell.)
    if emitted.is_some_and(|said| said == rec.digest()) {
        (CallState::Finalized, None)
    } else {
        (CallState::Ended, Some(due_ms.unwrap_or(now_ms + grace_ms)))
    }
}

/// The words the call list searches for a call: its numbers (normalized), its extensions
/// (`ext:<number or id>`) and its agents (`agent:<id>`), each once, separated and enclosed by
/// spaces (so a search for ` word ` matches whole words).
pub fn search_words(rec: &CallRecord) -> String {
    let mut words = vec![String::new()];
    for p in rec.parties() {
        if let Some(n) = &p.number {
            words.push(normalize_number(n));
        }
        words.extend(p.extension_names().map(|e| format!("ext:{e}")));
    }
    for a in &rec.agents {
        words.push(format!("agent:{a}"));
    }
    // Each word once: a call that rang the same devices many times lists them once.
    let mut seen = std::collections::HashSet::new();
    words.retain(|w| w.is_empty() || seen.insert(w.clone()));
    words.push(String::new());
    words.join(" ")
}

/// The columns of a call's row that queries filter on, as every store writes them from the
/// call's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallColumns {
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub last_event_at_ms: Option<i64>,
    /// `inbound`, `outbound` or `internal`; `None` when no one knows.
    pub direction: Option<String>,
    pub disposition: String,
    pub missed: bool,
    /// [`search_words`].
    pub search: String,
}

/// The columns of a call's row for its record `rec`.
pub fn columns(rec: &CallRecord) -> CallColumns {
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok().and_then(|v| v.as_str().map(str::to_owned))
    };
    let ms = |t: Option<Timestamp>| t.map(|t| t.as_millisecond());
    CallColumns {
        started_at_ms: ms(rec.started_at),
        ended_at_ms: ms(rec.ended_at),
        last_event_at_ms: ms(rec.last_event_at),
        direction: rec.direction.and_then(|d| name(serde_json::to_value(d))),
        disposition: name(serde_json::to_value(rec.disposition)).unwrap_or_default(),
        missed: rec.missed,
        search: search_words(rec),
    }
}

/// What the hub has said of a call so far, as its row keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Said {
    /// The revision of the last call log (0: none yet).
    pub revision: i64,
    /// The digest of the record the last call log said.
    pub emitted: Option<String>,
    /// A `call.missed` went out for the call (ever).
    pub missed_emitted: bool,
}

/// A call finalized: its record as it stands for good, and what the hub says of it.
#[derive(Debug, Clone)]
pub struct Finalized {
    /// The record, in state `finalized` (its end inferred for a call that went quiet).
    pub record: CallRecord,
    /// The revision of the call log now (one more when a call log is emitted).
    pub revision: i64,
    /// The digest of the record, to tell whether a late fact changes it.
    pub digest: String,
    /// `call.log`, and `call.missed` for a missed call that had none yet; none when the call
    /// log already says this record, or when the record describes no call.
    pub events: Vec<Event>,
}

/// Finalizes a call: `rec` is its record as its events make it, `idle` says it went quiet
/// rather than ended (its end is inferred), `audible` that some event of it was to be
/// delivered (a call only imported history made has its call log stored, not delivered).
/// `now` stamps the events, `next_id` gives their ids.
#[allow(clippy::too_many_arguments)]
pub fn finalize(
    account: AccountId,
    call_id: &str,
    mut rec: CallRecord,
    said: &Said,
    idle: bool,
    audible: bool,
    now: Timestamp,
    mut next_id: impl FnMut() -> Uuid,
) -> Finalized {
    if idle {
        rec.infer_end();
    }
    let digest = rec.digest();
    let mut revision = said.revision;
    let mut events = Vec::new();
    if said.emitted.as_deref() != Some(digest.as_str()) && rec.describes_a_call() {
        revision += 1;
        let call = json!({ "id": call_id, "revision": revision, "record": rec });
        let mut kinds = vec![EventKind::CallLog];
        if rec.missed && !said.missed_emitted {
            kinds.push(EventKind::CallMissed);
        }
        for kind in kinds {
            let mut event = call_event(
                account,
                call_id,
                revision,
                &call,
                &rec,
                kind,
                now,
                &mut next_id,
            );
            event.silent = !audible;
            events.push(event);
        }
    }
    rec.state = CallState::Finalized;
    Finalized {
        record: rec,
        revision,
        digest,
        events,
    }
}

/// The hub's own event about a call: `call.log` or `call.missed`.
#[allow(clippy::too_many_arguments)]
fn call_event(
    account: AccountId,
    call_id: &str,
    revision: i64,
    call: &serde_json::Value,
    rec: &CallRecord,
    kind: EventKind,
    now: Timestamp,
    next_id: &mut impl FnMut() -> Uuid,
) -> Event {
    // The source's own ids and figures first (a tel4vn PBX's `call_id`, `sip_call_id`,
    // `recording_url`), so a dialect that has fields for them says the PBX's, not the hub's;
    // the call's figures are the record's, which are the source's wherever it gave them.
    let mut vendor = rec.source_figures.clone();
    vendor.insert("call".into(), call.clone());
    if let Some(d) = rec.duration_ms {
        vendor.insert("duration".into(), json!(d / 1000));
    }
    vendor.insert("billsec".into(), json!(rec.talk_ms.unwrap_or(0) / 1000));
    if let Some(url) = rec.recordings.iter().find_map(|r| r.url.as_ref()) {
        vendor.entry("recording_url").or_insert_with(|| json!(url));
    }
    let fact = Fact {
        time_estimated: false,
        source_key: match kind {
            EventKind::CallMissed => format!("call-missed:{call_id}"),
            _ => format!("call-log:{call_id}:{revision}"),
        },
        kind,
        occurred_at: rec.ended_at.unwrap_or(now),
        call_id: Some(call_id.to_string()),
        leg_id: None,
        agent_id: None,
        details: Details::CallLog(CallLogFacts {
            direction: rec.direction,
            from: rec.from.clone(),
            to: rec.to.clone(),
        }),
        vendor,
        raw: serde_json::value::to_raw_value(call).expect("a JSON value serializes"),
    };
    let source = Source {
        dialect: Dialect::Canonical,
        name: Some("switchboard".into()),
    };
    crate::stamp(account, &source, now, vec![fact], &mut *next_id).remove(0)
}
