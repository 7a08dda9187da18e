//! Calls: the union of external ids that joins events into calls, the record rebuilt from a
//! call's events, finalization with `call.log` (and `call.missed`), agents, and the queries.

use crate::events::insert_events;
use crate::folds::{alias_key, ActiveCall, CallRow, FoldCache};
use crate::writer::WriteCtx;
use crate::{Result, SqliteStore};
use jiff::Timestamp;
use rusqlite::{params, params_from_iter, types::Value as SqlValue, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use switchboard_engine::calls::{aliases_naming, aliases_of, CallFold, CallRecord};
use switchboard_engine::correlation::{self, NamedCall};
use switchboard_engine::finalization::{self, Said};
use switchboard_model::{normalize_number, AccountId, AgentFacts, Event};
use uuid::Uuid;

/// A call as stored: the hub's id, the record, and what the hub knows around it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredCall {
    pub id: String,
    pub revision: i64,
    pub aliases: Vec<String>,
    pub merged: Value,
    pub record: CallRecord,
    pub finalized: bool,
}

/// An agent's current state.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    pub agent_id: String,
    pub state: String,
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Filters of the call list.
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    pub number: Option<String>,
    pub direction: Option<String>,
    pub disposition: Option<String>,
    pub missed: Option<bool>,
    /// Started at or after (ms).
    pub since_ms: Option<i64>,
    /// Started before (ms).
    pub until_ms: Option<i64>,
    pub agent: Option<String>,
    pub extension: Option<String>,
    /// Keyset cursor: `(started_at ms, id)` of the last item of the previous page.
    pub before: Option<(i64, String)>,
    pub limit: i64,
    /// Only calls still in progress (initiated, ringing or active).
    pub in_progress: bool,
}

fn ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.as_millisecond())
}

/// Joins an event to its call (creating or merging calls as its ids say) and rebuilds the
/// call's record. Returns the hub's call id.
pub(crate) fn correlate(
    conn: &Connection,
    folds: &mut FoldCache,
    unsaved: &mut Unsaved,
    account: AccountId,
    seq: i64,
    event: &Event,
) -> Result<String> {
    let now_ms = unsaved.now_ms;
    let aliases = aliases_of(event);
    let keys: Vec<String> = aliases.iter().map(|a| alias_key(account.0, a)).collect();
    // Each alias with the call it names, if any.
    let mut named: Vec<(String, Option<NamedCall>)> = Vec::with_capacity(aliases.len());
    {
        let mut find = conn.prepare_cached(
            "SELECT call_id FROM call_aliases WHERE account_id = ?1 AND alias = ?2",
        )?;
        for (a, key) in aliases.iter().zip(&keys) {
            // A call the writer holds answers for its aliases; any other is looked up.
            let call = match folds.call_of(key) {
                Some(id) => Some(id.to_string()),
                None => find
                    .query_row(params![account.0, a], |r| r.get::<_, String>(0))
                    .optional()?,
            };
            let call = call.map(|id| NamedCall {
                id,
                ended_at_ms: None,
            });
            named.push((a.clone(), call));
        }
    }
    // Whether the calls named had ended, when the event may begin the next call.
    if correlation::ended_call_window(event).is_some() {
        // That is what their rows say: write the batch's changes to them first.
        let mut ended_at = conn.prepare_cached(
            "SELECT ended_at FROM calls WHERE id = ?1 AND state IN ('ended', 'finalized')",
        )?;
        for call in named.iter_mut().filter_map(|(_, call)| call.as_mut()) {
            unsaved.save(conn, folds, &call.id)?;
            call.ended_at_ms = ended_at
                .query_row([&call.id], |r| r.get::<_, Option<i64>>(0))
                .optional()?
                .flatten();
        }
    }
    let join = correlation::decide(event, named);
    for id in &join.left_behind {
        folds.forget(id);
    }
    let mut created = None;
    let target = match &join.target {
        Some(id) => id.clone(),
        None => {
            let id = Uuid::now_v7().to_string();
            conn.prepare_cached("INSERT INTO calls (id, account_id, created_at, heard_at, record, state) VALUES (?1, ?2, ?3, ?3, '{}', 'initiated')")?
                .execute(params![id, account.0, now_ms])?;
            created = Some(conn.last_insert_rowid());
            id
        }
    };
    // Ids that name different calls join them: the later calls fold into the earliest, as
    // their rows list their events (so the batch's changes to them are written first).
    if !join.merges.is_empty() {
        unsaved.save(conn, folds, &target)?;
        for id in &join.merges {
            unsaved.save(conn, folds, id)?;
        }
    }
    for other in &join.merges {
        conn.execute(
            "UPDATE call_aliases SET call_id = ?1 WHERE call_id = ?2",
            params![target, other],
        )?;
        conn.execute(
            "UPDATE calls SET event_seqs = event_seqs || (SELECT event_seqs FROM calls WHERE id = ?2) WHERE id = ?1",
            params![target, other],
        )?;
        let note = json!({ "merged": other, "at": Timestamp::from_millisecond(now_ms).map(|t| t.to_string()).unwrap_or_default(), "by": event.id.to_string() });
        conn.execute(
            "UPDATE calls SET merged = json_insert(merged, '$[#]', json(?2)) WHERE id = ?1",
            params![target, note.to_string()],
        )?;
        conn.execute("DELETE FROM calls WHERE id = ?1", [other])?;
        folds.forget(other);
    }
    {
        let mut add = conn.prepare_cached(
            "INSERT OR IGNORE INTO call_aliases (account_id, alias, call_id) VALUES (?1, ?2, ?3)",
        )?;
        let mut take = conn.prepare_cached(
            "UPDATE call_aliases SET call_id = ?3 WHERE account_id = ?1 AND alias = ?2",
        )?;
        for a in &join.new_aliases {
            add.execute(params![account.0, a, target])?;
        }
        for a in &join.taken_over {
            take.execute(params![account.0, a, target])?;
        }
    }
    fold_in(
        conn,
        folds,
        unsaved,
        &target,
        Arriving {
            event,
            seq,
            aliases: keys,
            merged: !join.merges.is_empty(),
            created,
        },
    )?;
    Ok(target)
}

