//! The outbox: one row per (event, listener), written with the event, worked off by the
//! delivery workers.
//!
//! A worker *claims* due rows (a read: the rows it has in flight are kept in its memory and
//! left out of later claims), sends, then records the attempt and the row's new state. A crash
//! forgets what was in flight, so those rows are sent again: delivery is at-least-once. (Rows
//! leased by older versions, with `leased` set, are released at start-up.) Per listener, a
//! row whose call has an earlier row still pending is not due: the events of one call go out
//! in order.
//!
//! A delivery to a callback that is switched off, with no fallback on, *waits*: it stays the
//! head of its call's queue (`pending`) with [`WAITING`] as its due time, so no claim sees it
//! and its retries are not spent, until the callback (or its fallback) is switched on again;
//! then it is due at once, and the rest of its call follow in order. A delivery that waited
//! longer than the wait limit is `expired` ([`SqliteStore::expire_waiting`]).

use crate::events::dialect_of_version;
use crate::resources::{get_in, Kind, Owner, Resource};
use crate::writer::WriteCtx;
use crate::{Result, SqliteStore};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_model::{AccountId, Dialect, Event};

/// The due time of a delivery that waits for its callback to be switched on: never, until
/// [`release_waiting`] makes it now.
pub const WAITING: i64 = i64::MAX;

/// The account's callbacks, each with whether its deliveries can go anywhere: it is on, or
/// its fallback is.
fn deliverability(conn: &Connection, account: AccountId) -> Result<Vec<(i64, bool)>> {
    let callbacks = crate::resources::all_in(conn, Kind::Callback, account)?;
    Ok(deliverable(&callbacks))
}

/// Whether each of an account's callbacks can deliver: it is on, or its fallback is.
pub(crate) fn deliverable(callbacks: &[Resource]) -> Vec<(i64, bool)> {
    let on = |id: i64| {
        callbacks
            .iter()
            .any(|c| c.id == id && c.body.get("enabled").and_then(|e| e.as_bool()) != Some(false))
    };
    callbacks
        .iter()
        .map(|c| {
            let fallback = c.body.get("fallback_callback_id").and_then(|f| f.as_i64());
            (c.id, on(c.id) || fallback.is_some_and(on))
        })
        .collect()
}

/// After an account's callbacks changed (switched on or off, a fallback set): the deliveries
/// of a callback whose events can go nowhere wait; those of one that can again are due now.
pub(crate) fn release_waiting(conn: &Connection, account: AccountId, now_ms: i64) -> Result<()> {
    let mut wait = conn.prepare_cached(
        "UPDATE outbox SET next_attempt_at = ?2 WHERE callback_id = ?1 AND status = 'pending'
            AND next_attempt_at != ?2",
    )?;
    let mut release = conn.prepare_cached(
        "UPDATE outbox SET next_attempt_at = ?3 WHERE callback_id = ?1 AND status = 'pending'
            AND next_attempt_at = ?2",
    )?;
    for (callback, deliverable) in deliverability(conn, account)? {
        if deliverable {
            release.execute(params![callback, WAITING, now_ms])?;
        } else {
            wait.execute(params![callback, WAITING])?;
        }
    }
    Ok(())
}

/// What a claim picked, and when the next delivery falls due.
#[derive(Debug, Default)]
pub struct Claim {
    pub deliveries: Vec<ClaimedDelivery>,
    /// The earliest time after the claim's `now_ms` at which a callback with nothing due has a
    /// delivery falling due. (A delivery due already and not picked — its callback full, or
    /// the one before it in its call still in flight — is picked after a send finishes, which
    /// wakes the dispatcher.)
    pub next_due_ms: Option<i64>,
}

/// How many more requests each callback may have in flight now.
#[derive(Debug, Clone, Default)]
pub struct CallbackSlots {
    pub free: HashMap<i64, usize>,
    /// For callbacks with nothing in flight.
    pub default: usize,
}

impl CallbackSlots {
    fn free(&self, callback: i64) -> usize {
        self.free.get(&callback).copied().unwrap_or(self.default)
    }
}

/// The outbox rows a worker has claimed and not yet recorded, with the callback each was
/// claimed for: claims leave them out.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    /// Row → the callback it was claimed for.
    rows: HashMap<i64, i64>,
    per_callback: HashMap<i64, usize>,
}

impl InFlight {
    /// A row claimed for `callback`.
    pub fn insert(&mut self, id: i64, callback: i64) {
        if self.rows.insert(id, callback).is_none() {
            *self.per_callback.entry(callback).or_default() += 1;
        }
    }

    /// The rows in flight.
    pub fn ids(&self) -> Vec<i64> {
        self.rows.keys().copied().collect()
    }

    /// A row no longer in flight (its outcome is recorded).
    pub fn remove(&mut self, id: i64) {
        if let Some(callback) = self.rows.remove(&id) {
            if let std::collections::hash_map::Entry::Occupied(mut n) =
                self.per_callback.entry(callback)
            {
                *n.get_mut() -= 1;
                if *n.get() == 0 {
                    n.remove();
                }
            }
        }
    }

    fn contains(&self, id: i64) -> bool {
        self.rows.contains_key(&id)
    }

    fn of_callback(&self, callback: i64) -> usize {
        self.per_callback.get(&callback).copied().unwrap_or(0)
    }
}

