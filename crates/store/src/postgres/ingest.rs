//! Ingest on PostgreSQL: a batch's events, their calls and their outbox rows in one
//! transaction per request, any node beside any other.
//!
//! Correlation is serialized on the calls' ids, not on the account: the transaction first
//! takes transaction-scoped advisory locks on the sorted hashes of all the batch's call ids
//! (so two events naming one call, through two nodes, take turns, and two that would make
//! the same new call cannot both make it), then locks the rows of the calls it changes, in id
//! order. What to do with the ids is the engine's decision (`engine::correlation::decide`),
//! as on SQLite. A deadlock between two batches (their calls' rows taken in different orders
//! across events) is detected by PostgreSQL and the batch is run again.
//!
//! A node keeps the folds of the calls it touched in memory ([`super::Folds`]) with the
//! version of the call's row they were made at; every write of a call's row bumps its
//! version, so a fold another node has moved past is never used: it is folded again from the
//! call's events. The listener index is kept per account with the account's
//! `config_version`, read in the same transaction.

use super::{Folds, PgStore};
use crate::events::{index_from, MatchingDocuments};
use crate::resources::{kind_of, Kind, Resource};
use crate::{IngestOutcome, Result, StoreError};
use deadpool_postgres::Transaction;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_engine::calls::{aliases_of, device_of, is_call_event, CallFold};
use switchboard_engine::correlation::{self, NamedCall};
use switchboard_engine::finalization;
use switchboard_engine::ListenerIndex;
use switchboard_model::{AccountId, Details, Event};
use uuid::Uuid;

/// How many times a batch is run again after losing a deadlock to another.
const RETRIES: usize = 8;

/// The advisory lock key of a call id: the first 8 bytes of its SHA-256, with the account.
/// (The same on every node and every build: not a hasher with a per-process seed.)
fn lock_key(account: AccountId, alias: &str) -> i64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(account.0.to_le_bytes());
    h.update(alias.as_bytes());
    let d = h.finalize();
    i64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// True for an error that running the transaction again may not meet: a deadlock or a
/// serialization failure.
fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Postgres(e) => e
            .code()
            .is_some_and(|c| matches!(c.code(), "40P01" | "40001")),
        _ => false,
    }
}

/// A call's row as the transaction locked it.
struct LockedCall {
    version: i64,
    event_seqs: Vec<i64>,
    emitted: Option<String>,
    finalize_at: Option<i64>,
}

/// What the events of one transaction share.
pub(super) struct Batch<'a> {
    pub account: AccountId,
    pub index: &'a ListenerIndex,
    /// When the batch is taken (for listeners' expiry).
    pub now: Timestamp,
    /// The hub's clock (ms), for the rows it writes.
    pub created: i64,
}

/// What a batch's transaction did to the calls, applied to the node's folds only once it
/// committed.
#[derive(Default)]
pub(super) struct Touched {
    /// Each call's fold as this transaction left it, with the row's version then.
    pub folds: HashMap<String, (i64, CallFold)>,
    /// Calls merged away or left behind: folds to drop.
    pub forget: Vec<String>,
}