/// The event a call's record is rebuilt for.
struct Arriving<'a> {
    event: &'a Event,
    seq: i64,
    /// Its aliases, as the fold cache keys them; all name the call now.
    aliases: Vec<String>,
    /// It joined calls into one (so the call's fold in memory is not the whole call's).
    merged: bool,
    /// Its call was made for it (so the call has no other events): the new row's rowid.
    created: Option<i64>,
}

/// A call's events in log order: the ones its row lists (`event_seqs`, the positions in
/// the event log of the events joined to it, each after a comma).
fn events_of(conn: &Connection, call_id: &str, unsaved: &[i64]) -> Result<Vec<Event>> {
    let listed: String = conn
        .prepare_cached("SELECT event_seqs FROM calls WHERE id = ?1")?
        .query_row([call_id], |r| r.get(0))?;
    let mut seqs: Vec<i64> = listed
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                crate::StoreError::Corrupt(format!(
                    "call {call_id} lists a bad event position: {s:?}"
                ))
            })
        })
        .collect::<Result<_>>()?;
    seqs.extend_from_slice(unsaved);
    seqs.sort_unstable();
    seqs.dedup();
    let mut body_of = conn.prepare_cached("SELECT body FROM events WHERE seq = ?1")?;
    let mut events = Vec::with_capacity(seqs.len());
    for seq in seqs {
        // An event past its retention is gone; the call keeps what remains.
        let Some(body) = body_of
            .query_row([seq], |r| r.get::<_, SqlValue>(0))
            .optional()?
        else {
            continue;
        };
        events.push(crate::body::event_of((&body).into())?);
    }
    Ok(events)
}

/// A call's record as a reader finds it: the one written when the call was finalized, or,
/// for a call still open (or reopened by a late event), folded from its events (asked for
/// only then).
fn record_of<E: std::borrow::Borrow<[Event]>>(
    state: &str,
    stored: &SqlValue,
    events: impl FnOnce() -> Result<E>,
) -> Result<CallRecord> {
    if state == "finalized" {
        Ok(serde_json::from_slice(&crate::body::unpack_json(
            stored.into(),
        )?)?)
    } else {
        Ok(CallFold::of(events()?.borrow()).finish())
    }
}

/// The update of a call's row, with `extra` columns set after the ones every update sets,
/// found by `at` (its id, or its rowid with the id checked too).
macro_rules! update_call {
    ($extra:literal, $at:literal) => {
        concat!(
            "UPDATE calls SET ended_at = ?2, last_event_at = ?3, direction = ?4,
                disposition = ?5, missed = ?6, search = ?7, event_seqs = event_seqs || ?8,
                heard_at = COALESCE(?9, heard_at)",
            $extra,
            $at
        )
    };
}

