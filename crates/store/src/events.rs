//! The event log: accepting events (with dedupe and their outbox rows, in one transaction)
//! and reading them back.

use crate::resources::{all_in, Kind, Resource};
use crate::writer::WriteCtx;
use crate::{Result, SqliteStore, StoreError};
use jiff::Timestamp;
use rusqlite::{params, types::Value as SqlValue, OptionalExtension};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_engine::{
    FilterRule, FilterSpec, ListenerIndex, ListenerSpec, NumberPattern, NumberRule, WeeklySchedule,
};
use switchboard_model::{AccountId, Dialect, Event};
use uuid::Uuid;

/// What became of an ingested batch.
#[derive(Debug, Clone, Default)]
pub struct IngestOutcome {
    /// For each input event, in order, the id it is known by (the first copy's for a duplicate).
    pub ids: Vec<Uuid>,
    pub accepted: usize,
    pub duplicates: usize,
    /// Outbox rows written to be sent.
    pub deliveries: usize,
    /// Outbox rows written as suppressed by a callback's rate limit.
    pub suppressed: usize,
    /// The log position of the last event written (0 when none was).
    pub last_seq: i64,
}

/// An event as read back from the log, with its position.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: Event,
}

/// Maps a listener's `version` to the dialect it receives.
pub fn dialect_of_version(version: &str) -> Option<Dialect> {
    match version {
        "2.0.0" | "2" | "phonecom" => Some(Dialect::Phonecom),
        other => Dialect::parse(other),
    }
}

/// The rule a stored filter tests; a `schedule` filter reads the schedule it names.
fn filter_spec(doc: &serde_json::Value, schedules: &HashMap<i64, Resource>) -> Option<FilterSpec> {
    let value = doc.get("filter_value")?;
    let rule = match doc.get("filter_type")?.as_str()? {
        "number" => {
            FilterRule::Number(if let Some(eq) = value.get("eq").and_then(|v| v.as_str()) {
                NumberRule::Eq(eq.to_string())
            } else if let Some(list) = value.get("in").and_then(|v| v.as_array()) {
                NumberRule::In(
                    list.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                )
            } else {
                NumberRule::Match(NumberPattern::parse(value.get("match")?.as_str()?))
            })
        }
        "schedule" => {
            let schedule = &schedules.get(&value.get("id")?.as_i64()?)?.body;
            FilterRule::Schedule(
                WeeklySchedule::parse(schedule.get("timezone")?, schedule.get("rules")?).ok()?,
            )
        }
        _ => return None,
    };
    Some(FilterSpec {
        rule,
        negate: doc
            .get("not_logic")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    })
}

/// A callback's `config.rate-limit` as `(number, period seconds)`.
pub(crate) fn rate_limit_of(callback: &serde_json::Value) -> Option<(u64, u64)> {
    let rl = callback.get("config")?.get("rate-limit")?;
    Some((rl.get("number")?.as_u64()?, rl.get("period")?.as_u64()?))
        .filter(|(n, p)| *n > 0 && *p > 0)
}

fn id_field(doc: &serde_json::Value, field: &str) -> Option<i64> {
    doc.get(field).and_then(|v| v.as_i64())
}

/// Builds an account's listener index from its stored documents.
pub(crate) fn build_index(
    conn: &rusqlite::Connection,
    account: AccountId,
) -> Result<ListenerIndex> {
    let load = |kind| all_in(conn, kind, account);
    Ok(index_from(MatchingDocuments {
        callbacks: load(Kind::Callback)?,
        listeners: load(Kind::Listener)?,
        subscriptions: load(Kind::Subscription)?,
        filters: load(Kind::Filter)?,
        schedules: load(Kind::Schedule)?,
    }))
}

/// An account's documents that decide which listeners an event goes to, each kind in id
/// order, as any store reads them.
pub(crate) struct MatchingDocuments {
    pub callbacks: Vec<Resource>,
    pub listeners: Vec<Resource>,
    pub subscriptions: Vec<Resource>,
    pub filters: Vec<Resource>,
    pub schedules: Vec<Resource>,
}