impl PgStore {
    /// Accepts a batch of one account's events: all of it or none (as
    /// [`crate::Store::ingest`]). Each new event is written with its call's changes and one
    /// outbox row per matching listener, in one transaction; a duplicate (same `source_key`,
    /// through any node) is counted and otherwise ignored.
    pub async fn ingest(
        &self,
        account: AccountId,
        events: Vec<Event>,
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        let bodies = events
            .iter()
            .map(crate::body::pack_event)
            .collect::<Result<Vec<_>>>()?;
        let mut tries = 0;
        loop {
            match self.ingest_once(account, &events, &bodies, now).await {
                Err(e) if retryable(&e) && tries < RETRIES => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "ingest met another node's transaction; running it again");
                }
                Err(e) => return Err(e),
                Ok((out, touched)) => {
                    self.folds.settle(touched.folds, &touched.forget);
                    return Ok(out);
                }
            }
        }
    }

    async fn ingest_once(
        &self,
        account: AccountId,
        events: &[Event],
        bodies: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<(IngestOutcome, Touched)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let mut keys: Vec<i64> = events
            .iter()
            .filter(|e| is_call_event(e))
            .flat_map(aliases_of)
            .map(|a| lock_key(account, &a))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        if !keys.is_empty() {
            self.execute(&tx, "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) AS sorted",
                &[&keys],
            )
            .await?;
        }
        let index = self.index_for(&tx, account).await?;
        let created = Timestamp::now().as_millisecond();
        let mut out = IngestOutcome::default();
        let mut touched = Touched::default();
        for (at, (event, body)) in events.iter().zip(bodies).enumerate() {
            let batch = Batch {
                account,
                index: &index,
                now,
                created,
            };
            self.store_event(&tx, &batch, at, event, body, &mut touched, &mut out)
                .await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok((out, touched))
    }

    /// Writes one event of a batch: the event (or, for a duplicate, its first copy's id), its
    /// call, its agent's state and its deliveries.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_event(
        &self,
        tx: &Transaction<'_>,
        batch: &Batch<'_>,
        at: usize,
        event: &Event,
        body: &[u8],
        touched: &mut Touched,
        out: &mut IngestOutcome,
    ) -> Result<()> {
        let Batch {
            account,
            index,
            now,
            created,
        } = *batch;
        // A call event seen at a device names the agent logged on there, when its source
        // named none (as on SQLite).
        let named;
        let (event, body) = match self.agent_at_device(tx, account, event).await? {
            Some(agent) => {
                let mut with_agent = event.clone();
                with_agent.fact.agent_id = Some(agent);
                let packed = crate::body::pack_event(&with_agent)?;
                named = (with_agent, packed);
                (&named.0, named.1.as_slice())
            }
            None => (event, body),
        };
        let fact = &event.fact;
        let inserted = self.query_opt(tx, "INSERT INTO events (id, account_id, source_key, kind, call_id, occurred_at, received_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (account_id, source_key) DO NOTHING
                 RETURNING seq",
                &[
                    &event.id,
                    &account.0,
                    &fact.source_key,
                    &fact.kind.as_str(),
                    &fact.call_id,
                    &(fact.occurred_at.as_nanosecond() as i64),
                    &(event.received_at.as_nanosecond() as i64),
                    &body,
                ],
            )
            .await?;
        let Some(row) = inserted else {
            let first: Option<Uuid> = self
                .query_opt(
                    tx,
                    "SELECT id FROM events WHERE account_id = $1 AND source_key = $2",
                    &[&account.0, &fact.source_key],
                )
                .await?
                .map(|r| r.get(0));
            out.ids.push(first.unwrap_or(event.id));
            out.duplicates += 1;
            return Ok(());
        };
        let seq: i64 = row.get(0);
        out.ids.push(event.id);
        out.accepted += 1;
        out.last_seq = seq;
        let call = if is_call_event(event) {
            Some(
                self.correlate(tx, touched, account, seq, event, created)
                    .await
                    .map_err(|e| match e {
                        StoreError::CallFull { call_id, max, .. } => StoreError::CallFull {
                            index: Some(at),
                            call_id,
                            max,
                        },
                        other => other,
                    })?,
            )
        } else {
            None
        };
        if let Details::Agent(agent) = &fact.details {
            let state = serde_json::to_value(agent.state)?
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.execute(tx, "INSERT INTO agents (account_id, agent_id, state, since, device) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (account_id, agent_id) DO UPDATE SET state = excluded.state,
                     since = excluded.since, device = COALESCE(excluded.device, agents.device)
                 WHERE excluded.since >= agents.since",
                &[&account.0, &agent.agent_id, &state, &fact.occurred_at.as_millisecond(), &agent.device],
            )
            .await?;
        }
        let order_key = call.or_else(|| fact.call_id.clone());
        if !event.silent {
            self.write_deliveries(tx, index, account, seq, event, order_key, now, created, out)
                .await?;
        }
        Ok(())
    }

    /// The agent logged on at the device a call event is seen at, when its source named none.
    async fn agent_at_device(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        event: &Event,
    ) -> Result<Option<String>> {
        let Some(device) = device_of(event).filter(|_| event.fact.agent_id.is_none()) else {
            return Ok(None);
        };
        Ok(self.query_opt(tx, "SELECT agent_id FROM agents WHERE account_id = $1 AND device = $2 AND state != 'logged_out'
                  ORDER BY since DESC LIMIT 1",
                &[&account.0, &device],
            )
            .await?
            .map(|r| r.get(0)))
    }

    /// The account's listener index as of its `config_version` now.
    pub(super) async fn index_for(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
    ) -> Result<Arc<ListenerIndex>> {
        let version: i64 = self
            .query_one(
                tx,
                "SELECT COALESCE((SELECT config_version FROM accounts WHERE id = $1), 0)",
                &[&account.0],
            )
            .await?
            .get(0);
        if let Some((at, index)) = self.indexes.lock().expect("index cache").get(&account) {
            if *at == version {
                return Ok(index.clone());
            }
        }
        let rows = self.query(tx, "SELECT id, kind, account_id, extension_id, parent_id, body, created_at FROM resources
                  WHERE account_id = $1 AND kind IN ('callback', 'listener', 'subscription', 'filter', 'schedule')
                  ORDER BY id",
                &[&account.0],
            )
            .await?;
        let mut docs = MatchingDocuments {
            callbacks: Vec::new(),
            listeners: Vec::new(),
            subscriptions: Vec::new(),
            filters: Vec::new(),
            schedules: Vec::new(),
        };
        for r in rows {
            let body: String = r.get(5);
            let kind: String = r.get(1);
            let resource = Resource {
                id: r.get(0),
                kind: kind_of(&kind),
                account: AccountId(r.get(2)),
                extension_id: r.get(3),
                parent_id: r.get(4),
                body: serde_json::from_str(&body)?,
                created_at: r.get(6),
            };
            match resource.kind {
                Kind::Callback => docs.callbacks.push(resource),
                Kind::Listener => docs.listeners.push(resource),
                Kind::Subscription => docs.subscriptions.push(resource),
                Kind::Filter => docs.filters.push(resource),
                Kind::Schedule => docs.schedules.push(resource),
                Kind::Profile => {}
            }
        }
        let index = Arc::new(index_from(docs));
        self.indexes
            .lock()
            .expect("index cache")
            .insert(account, (version, index.clone()));
        Ok(index)
    }

    /// Joins an event to its call, as the engine decides, and writes the call's row.
    /// Returns the hub's call id.
    async fn correlate(
        &self,
        tx: &Transaction<'_>,
        touched: &mut Touched,
        account: AccountId,
        seq: i64,
        event: &Event,
        now_ms: i64,
    ) -> Result<String> {
        let aliases = aliases_of(event);
        // Another transaction may merge away a call this event's ids name while this one
        // waits for its row (its other ids were not this event's to lock): then the ids are
        // looked up again, under the same locks.
        let mut looks = 0;
        let (join, mut locked) = loop {
            let join = self.decide(tx, account, event, &aliases).await?;
            let mut ids: Vec<&String> = join.target.iter().chain(&join.merges).collect();
            ids.sort();
            let locked: HashMap<String, LockedCall> = self
                .query(
                    tx,
                    "SELECT id, version, event_seqs, emitted_digest, finalize_at FROM calls
                      WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    &[&ids],
                )
                .await?
                .into_iter()
                .map(|r| {
                    (
                        r.get(0),
                        LockedCall {
                            version: r.get(1),
                            event_seqs: r.get(2),
                            emitted: r.get(3),
                            finalize_at: r.get(4),
                        },
                    )
                })
                .collect();
            if locked.len() == ids.len() {
                break (join, locked);
            }
            looks += 1;
            if looks > 100 {
                return Err(StoreError::Corrupt(format!(
                    "the calls {ids:?} an event's ids name keep moving"
                )));
            }
        };
        touched.forget.extend(join.left_behind.iter().cloned());
        let (target, mut call, made) = match &join.target {
            Some(id) => match locked.remove(id) {
                Some(call) => (id.clone(), call, false),
                None => unreachable!("every call locked"),
            },
            None => {
                let id = Uuid::now_v7().to_string();
                self.execute(tx, "INSERT INTO calls (id, account_id, created_at, heard_at, state) VALUES ($1, $2, $3, $3, 'initiated')",
                    &[&id, &account.0, &now_ms],
                )
                .await?;
                let call = LockedCall {
                    version: 0,
                    event_seqs: Vec::new(),
                    emitted: None,
                    finalize_at: None,
                };
                (id, call, true)
            }
        };
        // Ids that name different calls join them: the later calls fold into the earliest.
        for other in &join.merges {
            let gone = locked.remove(other).expect("every call locked");
            let note = serde_json::json!({
                "merged": other,
                "at": Timestamp::from_millisecond(now_ms).map(|t| t.to_string()).unwrap_or_default(),
                "by": event.id.to_string(),
            });
            self.execute(
                tx,
                "UPDATE call_aliases SET call_id = $1 WHERE call_id = $2",
                &[&target, other],
            )
            .await?;
            self.execute(tx, "UPDATE calls SET event_seqs = event_seqs || $2, merged = merged || jsonb_build_array($3::text::jsonb)
                  WHERE id = $1",
                &[&target, &gone.event_seqs, &note.to_string()],
            )
            .await?;
            self.execute(tx, "DELETE FROM calls WHERE id = $1", &[other])
                .await?;
            call.event_seqs.extend(gone.event_seqs);
            touched.forget.push(other.clone());
        }
        if !join.new_aliases.is_empty() {
            self.execute(
                tx,
                "INSERT INTO call_aliases (account_id, alias, call_id)
                 SELECT $1, alias, $3 FROM unnest($2::text[]) AS alias
                 ON CONFLICT DO NOTHING",
                &[&account.0, &join.new_aliases, &target],
            )
            .await?;
        }
        if !join.taken_over.is_empty() {
            self.execute(
                tx,
                "UPDATE call_aliases SET call_id = $3 WHERE account_id = $1 AND alias = ANY($2)",
                &[&account.0, &join.taken_over, &target],
            )
            .await?;
        }

        // The call's fold: this transaction's, else the node's at the row's version, when the
        // event follows it; else folded again from the call's events.
        let held = touched
            .folds
            .remove(&target)
            .filter(|(v, _)| *v == call.version)
            .or_else(|| self.folds.take(&target, call.version));
        let fold = match held {
            Some((_, mut fold)) if join.merges.is_empty() && !made && fold.follows(event) => {
                fold.apply(event);
                fold
            }
            _ if made => CallFold::of(std::slice::from_ref(event)),
            _ => {
                let mut seqs = call.event_seqs.clone();
                seqs.push(seq);
                CallFold::of(&self.events_at(tx, &seqs).await?)
            }
        };
        if fold.events_folded() > self.options.max_events_per_call {
            return Err(StoreError::CallFull {
                index: None,
                call_id: target,
                max: self.options.max_events_per_call,
            });
        }
        let rec = fold.finish();
        let grace_ms = self.options.finalize_grace.as_millis() as i64;
        let (state, finalize_at) = finalization::settle(
            &rec,
            call.emitted.as_deref(),
            call.finalize_at,
            now_ms,
            grace_ms,
        );
        let c = finalization::columns(&rec);
        self.execute(tx, "UPDATE calls SET state = $2, started_at = $3, ended_at = $4, last_event_at = $5,
                    finalize_at = $6, direction = $7, disposition = $8, missed = $9, search = $10,
                    event_seqs = array_append(event_seqs, $11), heard_at = $12, version = version + 1
              WHERE id = $1",
            &[
                &target,
                &state.as_str(),
                &c.started_at_ms,
                &c.ended_at_ms,
                &c.last_event_at_ms,
                &finalize_at,
                &c.direction,
                &c.disposition,
                &c.missed,
                &c.search,
                &seq,
                &now_ms,
            ],
        )
        .await?;
        // (A merge bumped nothing: the row's version is one more than when it was locked.)
        touched
            .folds
            .insert(target.clone(), (call.version + 1, fold));
        Ok(target)
    }

    /// What the engine decides for an event, from the calls its ids name now.
    async fn decide(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        event: &Event,
        aliases: &[String],
    ) -> Result<correlation::Join> {
        let known: HashMap<String, String> = self
            .query(
                tx,
                "SELECT alias, call_id FROM call_aliases WHERE account_id = $1 AND alias = ANY($2)",
                &[&account.0, &aliases],
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut named: Vec<(String, Option<NamedCall>)> = aliases
            .iter()
            .map(|a| {
                let call = known.get(a).map(|id| NamedCall {
                    id: id.clone(),
                    ended_at_ms: None,
                });
                (a.clone(), call)
            })
            .collect();
        if correlation::ended_call_window(event).is_some() {
            let ids: Vec<String> = named
                .iter()
                .filter_map(|(_, c)| c.as_ref().map(|c| c.id.clone()))
                .collect();
            let ended: HashMap<String, Option<i64>> = self.query(tx, "SELECT id, ended_at FROM calls WHERE id = ANY($1) AND state IN ('ended', 'finalized')",
                    &[&ids],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for call in named.iter_mut().filter_map(|(_, c)| c.as_mut()) {
                call.ended_at_ms = ended.get(&call.id).copied().flatten();
            }
        }
        Ok(correlation::decide(event, named))
    }

    /// Events by their positions in the log, in log order (those pruned are skipped).
    pub(super) async fn events_at(&self, tx: &Transaction<'_>, seqs: &[i64]) -> Result<Vec<Event>> {
        self.query(
            tx,
            "SELECT body FROM events WHERE seq = ANY($1) ORDER BY seq",
            &[&seqs],
        )
        .await?
        .iter()
        .map(|r| crate::body::event_of(rusqlite::types::ValueRef::Blob(r.get(0))))
        .collect()
    }

    /// One outbox row per listener the event goes to (as on SQLite: a callback's rate limit
    /// suppresses, a delivery behind an unfinished one of its call waits its turn, a
    /// switched-off callback's head delivery waits for it).
    #[allow(clippy::too_many_arguments)]
    async fn write_deliveries(
        &self,
        tx: &Transaction<'_>,
        index: &ListenerIndex,
        account: AccountId,
        seq: i64,
        event: &Event,
        order_key: Option<String>,
        now: Timestamp,
        created: i64,
        out: &mut IngestOutcome,
    ) -> Result<()> {
        for listener in index.matching(event, now) {
            let mut status = "pending";
            if let Some((number, period)) = listener.rate_limit {
                let since = created - (period as i64) * 1000;
                let used: i64 = self.query_one(tx, "SELECT COUNT(*) FROM outbox WHERE callback_id = $1 AND created_at > $2 AND status != 'suppressed'",
                        &[&listener.callback_id, &since],
                    )
                    .await?
                    .get(0);
                if used as u64 >= number {
                    status = "suppressed";
                }
            }
            if let (true, Some(call)) = (status == "pending", &order_key) {
                // Taking turns with a node promoting the chain's next delivery.
                self.execute(
                    tx,
                    "SELECT pg_advisory_xact_lock($1)",
                    &[&super::outbox::chain_key(listener.id, call)],
                )
                .await?;
                let ahead = self.query_opt(tx, "SELECT 1 FROM outbox WHERE listener_id = $1 AND call_id = $2 AND status IN ('pending', 'queued') LIMIT 1",
                        &[&listener.id, &order_key],
                    )
                    .await?;
                if ahead.is_some() {
                    status = "queued";
                }
            }
            let due = if status == "pending" && listener.waits {
                crate::outbox::WAITING
            } else {
                created
            };
            self.execute(tx, "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id, status,
                                     next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                &[&account.0, &seq, &listener.id, &listener.callback_id, &order_key, &status, &due, &created],
            )
            .await?;
            if status == "suppressed" {
                out.suppressed += 1;
            } else {
                out.deliveries += 1;
            }
        }
        Ok(())
    }
}

impl Folds {
    /// Takes the fold of `call` at row version `version`, if this node holds it (it is put
    /// back, moved on, when the transaction commits; a transaction that fails leaves the call
    /// to be folded again).
    pub(super) fn take(&self, call: &str, version: i64) -> Option<(i64, CallFold)> {
        let mut held = self.0.lock().expect("fold cache");
        match held.remove(call) {
            Some((v, fold)) if v == version => Some((v, fold)),
            _ => None,
        }
    }

    /// Keeps what a committed transaction left, and drops the calls it merged away.
    pub(super) fn settle(&self, folds: HashMap<String, (i64, CallFold)>, forget: &[String]) {
        let mut held = self.0.lock().expect("fold cache");
        for id in forget {
            held.remove(id);
        }
        // A full cache starts over: a fold not held is folded again from its events.
        if held.len() + folds.len() > FOLDS_HELD {
            held.clear();
        }
        held.extend(folds);
    }
}

/// How many calls' folds a node keeps.
const FOLDS_HELD: usize = 20_000;