/// What a finalized call's row remembers of the call log it emitted, besides the digest of
/// the record it said (`CallRow::emitted`): the log's revision, and whether a missed-call
/// event went out (ever).
struct Logged {
    revision: i64,
    missed: bool,
    /// The finalized record's JSON, packed ([`crate::body::pack_json`]).
    record: Vec<u8>,
}

/// An event that joined a call: its position in the log, and when the hub received it (ms).
/// A call goes quiet by when its events arrived, not by the times they carry (a replayed
/// queue or an import is history arriving now).
struct Joined<'a> {
    seqs: &'a [i64],
    heard_ms: i64,
}

/// Writes the columns of a call's row that queries filter on and the indexed ones `row` says,
/// and lists the event `joined` as the call's. When the indexed columns
/// are as `before` (most events of a call), the update names none of them, so SQLite leaves
/// the call's index entries alone.
///
/// The record itself is written only with `logged`, when the call is finalized: until then a
/// call's record is folded from its events by whoever reads it (the writer keeps the fold of
/// active calls in memory), so an event does not rewrite a record that the next event
/// replaces — the record was a third of the writer's work per event, and most of the bytes
/// it wrote.
fn save(
    conn: &Connection,
    call_id: &str,
    rec: &CallRecord,
    row: &CallRow,
    before: Option<&CallRow>,
    joined: Option<Joined<'_>>,
    logged: Option<Logged>,
) -> Result<()> {
    let columns = finalization::columns(rec);
    let unchanged = before.is_some_and(|b| {
        b.state == row.state && b.started_at == row.started_at && b.finalize_at == row.finalize_at
    });
    let listed: String = joined
        .as_ref()
        .map(|j| j.seqs.iter().map(|seq| format!(",{seq}")).collect())
        .unwrap_or_default();
    let heard = joined.as_ref().map(|j| j.heard_ms);
    // A finalized call's row is found by its id; a held call's by its rowid (a step less than
    // by the text id), the id compared on the row.
    let key: &dyn rusqlite::ToSql = match (&logged, &row.rowid) {
        (Some(_), _) => &call_id,
        (None, Some(rowid)) => rowid,
        (None, None) => {
            return Err(crate::StoreError::Corrupt(format!(
                "call {call_id} is held without its row's rowid"
            )))
        }
    };
    let common: [&dyn rusqlite::ToSql; 9] = [
        key,
        &columns.ended_at_ms,
        &columns.last_event_at_ms,
        &columns.direction,
        &columns.disposition,
        &columns.missed,
        &columns.search,
        &listed,
        &heard,
    ];
    let indexed: [&dyn rusqlite::ToSql; 3] = [&row.state, &row.started_at, &row.finalize_at];
    let marks = logged.as_ref().map(|log| -> [&dyn rusqlite::ToSql; 4] {
        [&log.revision, &row.emitted, &log.missed, &log.record]
    });
    // One statement per set of columns, each prepared once.
    let (sql, named): (&str, Vec<&dyn rusqlite::ToSql>) = match (&marks, unchanged) {
        (Some(marks), _) => (
            update_call!(
                ", state = ?10, started_at = ?11, finalize_at = ?12, revision = ?13,
                   emitted_digest = ?14, missed_emitted = missed_emitted OR ?15, record = ?16",
                " WHERE id = ?1"
            ),
            indexed.iter().chain(marks).copied().collect(),
        ),
        (None, true) => (
            update_call!("", " WHERE rowid = ?1 AND id = ?10"),
            vec![&call_id as &dyn rusqlite::ToSql],
        ),
        (None, false) => (
            update_call!(
                ", state = ?10, started_at = ?11, finalize_at = ?12",
                " WHERE rowid = ?1 AND id = ?13"
            ),
            indexed
                .iter()
                .copied()
                .chain([&call_id as &dyn rusqlite::ToSql])
                .collect(),
        ),
    };
    let updated = conn
        .prepare_cached(sql)?
        .execute(params_from_iter(common.iter().chain(&named)))?;
    if marks.is_none() && updated == 0 {
        return Err(crate::StoreError::Corrupt(format!(
            "call {call_id} is not at the row the writer holds for it"
        )));
    }
    Ok(())
}