/// The stored events claims parsed lately, by log position, so an event going to several
/// listeners is read and parsed once even when its deliveries are claimed at different times
/// (with ten listeners, claims a few rows at a time parsed each event several times). The
/// oldest positions leave first: claims move forward through the log.
#[derive(Debug, Default)]
pub(crate) struct ParsedEvents {
    events: std::sync::Mutex<std::collections::BTreeMap<i64, Arc<Event>>>,
}

/// How many parsed events claims keep (a few KiB each).
const PARSED_EVENTS: usize = 2048;

impl ParsedEvents {
    fn get(&self, seq: i64) -> Option<Arc<Event>> {
        self.events
            .lock()
            .expect("parsed events")
            .get(&seq)
            .cloned()
    }

    fn keep(&self, seq: i64, event: Arc<Event>) {
        let mut events = self.events.lock().expect("parsed events");
        events.insert(seq, event);
        while events.len() > PARSED_EVENTS {
            events.pop_first();
        }
    }
}

/// A claimed row's event as the claim's read found it: parsed by an earlier claim, or the
/// stored body, parsed after the read.
enum StoredEvent {
    Parsed(Arc<Event>),
    Body(rusqlite::types::Value),
}

/// A delivery handed to a worker. (Inside the store, `E` is first the stored event's log
/// position; each event is read and parsed once, however many listeners it goes to, off the
/// writer's thread, and kept in `ParsedEvents` for later claims.)
#[derive(Debug, Clone)]
pub struct ClaimedDelivery<E = Arc<Event>> {
    pub outbox_id: i64,
    /// The callback the row was written for (the one `callback` was read from).
    pub callback_id: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    pub event: E,
    pub listener_id: i64,
    pub listener_extension_id: Option<i64>,
    /// The one vendor event the listener wants (a tel4vn hook's `event`), if it named one.
    pub only_event: Option<String>,
    /// The dialect the listener receives; `None` when the listener is gone.
    pub dialect: Option<Dialect>,
    /// The callback, or `None` when it was deleted (shared by the claim's deliveries to it).
    pub callback: Option<Arc<Resource>>,
    /// The callback's fallback, when it has one.
    pub fallback: Option<Arc<Resource>>,
    /// The call the delivery is of (its order key), when it is of one.
    pub call_id: Option<String>,
    /// The direction the hub concluded for that call, when a translation needs it (filled in
    /// by the dispatcher, off the writer: [`SqliteStore::call_directions`]).
    pub call_direction: Option<switchboard_model::Direction>,
}

impl<E> ClaimedDelivery<E> {
    fn with_event<F>(self, event: F) -> ClaimedDelivery<F> {
        ClaimedDelivery {
            outbox_id: self.outbox_id,
            callback_id: self.callback_id,
            attempts: self.attempts,
            event,
            listener_id: self.listener_id,
            listener_extension_id: self.listener_extension_id,
            only_event: self.only_event,
            dialect: self.dialect,
            callback: self.callback,
            fallback: self.fallback,
            call_id: self.call_id,
            call_direction: self.call_direction,
        }
    }
}

/// What the worker decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    /// Try again at this time (ms since the epoch).
    RetryAt(i64),
    Dead,
    /// Not attempted (the hub had no place for it): look again at this time.
    HoldUntil(i64),
    /// Not attempted: its callback is switched off, with no fallback on. It waits, its
    /// retries unspent, until the callback is switched on again.
    Wait,
    /// Not attempted: send it to this callback instead (the fallback of a disabled one).
    Reroute(i64),
}

impl Next {
    /// What became of the attempt, in a word (for traces and logs).
    pub fn name(&self) -> &'static str {
        match self {
            Next::Succeeded => "succeeded",
            Next::RetryAt(_) => "retry",
            Next::Dead => "dead",
            Next::HoldUntil(_) => "held",
            Next::Wait => "waiting",
            Next::Reroute(_) => "rerouted",
        }
    }
}

/// A callback the hub switched off while recording attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivation {
    pub account: AccountId,
    pub callback_id: i64,
    pub reason: String,
}

/// One attempt's result, as the worker saw it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub outbox_id: i64,
    pub callback_id: i64,
    /// The receiver answered 410 Gone: switch the callback off at once.
    pub gone: bool,
    pub at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_prefix: Option<String>,
    pub next: Next,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryStatus {
    Pending,
    FailedRetrying,
    /// Its callback is switched off (with no fallback on): sent when it is switched on.
    Waiting,
    /// It waited longer than the wait limit for its callback to be switched on: never sent.
    Expired,
    Succeeded,
    Dead,
    Suppressed,
}

/// How a callback is doing, as the console shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackHealth {
    pub callback_id: i64,
    /// Since when (ms) its attempts have been failing, with no success since.
    pub failing_since: Option<i64>,
    pub last_success: Option<i64>,
    /// Of its latest deliveries (up to [`RECENT_DELIVERIES`]): how many were made, and how
    /// many failed (given up on, or failed at least once and still to be made).
    pub succeeded: u32,
    pub failed: u32,
}

/// How many of a callback's latest deliveries its health is read from.
pub const RECENT_DELIVERIES: i64 = 100;

/// The columns a delivery is read from, in this order.
const DELIVERY_COLUMNS: &str = "o.id, e.id, o.listener_id, o.callback_id, o.status, o.attempts,
    o.next_attempt_at, o.last_error, o.created_at";