/// The listener index of an account's documents. Listeners whose callback is disabled or
/// gone receive nothing and are left out.
pub(crate) fn index_from(docs: MatchingDocuments) -> ListenerIndex {
    let callbacks: HashMap<i64, Resource> = docs.callbacks.into_iter().map(|c| (c.id, c)).collect();
    let mut subscriptions: HashMap<i64, Vec<Vec<String>>> = HashMap::new();
    for s in docs.subscriptions {
        let tags = s.body.get(":tags").and_then(|t| t.as_array()).map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        });
        if let (Some(parent), Some(tags)) = (s.parent_id, tags) {
            subscriptions.entry(parent).or_default().push(tags);
        }
    }
    let schedules: HashMap<i64, Resource> = docs.schedules.into_iter().map(|s| (s.id, s)).collect();
    let mut filters: HashMap<i64, Vec<FilterSpec>> = HashMap::new();
    // A listener with a filter that cannot be read receives nothing, rather than everything
    // the filter was there to keep from it.
    let mut unreadable: std::collections::HashSet<i64> = std::collections::HashSet::new();
    for f in docs.filters {
        let Some(parent) = f.parent_id else { continue };
        match filter_spec(&f.body, &schedules) {
            Some(spec) => filters.entry(parent).or_default().push(spec),
            None => {
                tracing::warn!(
                    listener_id = parent,
                    filter_id = f.id,
                    "a filter cannot be read: its listener receives nothing until it is fixed"
                );
                unreadable.insert(parent);
            }
        }
    }
    let mut specs = Vec::new();
    let enabled = |id: i64| {
        callbacks.get(&id).map(|c| {
            c.body
                .get("enabled")
                .and_then(|e| e.as_bool())
                .unwrap_or(true)
        })
    };
    for l in docs.listeners {
        if unreadable.contains(&l.id) {
            continue;
        }
        let Some(own) = id_field(&l.body, "callback_id") else {
            continue;
        };
        // A switched-off callback hands its events to its fallback, if that one is on;
        // otherwise they wait for it (docs/delivery.md, 6).
        let (target, waits) = match enabled(own) {
            Some(true) => (own, false),
            Some(false) => match callbacks
                .get(&own)
                .and_then(|c| id_field(&c.body, "fallback_callback_id"))
            {
                Some(fallback) if enabled(fallback) == Some(true) => (fallback, false),
                _ => (own, true),
            },
            None => continue,
        };
        let version = l
            .body
            .get("version")
            .and_then(|v| v.as_str())
            .unwrap_or("2.0.0");
        let Some(dialect) = dialect_of_version(version) else {
            continue;
        };
        specs.push(ListenerSpec {
            id: l.id,
            callback_id: target,
            waits,
            rate_limit: callbacks.get(&target).and_then(|c| rate_limit_of(&c.body)),
            extension_id: l.extension_id,
            dialect,
            expires_at: id_field(&l.body, "expires_at")
                .and_then(|s| Timestamp::from_second(s).ok()),
            subscriptions: subscriptions.remove(&l.id).unwrap_or_default(),
            filters: filters.remove(&l.id).unwrap_or_default(),
        });
    }
    ListenerIndex::build(specs)
}

fn index_for(ctx: &mut WriteCtx<'_>, account: AccountId) -> Result<Arc<ListenerIndex>> {
    if let Some(index) = ctx.indexes.get(&account) {
        return Ok(index.clone());
    }
    let index = Arc::new(build_index(ctx.conn, account)?);
    ctx.indexes.insert(account, index.clone());
    Ok(index)
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

impl SqliteStore {
    /// Accepts a batch of one account's events: all of it or none. Each new event is written
    /// with one outbox row per matching listener; a duplicate (same `source_key`) is counted
    /// and otherwise ignored.
    pub async fn ingest(
        &self,
        account: AccountId,
        events: Vec<Event>,
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        let rows = events
            .into_iter()
            .map(|e| {
                let body = crate::body::pack_event(&e)?;
                Ok((e, body))
            })
            .collect::<Result<Vec<_>>>()?;
        let grace_ms = self.inner.calls.finalize_grace.as_millis() as i64;
        let max_events = self.inner.calls.max_events_per_call;
        self.inner
            .writer
            .write_for(Some(account), move |ctx| {
                insert_events(ctx, account, &rows, now, grace_ms, max_events)
            })
            .await
            .inspect(|out| self.announce(out.last_seq))
    }

    /// The account's events in log order, after `after_seq`.
    pub async fn events_after(
        &self,
        account: AccountId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        self.inner
            .readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, body FROM events WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                let rows = stmt
                    .query_map(params![account.0, after_seq, limit], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, SqlValue>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(seq, body)| Ok(StoredEvent { seq, event: crate::body::event_of((&body).into())? }))
                    .collect()
            })
            .await
    }

    /// How many events the account has in its log.
    pub async fn count_events(&self, account: AccountId) -> Result<i64> {
        self.inner
            .readers
            .read(move |conn| {
                Ok(conn.query_row(
                    "SELECT COUNT(*) FROM events WHERE account_id = ?1",
                    [account.0],
                    |r| r.get(0),
                )?)
            })
            .await
    }
}