/// A call's row as it stands, when the writer does not hold the call.
fn read_row(conn: &Connection, call_id: &str) -> Result<CallRow> {
    Ok(conn
        .prepare_cached(
            "SELECT emitted_digest, state, started_at, finalize_at, rowid FROM calls WHERE id = ?1",
        )?
        .query_row([call_id], |r| {
            Ok(CallRow {
                emitted: r.get(0)?,
                state: r.get(1)?,
                started_at: r.get(2)?,
                finalize_at: r.get(3)?,
                rowid: Some(r.get(4)?),
            })
        })?)
}

/// Calls the running batch of events changed whose rows are not written yet, each with the
/// events that joined it (their log positions). A call's record is folded and its row written
/// once per batch, however many of the batch's events it got ([`Unsaved::save_all`], before
/// the batch's job ends), rather than once per event: with the call's every leg in its
/// record, that cost grows with the call, so a flood of one call's events would cost the
/// writer the square of the call's size.
pub(crate) struct Unsaved {
    calls: HashMap<String, Vec<i64>>,
    /// In the order the batch first changed them.
    order: Vec<String>,
    now_ms: i64,
    grace_ms: i64,
    /// The most events a call may have.
    max_events: usize,
}

impl Unsaved {
    pub(crate) fn new(now_ms: i64, grace_ms: i64, max_events: usize) -> Unsaved {
        Unsaved {
            calls: HashMap::new(),
            order: Vec::new(),
            now_ms,
            grace_ms,
            max_events,
        }
    }