/// A delivery of a row of [`DELIVERY_COLUMNS`]; `stopped`: its callback can deliver nowhere.
fn delivery_of_row(r: &rusqlite::Row<'_>, stopped: bool) -> rusqlite::Result<DeliveryRecord> {
    let status: String = r.get(4)?;
    Ok(delivery_record(
        DeliveryRow {
            id: r.get(0)?,
            event_id: r.get(1)?,
            listener_id: r.get(2)?,
            callback_id: r.get(3)?,
            status: &status,
            attempts: r.get(5)?,
            due: r.get(6)?,
            last_error: r.get(7)?,
            created_at: r.get(8)?,
        },
        stopped,
    ))
}

/// An outbox row as a delivery's history shows it (both stores read these columns).
pub(crate) struct DeliveryRow<'a> {
    pub id: i64,
    pub event_id: String,
    pub listener_id: i64,
    pub callback_id: i64,
    pub status: &'a str,
    pub attempts: u32,
    pub due: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// The delivery a row is, its status as users see it (`stopped`: its callback can deliver
/// nowhere, so what is unfinished waits).
pub(crate) fn delivery_record(row: DeliveryRow<'_>, stopped: bool) -> DeliveryRecord {
    let status = match row.status {
        "succeeded" => DeliveryStatus::Succeeded,
        "dead" => DeliveryStatus::Dead,
        "suppressed" => DeliveryStatus::Suppressed,
        "expired" => DeliveryStatus::Expired,
        _ if row.due == WAITING || stopped => DeliveryStatus::Waiting,
        _ if row.attempts > 0 => DeliveryStatus::FailedRetrying,
        _ => DeliveryStatus::Pending,
    };
    let pending = matches!(
        status,
        DeliveryStatus::Pending | DeliveryStatus::FailedRetrying
    );
    DeliveryRecord {
        id: row.id,
        event_id: row.event_id,
        listener_id: row.listener_id,
        callback_id: row.callback_id,
        status,
        attempts: row.attempts,
        next_attempt_at: pending.then_some(row.due),
        last_error: row.last_error,
        created_at: row.created_at,
        attempt_log: Vec::new(),
    }
}

/// Counts one of a callback's recent deliveries into its health: made, or failed (given up
/// on, or failed at least once and still to be made).
pub(crate) fn tally(health: &mut CallbackHealth, status: &str, attempts: u32) {
    match status {
        "succeeded" => health.succeeded += 1,
        "dead" | "expired" => health.failed += 1,
        _ if attempts > 0 => health.failed += 1,
        _ => {}
    }
}