/// Writes events with their outbox rows, call state and agent state, in the open transaction.
pub(crate) fn insert_events(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    rows: &[(Event, Vec<u8>)],
    now: Timestamp,
    grace_ms: i64,
    max_events_per_call: usize,
) -> Result<IngestOutcome> {
    let mut out = IngestOutcome::default();
    let index = index_for(ctx, account)?;
    let conn = ctx.conn;
    let created = now_ms();
    let mut unsaved = crate::calls::Unsaved::new(created, grace_ms, max_events_per_call);
    let mut insert_event = conn.prepare_cached(
        "INSERT OR IGNORE INTO events
         (id, account_id, source_key, kind, call_id, occurred_at, received_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut insert_outbox = conn.prepare_cached(
        "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id,
                             status, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?;
    let mut in_window = conn.prepare_cached(
        "SELECT COUNT(*) FROM outbox
         WHERE callback_id = ?1 AND created_at > ?2 AND status != 'suppressed'",
    )?;
    let mut agent_at = conn.prepare_cached(
        "SELECT agent_id FROM agents WHERE account_id = ?1 AND device = ?2 AND state != 'logged_out'
          ORDER BY since DESC LIMIT 1",
    )?;
    for (at, (event, body)) in rows.iter().enumerate() {
        // A call event seen at a device names the agent logged on there, when its source
        // named none: the event is kept so, and its call lists the agent.
        let named;
        let (event, body) = match switchboard_engine::calls::device_of(event)
            .filter(|_| event.fact.agent_id.is_none())
            .map(|device| {
                agent_at
                    .query_row(params![account.0, device], |r| r.get::<_, String>(0))
                    .optional()
            })
            .transpose()?
            .flatten()
        {
            Some(agent) => {
                let mut with_agent = event.clone();
                with_agent.fact.agent_id = Some(agent);
                let packed = crate::body::pack_event(&with_agent)?;
                named = (with_agent, packed);
                (&named.0, &named.1)
            }
            None => (event, body),
        };
        let fact = &event.fact;
        let changed = insert_event.execute(params![
            event.id.to_string(),
            account.0,
            fact.source_key,
            fact.kind.as_str(),
            fact.call_id,
            fact.occurred_at.as_nanosecond() as i64,
            event.received_at.as_nanosecond() as i64,
            body,
        ])?;
        if changed == 0 {
            let existing: Option<String> = conn
                .query_row(
                    "SELECT id FROM events WHERE account_id = ?1 AND source_key = ?2",
                    params![account.0, fact.source_key],
                    |r| r.get(0),
                )
                .optional()?;
            out.ids.push(
                existing
                    .and_then(|s| Uuid::parse_str(&s).ok())
                    .unwrap_or(event.id),
            );
            out.duplicates += 1;
            continue;
        }
        let seq = conn.last_insert_rowid();
        out.ids.push(event.id);
        out.accepted += 1;
        out.last_seq = seq;
        // The call it belongs to: one order key per call, whatever ids its sources used.
        let call = if switchboard_engine::calls::is_call_event(event) {
            let call = crate::calls::correlate(conn, ctx.folds, &mut unsaved, account, seq, event)
                .map_err(|e| match e {
                    StoreError::CallFull { call_id, max, .. } => StoreError::CallFull {
                        index: Some(at),
                        call_id,
                        max,
                    },
                    other => other,
                })?;
            Some(call)
        } else {
            None
        };
        if let switchboard_model::Details::Agent(agent) = &fact.details {
            crate::calls::record_agent(conn, account, agent, fact.occurred_at)?;
        }
        let order_key = call.or_else(|| fact.call_id.clone());
        // History imported with `?deliver=false`: stored and correlated, sent to no one.
        let listeners = if event.silent {
            Vec::new()
        } else {
            index.matching(event, now)
        };
        for listener in listeners {
            // Over the callback's rate limit: recorded as suppressed, never sent.
            let status = match listener.rate_limit {
                Some((number, period)) => {
                    let since = created - (period as i64) * 1000;
                    let used: i64 =
                        in_window.query_row(params![listener.callback_id, since], |r| r.get(0))?;
                    if used as u64 >= number {
                        "suppressed"
                    } else {
                        "pending"
                    }
                }
                None => "pending",
            };
            // Behind an unfinished delivery of the same call, a delivery waits its turn.
            let status = if status == "pending" {
                crate::outbox::arrival_status(conn, listener.id, order_key.as_deref())?
            } else {
                status
            };
            // The head of its call's deliveries to a callback that is off waits for it.
            let due = if status == "pending" && listener.waits {
                crate::outbox::WAITING
            } else {
                created
            };
            insert_outbox.execute(params![
                account.0,
                seq,
                listener.id,
                listener.callback_id,
                order_key,
                status,
                due,
                created
            ])?;
            if status != "suppressed" {
                out.deliveries += 1;
            } else {
                out.suppressed += 1;
            }
        }
    }
    unsaved.save_all(conn, ctx.folds)?;
    Ok(out)
}