    fn pending(&self, call_id: &str) -> &[i64] {
        self.calls
            .get(call_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Writes the call's row, if the batch changed it and it is not written yet.
    fn save(&mut self, conn: &Connection, folds: &mut FoldCache, call_id: &str) -> Result<()> {
        if let Some(seqs) = self.calls.remove(call_id) {
            write_row(conn, folds, call_id, &seqs, self.now_ms, self.grace_ms)?;
        }
        Ok(())
    }

    /// Writes the rows of every call the batch changed.
    pub(crate) fn save_all(&mut self, conn: &Connection, folds: &mut FoldCache) -> Result<()> {
        for call_id in std::mem::take(&mut self.order) {
            self.save(conn, folds, &call_id)?;
        }
        Ok(())
    }
}

/// Folds an event into its call. An event that sorts after all the call's others (or
/// commutes with those of its moment) is applied to the call's fold kept in memory; anything
/// else (an event out of order, a merge, a call not in the cache) folds all the call's
/// events again — the same result either way. The call's row is written at the end of the
/// batch. A call that has `max_events` events already takes no more.
fn fold_in(
    conn: &Connection,
    folds: &mut FoldCache,
    unsaved: &mut Unsaved,
    call_id: &str,
    new: Arriving<'_>,
) -> Result<()> {
    // The row lists the call's events up to the batch; the batch's are listed unsaved.
    let refold = |unsaved: &Unsaved| -> Result<CallFold> {
        let mut events = events_of(conn, call_id, unsaved.pending(call_id))?;
        events.push(new.event.clone());
        Ok(CallFold::of(&events))
    };
    let full = |fold: &CallFold| fold.events_folded() >= unsaved.max_events;
    let known: Vec<bool> = new
        .aliases
        .iter()
        .map(|key| folds.call_of(key) == Some(call_id))
        .collect();
    let mut call = match folds.take(call_id) {
        Some(call) if full(&call.fold) => return Err(too_many(call_id, unsaved)),
        Some(mut call) if !new.merged && call.fold.follows(new.event) => {
            call.fold.apply(new.event);
            call
        }
        Some(mut call) => {
            call.fold = refold(unsaved)?;
            call
        }
        // A call made for this event: its row is as `correlate` wrote it, listing no events.
        None if new.created.is_some() => Box::new(ActiveCall {
            fold: CallFold::of(std::slice::from_ref(new.event)),
            row: CallRow {
                state: "initiated".into(),
                rowid: new.created,
                ..CallRow::default()
            },
            aliases: Vec::new(),
            listed: 0,
        }),
        None => Box::new(ActiveCall {
            fold: refold(unsaved)?,
            row: read_row(conn, call_id)?,
            aliases: Vec::new(),
            listed: 0,
        }),
    };
    // (A refold counts the new event too.)
    if call.fold.events_folded() > unsaved.max_events {
        return Err(too_many(call_id, unsaved));
    }
    // The ids the cache does not know for this call yet (most events add none).
    let unlisted = call.listed.min(call.aliases.len());
    for (key, known) in new.aliases.into_iter().zip(known) {
        if !known && !call.aliases[unlisted..].contains(&key) {
            call.aliases.push(key);
        }
    }
    folds.put(call_id, call);
    match unsaved.calls.get_mut(call_id) {
        Some(seqs) => seqs.push(new.seq),
        None => {
            unsaved.calls.insert(call_id.to_string(), vec![new.seq]);
            unsaved.order.push(call_id.to_string());
        }
    }
    Ok(())
}

fn too_many(call_id: &str, unsaved: &Unsaved) -> crate::StoreError {
    crate::StoreError::CallFull {
        index: None,
        call_id: call_id.to_string(),
        max: unsaved.max_events,
    }
}

/// Writes a call's row from its record, listing the events `seqs` as the call's. An ended
/// call is due for finalization after the grace window, unless its call log already says
/// exactly this.
fn write_row(
    conn: &Connection,
    folds: &mut FoldCache,
    call_id: &str,
    seqs: &[i64],
    now_ms: i64,
    grace_ms: i64,
) -> Result<()> {
    let mut call = match folds.take(call_id) {
        Some(call) => call,
        // The cache had no room for it: folded from the row's events and the batch's.
        None => Box::new(ActiveCall {
            fold: CallFold::of(&events_of(conn, call_id, seqs)?),
            row: read_row(conn, call_id)?,
            aliases: Vec::new(),
            listed: 0,
        }),
    };
    let (fold, before) = (&call.fold, &call.row);
    let rec = fold.finish();
    let (state, finalize_at) = finalization::settle(
        &rec,
        before.emitted.as_deref(),
        before.finalize_at,
        now_ms,
        grace_ms,
    );
    let row = CallRow {
        state: state.as_str().to_string(),
        started_at: ms(rec.started_at),
        finalize_at,
        emitted: before.emitted.clone(),
        rowid: before.rowid,
    };
    save(
        conn,
        call_id,
        &rec,
        &row,
        Some(before),
        Some(Joined {
            seqs,
            heard_ms: now_ms,
        }),
        None,
    )?;
    call.row = row;
    folds.put(call_id, call);
    Ok(())
}

/// Keeps the latest state of an agent.
pub(crate) fn record_agent(
    conn: &Connection,
    account: AccountId,
    agent: &AgentFacts,
    at: Timestamp,
) -> Result<()> {
    let state = serde_json::to_value(agent.state)?
        .as_str()
        .unwrap_or_default()
        .to_string();
    conn.prepare_cached(
        "INSERT INTO agents (account_id, agent_id, state, since, device) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(account_id, agent_id) DO UPDATE SET state = excluded.state, since = excluded.since,
             device = COALESCE(excluded.device, agents.device)
         WHERE excluded.since >= agents.since",
    )?
    .execute(params![account.0, agent.agent_id, state, at.as_millisecond(), agent.device])?;
    Ok(())
}

/// How many calls one finalizer job handles.
const FINALIZE_CHUNK: usize = 32;

/// What one finalizer job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finalized {
    /// `call.log` and `call.missed` events emitted.
    pub events: usize,
    /// More calls were due than one job takes: call again.
    pub more: bool,
}

/// A call due for finalization as the writer found it; the rest of the work (the digest, the
/// call log's events, the record's JSON) is done off the writer's thread from this.
struct DueCall {
    id: String,
    account: AccountId,
    rec: CallRecord,
    revision: i64,
    emitted: Option<String>,
    missed_emitted: bool,
    /// The call's event list when it was read: a call that heard more meanwhile is left for
    /// the next round.
    listed: String,
    /// It went quiet rather than ended: its end is inferred.
    idle: bool,
    /// Some event of it was to be delivered; a call only imported history made has its call
    /// log stored, not delivered.
    audible: bool,
}

/// Reads a due call: its record from the writer's fold when it holds the call, else folded
/// from its events. The call is left as it is.
fn read_due(ctx: &WriteCtx<'_>, call_id: &str, idle: bool) -> Result<Option<DueCall>> {
    let row: Option<(i64, i64, Option<String>, bool, String)> = ctx
        .conn
        .prepare_cached(
            "SELECT account_id, revision, emitted_digest, missed_emitted, event_seqs
               FROM calls WHERE id = ?1",
        )?
        .query_row([call_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((account, revision, emitted, missed_emitted, listed)) = row else {
        return Ok(None);
    };
    let (rec, audible) = match ctx.folds.peek(call_id) {
        Some(call) => (call.fold.finish(), call.fold.audible()),
        None => {
            let fold = CallFold::of(&events_of(ctx.conn, call_id, &[])?);
            (fold.finish(), fold.audible())
        }
    };
    Ok(Some(DueCall {
        id: call_id.to_string(),
        account: AccountId(account),
        rec,
        revision,
        emitted,
        missed_emitted,
        listed,
        idle,
        audible,
    }))
}

/// What finalizing one call writes, made off the writer's thread.
struct Finalization {
    call: DueCall,
    /// The `call.log` (and `call.missed`) events, when the call log changed.
    events: Vec<(Event, Vec<u8>)>,
    digest: String,
    /// The finalized record's JSON, packed as event bodies are, for the row.
    record: Vec<u8>,
}

impl Finalization {
    fn of(call: DueCall, now: Timestamp) -> Result<Finalization> {
        let said = Said {
            revision: call.revision,
            emitted: call.emitted.clone(),
            missed_emitted: call.missed_emitted,
        };
        let done = finalization::finalize(
            call.account,
            &call.id,
            call.rec.clone(),
            &said,
            call.idle,
            call.audible,
            now,
            Uuid::now_v7,
        );
        let events = done
            .events
            .into_iter()
            .map(|e| {
                let body = crate::body::pack_event(&e)?;
                Ok((e, body))
            })
            .collect::<Result<Vec<_>>>()?;
        let record = crate::body::pack_json(&serde_json::to_vec(&done.record)?)?;
        Ok(Finalization {
            call: DueCall {
                rec: done.record,
                revision: done.revision,
                ..call
            },
            events,
            digest: done.digest,
            record,
        })
    }

    /// Writes it, unless the call changed since it was read (an event joined it, or it was
    /// finalized or merged meanwhile): then the call is left for a later round. Returns how
    /// many events it emitted.
    fn write(self, ctx: &mut WriteCtx<'_>, now: Timestamp) -> Result<usize> {
        let Finalization {
            call,
            events,
            digest,
            record,
        } = self;
        let unchanged = ctx
            .conn
            .prepare_cached(
                "SELECT 1 FROM calls WHERE id = ?1 AND event_seqs = ?2 AND state != 'finalized'",
            )?
            .query_row(params![call.id, call.listed], |_| Ok(()))
            .optional()?
            .is_some();
        if !unchanged {
            return Ok(0);
        }
        // A finalized call rarely hears more; a late event folds it again from its events.
        ctx.folds.forget(&call.id);
        if !events.is_empty() {
            insert_events(ctx, call.account, &events, now, 0, usize::MAX)?;
        }
        let row = CallRow {
            state: "finalized".into(),
            started_at: ms(call.rec.started_at),
            finalize_at: None,
            emitted: Some(digest),
            rowid: None,
        };
        let logged = Logged {
            revision: call.revision,
            missed: call.rec.missed,
            record,
        };
        save(
            ctx.conn,
            &call.id,
            &call.rec,
            &row,
            None,
            None,
            Some(logged),
        )?;
        Ok(events.len())
    }
}

/// A round of finalization begun ([`SqliteStore::begin_finalizing`]): the due calls as the writer
/// read them.
pub struct FinalizeRound {
    store: SqliteStore,
    calls: Vec<DueCall>,
    more: bool,
    now: Timestamp,
}

impl FinalizeRound {
    /// Makes the calls' digests, call logs and records off the writer's thread (they were most
    /// of its work per finalized call, and ingest waits for the writer), on the caller's, then
    /// writes each call that has not changed since it was read. A call that an event joined
    /// meanwhile is left for a later round, which folds that event in.
    pub async fn complete(self) -> Result<Finalized> {
        let FinalizeRound {
            store,
            calls,
            more,
            now,
        } = self;
        if calls.is_empty() {
            return Ok(Finalized { events: 0, more });
        }
        // On this task's own thread, a call at a time (each is a fraction of a millisecond),
        // letting the worker's other tasks run in between. (On a blocking-pool thread, the
        // memory the writer then freed stayed with that thread's allocator: 60 MiB more RSS
        // after 5 000 calls.)
        let mut done = Vec::with_capacity(calls.len());
        for call in calls {
            done.push(Finalization::of(call, now)?);
            tokio::task::yield_now().await;
        }
        let (events, latest) = store
            .inner
            .writer
            .write(move |ctx| {
                let mut made = 0;
                for f in done {
                    made += f.write(ctx, now)?;
                }
                let latest: i64 =
                    ctx.conn
                        .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
                Ok((made, latest))
            })
            .await?;
        store.announce(latest);
        Ok(Finalized { events, more })
    }
}

impl SqliteStore {
    /// Finalizes calls whose grace window is over, and closes calls that went quiet, at most
    /// 32 of each (`FINALIZE_CHUNK`) a round; emits their `call.log` (and `call.missed`)
    /// events. Returns how many events were emitted and whether more calls are due. A round
    /// is two small writer jobs (read the calls; write the results) with the work between them
    /// done off the writer's thread, so ingest waits for little of it (many calls ending at
    /// once made one job of 30–50 ms, the worst of the ingest latency).
    pub async fn finalize_due(&self, now: Timestamp) -> Result<Finalized> {
        self.begin_finalizing(now).await?.complete().await
    }

    /// The first half of [`finalize_due`](Self::finalize_due): the writer finds the due calls
    /// and reads their records (from its folds), changing nothing.
    pub async fn begin_finalizing(&self, now: Timestamp) -> Result<FinalizeRound> {
        let idle_ms = self.inner.calls.idle_timeout.as_millis() as i64;
        let (calls, more) = self
            .inner
            .writer
            .write(move |ctx| {
                let now_ms = now.as_millisecond();
                let chunk = FINALIZE_CHUNK as i64;
                let due: Vec<String> = ctx
                    .conn
                    .prepare_cached("SELECT id FROM calls WHERE finalize_at IS NOT NULL AND finalize_at <= ?1 ORDER BY finalize_at LIMIT ?2")?
                    .query_map(params![now_ms, chunk], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let quiet: Vec<String> = ctx
                    .conn
                    .prepare_cached(
                        // The open states as the index `calls_open` names them, so it is used.
                        // Quiet by the hub's clock: made and last heard before the cut-off.
                        "SELECT id FROM calls
                          WHERE (state = 'initiated' OR state = 'ringing' OR state = 'active')
                            AND created_at < ?1 AND heard_at < ?1 LIMIT ?2",
                    )?
                    .query_map(params![now_ms - idle_ms, chunk], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let more = due.len() == FINALIZE_CHUNK || quiet.len() == FINALIZE_CHUNK;
                let mut calls = Vec::with_capacity(due.len() + quiet.len());
                for (id, idle) in due.iter().map(|id| (id, false)).chain(quiet.iter().map(|id| (id, true))) {
                    calls.extend(read_due(ctx, id, idle)?);
                }
                Ok((calls, more))
            })
            .await?;
        Ok(FinalizeRound {
            store: self.clone(),
            calls,
            more,
            now,
        })
    }

    /// A call by the hub's id or by any external id it is known by.
    pub async fn call(
        &self,
        account: AccountId,
        id: String,
    ) -> Result<Option<(StoredCall, Vec<Event>)>> {
        self.inner
            .readers
            .read(move |conn| {
                let mut by_alias: Option<String> = None;
                let mut lookup = conn.prepare_cached(
                    "SELECT call_id FROM call_aliases WHERE account_id = ?1 AND alias = ?2",
                )?;
                for alias in aliases_naming(&id) {
                    by_alias = lookup
                        .query_row(params![account.0, alias], |r| r.get(0))
                        .optional()?;
                    if by_alias.is_some() {
                        break;
                    }
                }
                let call_id = by_alias.unwrap_or(id);
                let row: Option<(SqlValue, i64, String, String)> = conn
                    .query_row(
                        "SELECT record, revision, merged, state FROM calls WHERE id = ?1 AND account_id = ?2",
                        params![call_id, account.0],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let Some((record, revision, merged, state)) = row else { return Ok(None) };
                let aliases: Vec<String> = conn
                    .prepare_cached("SELECT alias FROM call_aliases WHERE call_id = ?1 ORDER BY alias")?
                    .query_map([&call_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut events = events_of(conn, &call_id, &[])?;
                let record = record_of(&state, &record, || Ok(&events[..]))?;
                events.sort_by(|a, b| (a.fact.occurred_at, &a.fact.source_key).cmp(&(b.fact.occurred_at, &b.fact.source_key)));
                let call = StoredCall {
                    id: call_id,
                    revision,
                    aliases,
                    merged: serde_json::from_str(&merged)?,
                    record,
                    finalized: state == "finalized",
                };
                Ok(Some((call, events)))
            })
            .await
    }

    /// One page of an account's calls, newest first.
    pub async fn calls(&self, account: AccountId, q: CallQuery) -> Result<(i64, Vec<StoredCall>)> {
        self.inner
            .readers
            .read(move |conn| {
                let mut sql = String::from(" FROM calls WHERE account_id = ? AND event_seqs != ''");
                let mut args: Vec<SqlValue> = vec![SqlValue::Integer(account.0)];
                let mut eq = |sql: &mut String, col: &str, v: Option<SqlValue>| {
                    if let Some(v) = v {
                        sql.push_str(&format!(" AND {col} = ?"));
                        args.push(v);
                    }
                };
                eq(&mut sql, "direction", q.direction.clone().map(SqlValue::Text));
                eq(&mut sql, "disposition", q.disposition.clone().map(SqlValue::Text));
                eq(&mut sql, "missed", q.missed.map(|m| SqlValue::Integer(i64::from(m))));
                if q.in_progress {
                    sql.push_str(" AND state IN ('initiated', 'ringing', 'active')");
                }
                let mut words = Vec::new();
                if let Some(n) = &q.number {
                    words.push(normalize_number(n));
                }
                if let Some(e) = &q.extension {
                    words.push(format!("ext:{e}"));
                }
                if let Some(a) = &q.agent {
                    words.push(format!("agent:{a}"));
                }
                for w in words {
                    sql.push_str(" AND instr(search, ?) > 0");
                    args.push(SqlValue::Text(format!(" {w} ")));
                }
                if let Some(s) = q.since_ms {
                    sql.push_str(" AND started_at >= ?");
                    args.push(SqlValue::Integer(s));
                }
                if let Some(u) = q.until_ms {
                    sql.push_str(" AND started_at < ?");
                    args.push(SqlValue::Integer(u));
                }
                let total: i64 = conn.query_row(&format!("SELECT COUNT(*){sql}"), params_from_iter(args.iter()), |r| r.get(0))?;
                if let Some((at, id)) = &q.before {
                    sql.push_str(" AND (started_at < ? OR (started_at = ? AND id < ?))");
                    args.push(SqlValue::Integer(*at));
                    args.push(SqlValue::Integer(*at));
                    args.push(SqlValue::Text(id.clone()));
                }
                args.push(SqlValue::Integer(q.limit));
                let mut stmt = conn.prepare(&format!("SELECT id, record, revision, merged, state{sql} ORDER BY started_at DESC, id DESC LIMIT ?"))?;
                let rows = stmt
                    .query_map(params_from_iter(args.iter()), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, SqlValue>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut alias_stmt = conn.prepare_cached("SELECT alias FROM call_aliases WHERE call_id = ?1 ORDER BY alias")?;
                let mut out = Vec::new();
                for (id, record, revision, merged, state) in rows {
                    let aliases = alias_stmt.query_map([&id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
                    out.push(StoredCall {
                        record: record_of(&state, &record, || events_of(conn, &id, &[]))?,
                        id,
                        revision,
                        aliases,
                        merged: serde_json::from_str(&merged)?,
                        finalized: state == "finalized",
                    });
                }
                Ok((total, out))
            })
            .await
    }

    /// Every agent of the account with its current state and since when.
    pub async fn agents(&self, account: AccountId) -> Result<Vec<AgentRow>> {
        self.inner
            .readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached("SELECT agent_id, state, since, device FROM agents WHERE account_id = ?1 ORDER BY agent_id")?;
                let rows = stmt
                    .query_map([account.0], |r| {
                        let since: i64 = r.get(2)?;
                        Ok(AgentRow {
                            agent_id: r.get(0)?,
                            state: r.get(1)?,
                            since: Timestamp::from_millisecond(since).map(|t| t.to_string()).unwrap_or_default(),
                            device: r.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
    }
}