/// The revision of a call log, from its source key (`…:revision`).
pub(crate) fn revision_of(source_key: &str) -> i64 {
    source_key
        .rsplit(':')
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Each delivery's attempts, in order.
fn with_attempts(conn: &Connection, items: &mut [DeliveryRecord]) -> Result<()> {
    let mut attempts = conn.prepare_cached(
        "SELECT at, status_code, latency_ms, error, response_prefix FROM attempts
         WHERE outbox_id = ?1 ORDER BY id",
    )?;
    for item in items {
        item.attempt_log = attempts
            .query_map([item.id], |r| {
                Ok(AttemptRecord {
                    at: r.get(0)?,
                    status_code: r.get(1)?,
                    latency_ms: r.get(2)?,
                    error: r.get(3)?,
                    response: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(())
}

/// What a call's page shows of what was delivered about it.
#[derive(Debug, Clone, Default)]
pub struct CallDeliveries {
    /// Every delivery of the call's events and of its call logs, with the event's kind.
    pub deliveries: Vec<(String, DeliveryRecord)>,
    /// Its call logs (and missed-call events), oldest first: (event id, kind, revision, when
    /// in ms).
    pub call_logs: Vec<(String, String, i64, i64)>,
}

/// One page of a callback's deliveries.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    /// How many it has in all.
    pub total: i64,
    /// How many of them wait for it to be switched on.
    pub waiting: i64,
    pub items: Vec<DeliveryRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub at: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: String,
    pub listener_id: i64,
    pub callback_id: i64,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub attempt_log: Vec<AttemptRecord>,
}

/// Releases leases a previous process left behind, so their rows are sent again now.
pub(crate) fn release_leases(conn: &Connection) -> Result<()> {
    let now = jiff::Timestamp::now().as_millisecond();
    let n = conn.execute(
        "UPDATE outbox SET leased = 0, next_attempt_at = ?1 WHERE status = 'pending' AND leased = 1",
        [now],
    )?;
    if n > 0 {
        tracing::info!(
            deliveries = n,
            "resuming deliveries that were in flight at the last stop"
        );
    }
    Ok(())
}

impl SqliteStore {
    /// Picks up to `limit` due deliveries that are not `in_flight`, no more per callback than
    /// `slots` has room for, and says when the next delivery falls due. Nothing is written: the
    /// caller holds the picked rows in flight in memory until their outcome is recorded (a
    /// crash forgets them, so they are sent again: delivery is at-least-once).
    pub async fn claim_due(
        &self,
        now_ms: i64,
        limit: i64,
        slots: CallbackSlots,
        in_flight: Arc<InFlight>,
    ) -> Result<Claim> {
        let store = self.clone();
        let (picked, stored, next_due_ms): (
            Vec<ClaimedDelivery<i64>>,
            HashMap<i64, StoredEvent>,
            Option<i64>,
        ) = self
            .inner
            .readers
            .read(move |conn| {
                let parsed = &store.inner.claimed_events;
                // One index step per callback (not a scan of every due row): the earliest
                // pending row of each callback, in callback order.
                let mut due: Vec<i64> = Vec::new();
                let mut next = conn.prepare_cached(
                    "SELECT callback_id, next_attempt_at FROM outbox INDEXED BY outbox_due_by_callback
                     WHERE status = 'pending' AND callback_id > ?1
                     ORDER BY callback_id, next_attempt_at LIMIT 1",
                )?;
                let mut after = i64::MIN;
                let mut next_due_ms: Option<i64> = None;
                while let Some((callback, at)) = next
                    .query_row([after], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .optional()?
                {
                    if at <= now_ms {
                        due.push(callback);
                    } else {
                        next_due_ms = Some(next_due_ms.map_or(at, |n| n.min(at)));
                    }
                    after = callback;
                }
                // Per callback with due rows, no more rows than it has free senders: nothing
                // picked has to be handed back. Rows in flight are still due, so the window is
                // widened by the callback's own rows in flight and they are skipped here.
                let mut ids_of = conn.prepare_cached(
                    "SELECT id FROM outbox INDEXED BY outbox_due_by_callback
                     WHERE callback_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2
                     ORDER BY next_attempt_at, id LIMIT ?3",
                )?;
                let mut chosen: Vec<i64> = Vec::new();
                for callback in due {
                    let room = (limit - chosen.len() as i64).min(slots.free(callback) as i64);
                    if room <= 0 {
                        continue;
                    }
                    let window = room + in_flight.of_callback(callback) as i64;
                    let ids = ids_of
                        .query_map(params![callback, now_ms, window], |r| r.get::<_, i64>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    chosen.extend(
                        ids.into_iter()
                            .filter(|id| !in_flight.contains(*id))
                            .take(room as usize),
                    );
                    if chosen.len() as i64 >= limit {
                        break;
                    }
                }
                let mut row_of = conn.prepare_cached(
                    "SELECT id, attempts, account_id, listener_id, callback_id, event_seq, call_id
                     FROM outbox WHERE id = ?1",
                )?;
                let mut rows = Vec::with_capacity(chosen.len());
                for id in chosen {
                    rows.push(row_of.query_row([id], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, u32>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    })?);
                }
                let mut listeners: HashMap<i64, Option<Resource>> = HashMap::new();
                let mut callbacks: HashMap<i64, Option<Arc<Resource>>> = HashMap::new();
                let mut out = Vec::with_capacity(rows.len());
                let mut body_of = conn.prepare_cached("SELECT body FROM events WHERE seq = ?1")?;
                let mut stored: HashMap<i64, StoredEvent> = HashMap::new();
                for (id, attempts, account, listener_id, callback_id, seq, call_id) in rows {
                    if let std::collections::hash_map::Entry::Vacant(slot) = stored.entry(seq) {
                        slot.insert(match parsed.get(seq) {
                            Some(event) => StoredEvent::Parsed(event),
                            None => StoredEvent::Body(body_of.query_row([seq], |r| r.get(0))?),
                        });
                    }
                    let owner = Owner {
                        account: AccountId(account),
                        extension_id: None,
                    };
                    if let std::collections::hash_map::Entry::Vacant(slot) = listeners.entry(listener_id) {
                        slot.insert(get_in(conn, Kind::Listener, owner, None, listener_id)?);
                    }
                    if let std::collections::hash_map::Entry::Vacant(slot) = callbacks.entry(callback_id) {
                        slot.insert(get_in(conn, Kind::Callback, owner, None, callback_id)?.map(Arc::new));
                    }
                    let fallback_id = callbacks[&callback_id]
                        .as_ref()
                        .and_then(|c| c.body.get("fallback_callback_id").and_then(|f| f.as_i64()));
                    if let Some(fid) = fallback_id {
                        if let std::collections::hash_map::Entry::Vacant(slot) = callbacks.entry(fid) {
                            slot.insert(get_in(conn, Kind::Callback, owner, None, fid)?.map(Arc::new));
                        }
                    }
                    let listener = listeners[&listener_id].as_ref();
                    let dialect = listener.and_then(|l| {
                        dialect_of_version(
                            l.body
                                .get("version")
                                .and_then(|v| v.as_str())
                                .unwrap_or("2.0.0"),
                        )
                    });
                    out.push(ClaimedDelivery {
                        outbox_id: id,
                        callback_id,
                        attempts,
                        event: seq,
                        listener_id,
                        listener_extension_id: listener.and_then(|l| l.extension_id),
                        only_event: listener.and_then(|l| l.body.get("event")).and_then(|e| e.as_str()).map(str::to_owned),
                        dialect,
                        callback: callbacks[&callback_id].clone(),
                        fallback: fallback_id.and_then(|f| callbacks[&f].clone()),
                        call_id,
                        call_direction: None,
                    });
                }
                Ok((out, stored, next_due_ms))
            })
            .await?;
        // Stored events are parsed here, off the writer's thread.
        let parsed = &self.inner.claimed_events;
        let events: HashMap<i64, std::result::Result<Arc<Event>, String>> = stored
            .into_iter()
            .map(|(seq, stored)| {
                let event = match stored {
                    StoredEvent::Parsed(event) => return (seq, Ok(event)),
                    StoredEvent::Body(body) => crate::body::event_of((&body).into())
                        .map(Arc::new)
                        .map_err(|e| e.to_string()),
                };
                if let Ok(event) = &event {
                    parsed.keep(seq, event.clone());
                }
                (seq, event)
            })
            .collect();
        let mut claimed = Vec::with_capacity(picked.len());
        let mut unreadable = Vec::new();
        for l in picked {
            match &events[&l.event] {
                Ok(event) => {
                    let event = event.clone();
                    claimed.push(l.with_event(event))
                }
                Err(e) => {
                    // One unreadable row must not stop every other delivery.
                    tracing::error!(outbox_id = l.outbox_id, error = %e, "stored event is unreadable; delivery is dead");
                    unreadable.push((l.outbox_id, format!("stored event is unreadable: {e}")));
                }
            }
        }
        if !unreadable.is_empty() {
            self.inner
                .writer
                .write(move |ctx| {
                    let mut dead = ctx.conn.prepare_cached(
                        "UPDATE outbox SET status = 'dead', leased = 0, last_error = ?2, updated_at = ?3 WHERE id = ?1",
                    )?;
                    for (id, error) in &unreadable {
                        dead.execute(params![id, error, now_ms])?;
                        promote_next(ctx.conn, *id, now_ms)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(Claim {
            deliveries: claimed,
            next_due_ms,
        })
    }

    /// Records attempts and moves their rows on: a dead row goes to its callback's fallback,
    /// a callback that answered 410 or kept failing for `disable_after_ms` is switched off.
    /// Returns the callbacks switched off.
    pub async fn record_attempts(
        &self,
        outcomes: Vec<AttemptOutcome>,
        disable_after_ms: i64,
    ) -> Result<Vec<Deactivation>> {
        self.inner
            .writer
            .write(move |ctx| {
                let mut deactivated = Vec::new();
                for o in outcomes {
                    record_one(ctx, &o, disable_after_ms, &mut deactivated)?;
                }
                Ok(deactivated)
            })
            .await
    }

    /// A callback's deliveries, newest first, with their attempts.
    /// What was delivered about a call (by the hub's id): its events' deliveries and its call
    /// logs'. `None` when the account has no such call.
    pub async fn call_deliveries(
        &self,
        account: AccountId,
        call_id: String,
    ) -> Result<Option<CallDeliveries>> {
        self.inner
            .readers
            .read(move |conn| {
                let listed: Option<String> = conn
                    .prepare_cached("SELECT event_seqs FROM calls WHERE id = ?1 AND account_id = ?2")?
                    .query_row(params![call_id, account.0], |r| r.get(0))
                    .optional()?;
                let Some(listed) = listed else {
                    return Ok(None);
                };
                let mut seqs: Vec<i64> =
                    listed.split(',').filter_map(|s| s.parse().ok()).collect();
                let mut out = CallDeliveries::default();
                // Its call logs: events the hub made, under its own id.
                let mut logs = conn.prepare_cached(
                    "SELECT seq, id, kind, source_key, received_at FROM events
                     WHERE account_id = ?1 AND call_id = ?2 ORDER BY seq",
                )?;
                let rows = logs.query_map(params![account.0, call_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?;
                for row in rows {
                    let (seq, id, kind, key, at) = row?;
                    if !matches!(kind.as_str(), "call.log" | "call.missed") {
                        continue;
                    }
                    seqs.push(seq);
                    out.call_logs.push((id, kind, revision_of(&key), at));
                }
                seqs.sort_unstable();
                seqs.dedup();
                let stopped: Vec<i64> = deliverability(conn, account)?
                    .iter()
                    .filter(|(_, deliverable)| !deliverable)
                    .map(|(id, _)| *id)
                    .collect();
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS}, e.kind FROM outbox o JOIN events e ON e.seq = o.event_seq
                     WHERE o.event_seq = ?1 AND o.account_id = ?2 ORDER BY o.id"
                ))?;
                for seq in seqs {
                    let rows = stmt.query_map(params![seq, account.0], |r| {
                        let callback: i64 = r.get(3)?;
                        Ok((r.get::<_, String>(9)?, delivery_of_row(r, stopped.contains(&callback))?))
                    })?;
                    for row in rows {
                        out.deliveries.push(row?);
                    }
                }
                let mut records: Vec<DeliveryRecord> =
                    out.deliveries.iter().map(|(_, d)| d.clone()).collect();
                with_attempts(conn, &mut records)?;
                for ((_, d), with) in out.deliveries.iter_mut().zip(records) {
                    *d = with;
                }
                Ok(Some(out))
            })
            .await
    }

    /// The health of these callbacks of an account.
    pub async fn callback_health(
        &self,
        account: AccountId,
        callbacks: Vec<i64>,
    ) -> Result<Vec<CallbackHealth>> {
        self.inner
            .readers
            .read(move |conn| {
                let mut streak = conn.prepare_cached(
                    "SELECT failing_since, last_success FROM callback_health WHERE callback_id = ?1",
                )?;
                let mut recent = conn.prepare_cached(
                    "SELECT status, attempts FROM outbox WHERE account_id = ?1 AND callback_id = ?2
                     ORDER BY created_at DESC LIMIT ?3",
                )?;
                let mut out = Vec::with_capacity(callbacks.len());
                for callback_id in callbacks {
                    let (failing_since, last_success) = streak
                        .query_row([callback_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                        .unwrap_or((None, None));
                    let mut health = CallbackHealth {
                        callback_id,
                        failing_since,
                        last_success,
                        ..CallbackHealth::default()
                    };
                    let rows = recent.query_map(
                        params![account.0, callback_id, RECENT_DELIVERIES],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)),
                    )?;
                    for row in rows {
                        let (status, attempts) = row?;
                        tally(&mut health, &status, attempts);
                    }
                    out.push(health);
                }
                Ok(out)
            })
            .await
    }

    pub async fn deliveries_of_callback(
        &self,
        account: AccountId,
        callback_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<DeliveryPage> {
        self.inner
            .readers
            .read(move |conn| {
                let total: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE account_id = ?1 AND callback_id = ?2",
                    params![account.0, callback_id],
                    |r| r.get(0),
                )?;
                // While it can deliver nowhere, the rest of each call's deliveries wait too.
                let stopped = deliverability(conn, account)?
                    .iter()
                    .any(|(id, deliverable)| *id == callback_id && !deliverable);
                let waiting: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE account_id = ?1 AND callback_id = ?2
                        AND ((status = 'pending' AND next_attempt_at = ?3)
                             OR (?4 AND status IN ('pending', 'queued')))",
                    params![account.0, callback_id, WAITING, stopped],
                    |r| r.get(0),
                )?;
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS}
                     FROM outbox o JOIN events e ON e.seq = o.event_seq
                     WHERE o.account_id = ?1 AND o.callback_id = ?2
                     ORDER BY o.created_at DESC, o.id DESC LIMIT ?3 OFFSET ?4"
                ))?;
                let mut items = stmt
                    .query_map(params![account.0, callback_id, limit, offset], |r| {
                        delivery_of_row(r, stopped)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                with_attempts(conn, &mut items)?;
                Ok(DeliveryPage {
                    total,
                    waiting,
                    items,
                })
            })
            .await
    }
}

/// Why a callback is switched off after this failed attempt, if it is: the receiver answered
/// 410, or every delivery has failed since `failing_since` for `disable_after_ms`.
pub(crate) fn disable_reason(
    o: &AttemptOutcome,
    failing_since: Option<i64>,
    disable_after_ms: i64,
) -> Option<String> {
    if o.gone {
        Some("the receiver answered 410 Gone".to_string())
    } else if failing_since.is_some_and(|s| o.at_ms - s >= disable_after_ms) {
        Some(format!(
            "every delivery failed for {} hours",
            disable_after_ms / 3_600_000
        ))
    } else {
        None
    }
}

/// What recording an outcome reads back from the row it updated.
struct FinishedRow {
    account: i64,
    callback_id: i64,
    fallback_of: Option<i64>,
    listener_id: i64,
    call_id: Option<String>,
}

fn record_one(
    ctx: &mut WriteCtx<'_>,
    o: &AttemptOutcome,
    disable_after_ms: i64,
    deactivated: &mut Vec<Deactivation>,
) -> Result<()> {
    let conn = ctx.conn;
    if let Next::Reroute(target) = o.next {
        conn.execute(
            "UPDATE outbox SET callback_id = ?2, leased = 0, next_attempt_at = ?3, updated_at = ?3 WHERE id = ?1",
            params![o.outbox_id, target, o.at_ms],
        )?;
        return Ok(());
    }
    let (status, next_at, counted) = match o.next {
        Next::Succeeded => ("succeeded", o.at_ms, true),
        Next::RetryAt(at) => ("pending", at, true),
        Next::Dead => ("dead", o.at_ms, true),
        Next::HoldUntil(at) => ("pending", at, false),
        Next::Wait => ("pending", WAITING, false),
        Next::Reroute(_) => unreachable!("handled above"),
    };
    // The update, then a read of what the rest needs by the row's id (the page is at hand).
    // A row deleted meanwhile, with its listener, has nothing to record. (`RETURNING` reads
    // back in the same statement, but SQLite collects its rows in a temporary b-tree, which
    // cost more than the read.)
    let updated = conn
        .prepare_cached(
            "UPDATE outbox SET status = ?2, next_attempt_at = ?3, leased = 0,
                    attempts = attempts + ?4, last_error = ?5, updated_at = ?6
             WHERE id = ?1",
        )?
        .execute(params![
            o.outbox_id,
            status,
            next_at,
            i64::from(counted),
            o.error,
            o.at_ms
        ])?;
    let row: Option<FinishedRow> = if updated == 0 {
        None
    } else {
        Some(
            conn.prepare_cached(
                "SELECT account_id, callback_id, fallback_of, listener_id, call_id
                   FROM outbox WHERE id = ?1",
            )?
            .query_row([o.outbox_id], |r| {
                Ok(FinishedRow {
                    account: r.get(0)?,
                    callback_id: r.get(1)?,
                    fallback_of: r.get(2)?,
                    listener_id: r.get(3)?,
                    call_id: r.get(4)?,
                })
            })?,
        )
    };
    let Some(FinishedRow {
        account,
        callback_id,
        fallback_of,
        listener_id,
        call_id,
    }) = row
    else {
        return Ok(());
    };
    let account = AccountId(account);
    if !counted {
        return Ok(());
    }
    let terminal = matches!(o.next, Next::Succeeded | Next::Dead);
    conn.prepare_cached(
        "INSERT INTO attempts (outbox_id, at, status_code, latency_ms, error, response_prefix)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        o.outbox_id,
        o.at_ms,
        o.status_code,
        o.latency_ms,
        o.error,
        o.response_prefix
    ])?;

    // Callback health: how long it has been failing without a success in between.
    let owner = Owner {
        account,
        extension_id: None,
    };
    if o.next == Next::Succeeded {
        // Only a failing callback has a streak to end; a healthy one costs no write.
        conn.prepare_cached("UPDATE callback_health SET failing_since = NULL, last_success = ?2 WHERE callback_id = ?1 AND failing_since IS NOT NULL")?
            .execute(params![callback_id, o.at_ms])?;
    } else {
        conn.execute(
            "INSERT INTO callback_health (callback_id, failing_since) VALUES (?1, ?2)
             ON CONFLICT(callback_id) DO UPDATE SET failing_since = COALESCE(failing_since, ?2)",
            params![callback_id, o.at_ms],
        )?;
        let since: Option<i64> = conn.query_row(
            "SELECT failing_since FROM callback_health WHERE callback_id = ?1",
            [callback_id],
            |r| r.get(0),
        )?;
        if let Some(reason) = disable_reason(o, since, disable_after_ms) {
            let changed = conn.execute(
                "UPDATE resources SET body = json_set(body, '$.enabled', json('false'))
                 WHERE id = ?1 AND kind = 'callback' AND json_extract(body, '$.enabled') != 0",
                [callback_id],
            )?;
            if changed > 0 {
                ctx.invalidate(account);
                release_waiting(conn, account, o.at_ms)?;
                deactivated.push(Deactivation {
                    account,
                    callback_id,
                    reason,
                });
            }
        }
    }
    // A delivery that died on its callback goes to the callback's fallback (once).
    let mut replaced = false;
    if o.next == Next::Dead && fallback_of.is_none() {
        let callback = get_in(conn, Kind::Callback, owner, None, callback_id)?;
        let fallback =
            callback.and_then(|c| c.body.get("fallback_callback_id").and_then(|f| f.as_i64()));
        if let Some(fallback) = fallback.filter(|f| *f != callback_id) {
            // The fallback delivery takes the dead one's place at the head of its call.
            replaced = true;
            conn.execute(
                "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id, status,
                                     next_attempt_at, created_at, updated_at, fallback_of)
                 SELECT account_id, event_seq, listener_id, ?2, call_id, 'pending', ?3, ?3, ?3, id
                 FROM outbox WHERE id = ?1",
                params![o.outbox_id, fallback, o.at_ms],
            )?;
        }
    }
    if terminal && !replaced {
        if let Some(call) = call_id {
            promote_next_of(conn, listener_id, &call, o.at_ms)?;
        }
    }
    Ok(())
}

/// The status a new delivery starts in: `queued` behind an unfinished delivery of the same
/// listener and call, else `pending`.
pub(crate) fn arrival_status(
    conn: &Connection,
    listener_id: i64,
    call_id: Option<&str>,
) -> Result<&'static str> {
    let Some(call) = call_id else {
        return Ok("pending");
    };
    let ahead: Option<i64> = conn
        .prepare_cached("SELECT id FROM outbox WHERE listener_id = ?1 AND call_id = ?2 AND status IN ('pending', 'queued') LIMIT 1")?
        .query_row(params![listener_id, call], |r| r.get(0))
        .optional()?;
    Ok(if ahead.is_some() { "queued" } else { "pending" })
}

/// The delivery behind a finished one, for the same listener and call, becomes due.
pub(crate) fn promote_next(conn: &Connection, done_id: i64, now_ms: i64) -> Result<()> {
    let key: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT listener_id, call_id FROM outbox WHERE id = ?1")?
        .query_row([done_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((listener, Some(call))) = key else {
        return Ok(());
    };
    promote_next_of(conn, listener, &call, now_ms)
}

/// The oldest delivery queued for a listener and call becomes due.
fn promote_next_of(conn: &Connection, listener: i64, call: &str, now_ms: i64) -> Result<()> {
    // The IN term lets SQLite use the partial index of unfinished deliveries.
    conn.prepare_cached(
        "UPDATE outbox SET status = 'pending', next_attempt_at = MAX(next_attempt_at, ?3) WHERE id = (
            SELECT id FROM outbox WHERE listener_id = ?1 AND call_id = ?2
               AND status IN ('pending', 'queued') AND status = 'queued' ORDER BY id LIMIT 1)",
    )?
    .execute(params![listener, call, now_ms])?;
    Ok(())
}

impl SqliteStore {
    /// Sends a delivery once more (whatever its state), at once.
    pub async fn retry_delivery(
        &self,
        account: AccountId,
        callback_id: i64,
        id: i64,
    ) -> Result<()> {
        self.inner
            .writer
            .write(move |ctx| {
                let now = jiff::Timestamp::now().as_millisecond();
                let n = ctx.conn.execute(
                    "UPDATE outbox SET status = 'pending', leased = 0, next_attempt_at = ?4, updated_at = ?4
                     WHERE id = ?1 AND account_id = ?2 AND callback_id = ?3",
                    params![id, account.0, callback_id, now],
                )?;
                if n == 0 {
                    return Err(crate::StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }

    /// Re-sends, as new deliveries to the listener's current callback, every event that
    /// matched the listener and was received in `[from_ns, to_ns)`. Returns how many.
    pub async fn replay(
        &self,
        account: AccountId,
        listener_id: i64,
        callback_id: i64,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<usize> {
        self.inner
            .writer
            .write(move |ctx| {
                let now = jiff::Timestamp::now().as_millisecond();
                // The events that went to the listener then, each once, in log order, with the
                // order key (the call) their first delivery had.
                let rows: Vec<(i64, Option<String>)> = ctx
                    .conn
                    .prepare(
                        "SELECT e.seq, (SELECT o.call_id FROM outbox o WHERE o.event_seq = e.seq AND o.listener_id = ?2 ORDER BY o.id LIMIT 1)
                         FROM events e
                         WHERE e.account_id = ?1 AND e.received_at >= ?3 AND e.received_at < ?4
                           AND EXISTS (SELECT 1 FROM outbox o WHERE o.event_seq = e.seq AND o.listener_id = ?2)
                         ORDER BY e.seq",
                    )?
                    .query_map(params![account.0, listener_id, from_ns, to_ns], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut insert = ctx.conn.prepare_cached(
                    "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id, status, next_attempt_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)",
                )?;
                for (seq, call) in &rows {
                    let status = arrival_status(ctx.conn, listener_id, call.as_deref())?;
                    insert.execute(params![account.0, seq, listener_id, callback_id, call, status, now])?;
                }
                let n = rows.len();
                Ok(n)
            })
            .await
    }

    /// Deliveries that waited since before `before_ms` for their callback to be switched on
    /// (it is off, and no fallback is on) expire: they are never sent, and stay listed as
    /// `expired`. The next delivery of each call takes its place (to wait in turn, or expire
    /// too). Returns how many expired.
    pub async fn expire_waiting(&self, before_ms: i64) -> Result<usize> {
        self.inner
            .writer
            .write(move |ctx| {
                let now = jiff::Timestamp::now().as_millisecond();
                let accounts: Vec<i64> = ctx
                    .conn
                    .prepare(
                        "SELECT DISTINCT account_id FROM resources WHERE kind = 'callback'
                           AND json_extract(body, '$.enabled') = 0",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut expired = 0;
                for account in accounts {
                    for (callback, deliverable) in deliverability(ctx.conn, AccountId(account))? {
                        if deliverable {
                            continue;
                        }
                        // Each call's waiting head and the deliveries queued behind it, as
                        // old as that.
                        let old: Vec<(i64, i64, Option<String>)> = ctx
                            .conn
                            .prepare_cached(
                                "SELECT id, listener_id, call_id FROM outbox INDEXED BY outbox_rate_window
                                  WHERE callback_id = ?1 AND created_at < ?2
                                    AND status IN ('pending', 'queued')",
                            )?
                            .query_map(params![callback, before_ms], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })?
                            .collect::<rusqlite::Result<_>>()?;
                        let mut expire = ctx.conn.prepare_cached(
                            "UPDATE outbox SET status = 'expired', updated_at = ?2,
                                    last_error = 'waited longer than the limit for its callback to be switched on'
                              WHERE id = ?1",
                        )?;
                        for (id, ..) in &old {
                            expire.execute(params![id, now])?;
                        }
                        expired += old.len();
                        let mut chains: Vec<(i64, String)> = old
                            .into_iter()
                            .filter_map(|(_, listener, call)| call.map(|c| (listener, c)))
                            .collect();
                        chains.sort();
                        chains.dedup();
                        for (listener, call) in chains {
                            promote_next_of(ctx.conn, listener, &call, now)?;
                        }
                    }
                    release_waiting(ctx.conn, AccountId(account), now)?;
                }
                Ok(expired)
            })
            .await
    }

    /// The direction the hub concluded for each of these calls (by its id), where it has one:
    /// for a translation whose event states none (read on a reader, off the writer).
    pub async fn call_directions(
        &self,
        ids: Vec<String>,
    ) -> Result<HashMap<String, switchboard_model::Direction>> {
        self.inner
            .readers
            .read(move |conn| {
                let mut of = conn.prepare_cached("SELECT direction FROM calls WHERE id = ?1")?;
                let mut out = HashMap::new();
                for id in ids {
                    let direction: Option<Option<String>> =
                        of.query_row([&id], |r| r.get(0)).optional()?;
                    // Written by `calls::save` as the direction's serde name; read back so.
                    let known = direction.flatten().and_then(|name| {
                        serde_json::from_value::<switchboard_model::Direction>(name.into()).ok()
                    });
                    if let Some(direction) = known {
                        out.insert(id, direction);
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Forgets attempts made before `before_ms`; returns how many.
    pub async fn prune_attempts(&self, before_ms: i64) -> Result<usize> {
        self.inner
            .writer
            .write(move |ctx| {
                Ok(ctx
                    .conn
                    .execute("DELETE FROM attempts WHERE at < ?1", [before_ms])?)
            })
            .await
    }

    /// Forgets a callback's failure streak (it was switched on again by hand).
    pub async fn reset_callback_health(&self, callback_id: i64) -> Result<()> {
        self.inner
            .writer
            .write(move |ctx| {
                ctx.conn.execute(
                    "DELETE FROM callback_health WHERE callback_id = ?1",
                    [callback_id],
                )?;
                Ok(())
            })
            .await
    }
}
