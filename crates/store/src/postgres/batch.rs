//! A batch of one account's events written in a handful of statements, whatever its size:
//! the events in one insert, the ids their calls are known by in one read, the calls locked
//! in one, then every correlation decision made in memory, event by event in the batch's
//! order (as the SQLite writer makes them), and the calls, ids and deliveries written back in
//! one statement each. A statement costs PostgreSQL far more than a row does, so the cost per
//! event falls with the batch's size.

use super::ingest::Touched;
use super::PgStore;
use crate::{IngestOutcome, Result, StoreError};
use deadpool_postgres::Transaction;
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};
use switchboard_engine::calls::{aliases_of, is_call_event, CallFold, CallState};
use switchboard_engine::correlation::{self, NamedCall};
use switchboard_engine::finalization;
use switchboard_engine::ListenerIndex;
use switchboard_model::{AccountId, Details, Event};
use uuid::Uuid;

/// What became of one event of a batch.
pub(super) struct Written {
    /// The id it is known by (the first copy's, for a duplicate).
    pub id: Uuid,
    /// Its position in the log; `None` for a duplicate.
    pub seq: Option<i64>,
    pub deliveries: usize,
    pub suppressed: usize,
}

/// Events with their packed bodies, as [`PgStore::join_batch`] takes them.
pub(super) fn with_bodies<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    bodies: &'a [Vec<u8>],
) -> Vec<(&'a Event, &'a [u8])> {
    events
        .into_iter()
        .zip(bodies.iter().map(Vec::as_slice))
        .collect()
}

/// What became of a request, from what became of its events.
pub(super) fn outcome(written: &[Written]) -> IngestOutcome {
    let mut out = IngestOutcome::default();
    for w in written {
        out.ids.push(w.id);
        match w.seq {
            Some(seq) => {
                out.accepted += 1;
                out.last_seq = out.last_seq.max(seq);
            }
            None => out.duplicates += 1,
        }
        out.deliveries += w.deliveries;
        out.suppressed += w.suppressed;
    }
    out
}

/// A call the batch touches, as the transaction locked it and as the batch leaves it.
struct Call {
    /// The row's version when locked (0 for a call the batch makes).
    version: i64,
    /// Every event of the call, by log position (stored ones, merged ones, the batch's).
    seqs: Vec<i64>,
    emitted: Option<String>,
    finalize_at: Option<i64>,
    /// When it ended, if its row said so when locked (the fold says after that).
    row_ended_at: Option<i64>,
    /// Its fold once the batch folded an event into it.
    fold: Option<CallFold>,
    /// Made by this batch (its row is inserted at the end).
    new: bool,
    /// What merged into it, for its `merged` list.
    notes: Vec<serde_json::Value>,
    /// An event of the batch joined it.
    changed: bool,
}

impl Call {
    /// When the call ended, if it has: what an event that may begin the next call asks.
    fn ended_at(&self) -> Option<i64> {
        match &self.fold {
            Some(fold) => {
                let rec = fold.finish();
                (rec.state >= CallState::Ended)
                    .then(|| rec.ended_at.map(|t| t.as_millisecond()))
                    .flatten()
            }
            None => self.row_ended_at,
        }
    }
}

/// What the batch's correlation decided to write besides the calls' rows, each as
/// (id, call): ids new to a call, ids taken over from an ended call, calls merged into
/// another (and where each merged call went, followed to its last).
#[derive(Default)]
struct Moves {
    new_aliases: Vec<(String, String)>,
    taken_over: Vec<(String, String)>,
    merges: Vec<(String, String)>,
    merged_into: HashMap<String, String>,
}

/// Calls' rows as columns, for one statement over all of them.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<&'a str>,
    states: Vec<&'static str>,
    started: Vec<Option<i64>>,
    ended: Vec<Option<i64>>,
    last_event: Vec<Option<i64>>,
    due: Vec<Option<i64>>,
    directions: Vec<Option<String>>,
    dispositions: Vec<String>,
    missed: Vec<bool>,
    search: Vec<String>,
    /// Each call's events, as an array literal.
    seqs: Vec<String>,
    /// What merged into each call, as a JSON array.
    notes: Vec<String>,
}

/// A statement's parameter.
type Param<'p> = &'p (dyn tokio_postgres::types::ToSql + Sync);

impl<'a> Rows<'a> {
    /// The columns as a statement's parameters $1 to $12, then `more`.
    fn with<'p>(&'p self, more: &[Param<'p>]) -> Vec<Param<'p>> {
        let mut params: Vec<Param<'p>> = vec![
            &self.ids,
            &self.states,
            &self.started,
            &self.ended,
            &self.last_event,
            &self.due,
            &self.directions,
            &self.dispositions,
            &self.missed,
            &self.search,
            &self.seqs,
            &self.notes,
        ];
        params.extend_from_slice(more);
        params
    }

    fn push(
        &mut self,
        id: &'a str,
        state: &'static str,
        due: Option<i64>,
        rec: &switchboard_engine::calls::CallRecord,
        seqs: &[i64],
        notes: &[serde_json::Value],
    ) {
        let c = finalization::columns(rec);
        let mut list = seqs.to_vec();
        list.sort_unstable();
        list.dedup();
        self.ids.push(id);
        self.states.push(state);
        self.started.push(c.started_at_ms);
        self.ended.push(c.ended_at_ms);
        self.last_event.push(c.last_event_at_ms);
        self.due.push(due);
        self.directions.push(c.direction);
        self.dispositions.push(c.disposition);
        self.missed.push(c.missed);
        self.search.push(c.search);
        self.seqs.push(format!(
            "{{{}}}",
            list.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
        self.notes
            .push(serde_json::Value::Array(notes.to_vec()).to_string());
    }
}

/// A batch whose events and calls are written and whose deliveries are not yet
/// ([`PgStore::join_batch`]).
pub(super) struct Joined {
    account: AccountId,
    /// Each new event's place in the batch, by log position.
    at: HashMap<i64, usize>,
    written: Vec<Written>,
    deliveries: Vec<Delivery>,
}

impl Joined {
    /// The lock keys of the (listener, call) chains its deliveries join.
    pub(super) fn chain_keys(&self) -> impl Iterator<Item = i64> + '_ {
        self.deliveries.iter().filter_map(|d| {
            d.call
                .as_deref()
                .map(|call| super::outbox::chain_key(d.listener, call))
        })
    }
}

/// A delivery the batch makes, before its status is known.
struct Delivery {
    seq: i64,
    listener: i64,
    callback: i64,
    call: Option<String>,
    waits: bool,
    rate_limit: Option<(u64, u64)>,
}

impl PgStore {
    /// Writes the deliveries of joined batches: the chains of all of them locked at once
    /// (`lock_chains`), then each batch's; says what became of each batch's events.
    pub(super) async fn deliver_batches(
        &self,
        tx: &Transaction<'_>,
        created: i64,
        joined: Vec<Joined>,
    ) -> Result<Vec<Vec<Written>>> {
        self.lock_chains(tx, joined.iter().flat_map(Joined::chain_keys).collect())
            .await?;
        let mut written = Vec::with_capacity(joined.len());
        for batch in joined {
            written.push(self.deliver_batch(tx, created, batch).await?);
        }
        Ok(written)
    }

    /// Writes a batch of one account's events, each with its packed body, in the open
    /// transaction `tx`: the events (a duplicate of a stored one counted, and known by the
    /// first copy's id), their calls and the agents' states; returns the deliveries they make,
    /// for [`PgStore::deliver_batches`] (which a transaction writing several batches calls
    /// once for all of them, so their chains' locks are taken at once). `index` is the
    /// account's listener index, `now` when the batch was taken, `created` the hub's clock
    /// (ms).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn join_batch(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        batch: &[(&Event, &[u8])],
        index: &ListenerIndex,
        now: Timestamp,
        created: i64,
        touched: &mut Touched,
    ) -> Result<Joined> {
        // A call event seen at a device names the agent logged on there (Welljoint); an agent
        // event of the same batch may have just logged them on, so these go one at a time.
        let mut named: Vec<Option<(Event, Vec<u8>)>> = Vec::with_capacity(batch.len());
        for &(event, _) in batch {
            if let Details::Agent(agent) = &event.fact.details {
                self.record_agent(tx, account, agent, event.fact.occurred_at)
                    .await?;
                named.push(None);
                continue;
            }
            match self.agent_at_device(tx, account, event).await? {
                Some(agent) => {
                    let mut with_agent = event.clone();
                    with_agent.fact.agent_id = Some(agent);
                    let packed = crate::body::pack_event(&with_agent)?;
                    named.push(Some((with_agent, packed)));
                }
                None => named.push(None),
            }
        }
        let events: Vec<(&Event, &[u8])> = batch
            .iter()
            .zip(&named)
            .map(|(&(e, b), n)| match n {
                Some((e, b)) => (e, b.as_slice()),
                None => (e, b),
            })
            .collect();

        // The events, in one statement; each new one gets its position.
        let mut ids = Vec::with_capacity(events.len());
        let mut keys = Vec::with_capacity(events.len());
        let mut kinds = Vec::with_capacity(events.len());
        let mut call_ids = Vec::with_capacity(events.len());
        let mut occurred = Vec::with_capacity(events.len());
        let mut received = Vec::with_capacity(events.len());
        let mut packed: Vec<&[u8]> = Vec::with_capacity(events.len());
        for (e, body) in &events {
            ids.push(e.id);
            keys.push(e.fact.source_key.as_str());
            kinds.push(e.fact.kind.as_str());
            call_ids.push(e.fact.call_id.as_deref());
            occurred.push(e.fact.occurred_at.as_nanosecond() as i64);
            received.push(e.received_at.as_nanosecond() as i64);
            packed.push(body);
        }
        let inserted: HashMap<String, i64> = self
            .query(
                tx,
                "INSERT INTO events (id, account_id, source_key, kind, call_id, occurred_at, received_at, body)
                 SELECT id, $2, source_key, kind, call_id, occurred_at, received_at, body
                   FROM unnest($1::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bytea[])
                     AS e(id, source_key, kind, call_id, occurred_at, received_at, body)
                 ON CONFLICT (account_id, source_key) DO NOTHING
                 RETURNING source_key, seq",
                &[&ids, &account.0, &keys, &kinds, &call_ids, &occurred, &received, &packed],
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut written: Vec<Written> = Vec::with_capacity(events.len());
        // Each new event once (a key twice in the batch: its first copy is the new one).
        let mut taken: HashSet<&str> = HashSet::new();
        let mut accepted: Vec<(usize, i64)> = Vec::new();
        let mut repeated: Vec<&str> = Vec::new();
        for (i, (e, _)) in events.iter().enumerate() {
            let key = e.fact.source_key.as_str();
            let seq = match inserted.get(key) {
                Some(seq) if taken.insert(key) => {
                    accepted.push((i, *seq));
                    Some(*seq)
                }
                _ => {
                    repeated.push(key);
                    None
                }
            };
            written.push(Written {
                id: e.id,
                seq,
                deliveries: 0,
                suppressed: 0,
            });
        }
        if !repeated.is_empty() {
            let first: HashMap<String, Uuid> = self
                .query(
                    tx,
                    // One index probe per key, whatever the statistics say (`lock_calls`).
                    "SELECT k.key, e.id FROM unnest($2::text[]) AS k(key),
                         LATERAL (SELECT id FROM events
                                   WHERE account_id = $1 AND source_key = k.key OFFSET 0) AS e",
                    &[&account.0, &repeated],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (w, (e, _)) in written.iter_mut().zip(&events) {
                if w.seq.is_none() {
                    if let Some(id) = first.get(&e.fact.source_key) {
                        w.id = *id;
                    }
                }
            }
        }

        // The calls the batch's ids name, locked; then each event joined in memory.
        let aliases: Vec<Vec<String>> = accepted
            .iter()
            .map(|(i, _)| {
                let e = events[*i].0;
                if is_call_event(e) {
                    aliases_of(e)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let all: Vec<&String> = {
            let mut all: Vec<&String> = aliases.iter().flatten().collect();
            all.sort();
            all.dedup();
            all
        };
        let (mut known, mut calls) = self.lock_calls(tx, account, &all).await?;
        let mut moves = Moves::default();
        let mut deliveries: Vec<Delivery> = Vec::new();
        for ((i, seq), aliases) in accepted.iter().zip(&aliases) {
            let event = events[*i].0;
            let order_key = if is_call_event(event) {
                let call = self
                    .join(
                        tx, event, *seq, aliases, created, &mut known, &mut calls, &mut moves,
                        touched,
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::CallFull { call_id, max, .. } => StoreError::CallFull {
                            index: Some(*i),
                            call_id,
                            max,
                        },
                        other => other,
                    })?;
                Some(call)
            } else {
                event.fact.call_id.clone()
            };
            if !event.silent {
                for l in index.matching(event, now) {
                    deliveries.push(Delivery {
                        seq: *seq,
                        listener: l.id,
                        callback: l.callback_id,
                        call: order_key.clone(),
                        waits: l.waits,
                        rate_limit: l.rate_limit,
                    });
                }
            }
        }
        self.write_calls(tx, account, created, &calls, &moves)
            .await?;
        for (id, call) in calls {
            if call.changed && !moves.merged_into.contains_key(&id) {
                if let Some(fold) = call.fold {
                    touched.folds.insert(id, (call.version + 1, fold));
                }
            }
        }
        touched.forget.extend(moves.merged_into.into_keys());
        Ok(Joined {
            account,
            at: accepted.iter().map(|(i, seq)| (*seq, *i)).collect(),
            written,
            deliveries,
        })
    }

    /// Writes a joined batch's deliveries (its chains' locks held) and says what became of
    /// each of its events.
    async fn deliver_batch(
        &self,
        tx: &Transaction<'_>,
        created: i64,
        joined: Joined,
    ) -> Result<Vec<Written>> {
        let Joined {
            account,
            at,
            mut written,
            deliveries,
        } = joined;
        for (seq, suppressed) in self
            .write_deliveries(tx, account, created, deliveries)
            .await?
        {
            let w = &mut written[at[&seq]];
            if suppressed {
                w.suppressed += 1;
            } else {
                w.deliveries += 1;
            }
        }
        Ok(written)
    }

    /// Keeps the latest state of an agent (an older state arriving late changes nothing).
    async fn record_agent(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        agent: &switchboard_model::AgentFacts,
        at: Timestamp,
    ) -> Result<()> {
        let state = serde_json::to_value(agent.state)?
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.execute(
            tx,
            "INSERT INTO agents (account_id, agent_id, state, since, device) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, agent_id) DO UPDATE SET state = excluded.state,
                 since = excluded.since, device = COALESCE(excluded.device, agents.device)
             WHERE excluded.since >= agents.since",
            &[&account.0, &agent.agent_id, &state, &at.as_millisecond(), &agent.device],
        )
        .await?;
        Ok(())
    }

    /// The calls the ids `aliases` name (each id with its call), locked in id order. A call
    /// merged away by another transaction while this one waited for its row: the ids are
    /// looked up again, under the same advisory locks.
    async fn lock_calls(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        aliases: &[&String],
    ) -> Result<(HashMap<String, String>, HashMap<String, Call>)> {
        if aliases.is_empty() {
            return Ok((HashMap::new(), HashMap::new()));
        }
        for _ in 0..100 {
            let known: HashMap<String, String> = self
                .query(
                    tx,
                    // One probe of the (account, id) key per id. As `alias = ANY($2)`, a
                    // table that grew since it was last analyzed (a new installation; autovacuum
                    // off or behind) got a plan that read every id of the account and filtered
                    // them: 7 ms instead of 0.7 for 100 ids among 20 000, and growing with the
                    // table — half of PostgreSQL's time in batched ingest. `OFFSET 0` keeps the
                    // planner from turning the per-id lookup back into that.
                    "SELECT k.alias, a.call_id FROM unnest($2::text[]) AS k(alias),
                         LATERAL (SELECT call_id FROM call_aliases
                                   WHERE account_id = $1 AND alias = k.alias OFFSET 0) AS a",
                    &[&account.0, &aliases],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let mut ids: Vec<&String> = known.values().collect();
            ids.sort();
            ids.dedup();
            if ids.is_empty() {
                return Ok((known, HashMap::new()));
            }
            let calls: HashMap<String, Call> = self
                .query(
                    tx,
                    "SELECT id, version, event_seqs, emitted_digest, finalize_at,
                            CASE WHEN state IN ('ended', 'finalized') THEN ended_at END
                       FROM calls WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    &[&ids],
                )
                .await?
                .into_iter()
                .map(|r| {
                    (
                        r.get(0),
                        Call {
                            version: r.get(1),
                            seqs: r.get(2),
                            emitted: r.get(3),
                            finalize_at: r.get(4),
                            row_ended_at: r.get(5),
                            fold: None,
                            new: false,
                            notes: Vec::new(),
                            changed: false,
                        },
                    )
                })
                .collect();
            if calls.len() == ids.len() {
                return Ok((known, calls));
            }
        }
        Err(StoreError::Corrupt(
            "the calls an event's ids name keep moving".into(),
        ))
    }

    /// Joins one event to its call in memory, as the engine decides; returns the call's id.
    #[allow(clippy::too_many_arguments)]
    async fn join(
        &self,
        tx: &Transaction<'_>,
        event: &Event,
        seq: i64,
        aliases: &[String],
        created: i64,
        known: &mut HashMap<String, String>,
        calls: &mut HashMap<String, Call>,
        moves: &mut Moves,
        touched: &mut Touched,
    ) -> Result<String> {
        let window = correlation::ended_call_window(event).is_some();
        let named: Vec<(String, Option<NamedCall>)> = aliases
            .iter()
            .map(|a| {
                let call = known.get(a).map(|id| NamedCall {
                    id: id.clone(),
                    ended_at_ms: if window {
                        calls.get(id).and_then(Call::ended_at)
                    } else {
                        None
                    },
                });
                (a.clone(), call)
            })
            .collect();
        let join = correlation::decide(event, named);
        for id in &join.left_behind {
            touched.forget.push(id.clone());
        }
        let target = match join.target {
            Some(id) => id,
            None => {
                let id = Uuid::now_v7().to_string();
                calls.insert(
                    id.clone(),
                    Call {
                        version: 0,
                        seqs: Vec::new(),
                        emitted: None,
                        finalize_at: None,
                        row_ended_at: None,
                        fold: None,
                        new: true,
                        notes: Vec::new(),
                        changed: false,
                    },
                );
                id
            }
        };
        for other in &join.merges {
            let gone = calls.remove(other).expect("every named call is locked");
            let note = serde_json::json!({
                "merged": other,
                "at": Timestamp::from_millisecond(created).map(|t| t.to_string()).unwrap_or_default(),
                "by": event.id.to_string(),
            });
            let call = calls.get_mut(&target).expect("the target is held");
            call.seqs.extend(gone.seqs);
            call.notes.push(note);
            call.notes.extend(gone.notes);
            for c in known.values_mut().filter(|c| *c == other) {
                c.clone_from(&target);
            }
            for m in moves.merged_into.values_mut().filter(|m| *m == other) {
                m.clone_from(&target);
            }
            moves.merged_into.insert(other.clone(), target.clone());
            moves.merges.push((other.clone(), target.clone()));
        }
        for a in &join.new_aliases {
            known.insert(a.clone(), target.clone());
            moves.new_aliases.push((a.clone(), target.clone()));
        }
        for a in &join.taken_over {
            known.insert(a.clone(), target.clone());
            moves.taken_over.push((a.clone(), target.clone()));
        }

        // The call's fold: this batch's, else the node's at the row's version, when the event
        // follows it; else folded again from the call's events (the batch's are stored).
        let call = calls.get_mut(&target).expect("the target is held");
        call.seqs.push(seq);
        call.changed = true;
        let held = call.fold.take().or_else(|| {
            if call.new {
                None
            } else {
                touched
                    .folds
                    .remove(&target)
                    .filter(|(v, _)| *v == call.version)
                    .or_else(|| self.folds.take(&target, call.version))
                    .map(|(_, f)| f)
            }
        });
        let fold = match held {
            Some(mut fold) if join.merges.is_empty() && fold.follows(event) => {
                fold.apply(event);
                fold
            }
            None if call.new && call.seqs.len() == 1 => CallFold::of(std::slice::from_ref(event)),
            _ => CallFold::of(&self.events_at(tx, &call.seqs).await?),
        };
        if fold.events_folded() > self.options.max_events_per_call {
            return Err(StoreError::CallFull {
                index: None,
                call_id: target,
                max: self.options.max_events_per_call,
            });
        }
        call.fold = Some(fold);
        Ok(target)
    }

    /// Writes back what the batch did to calls: new calls (whole) with the ids new to any
    /// call in one statement, merges, ids taken over, and every other changed call's row in
    /// one statement.
    async fn write_calls(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        created: i64,
        calls: &HashMap<String, Call>,
        moves: &Moves,
    ) -> Result<()> {
        let merged_into = &moves.merged_into;
        let last = |id: &String| -> String {
            let mut id = id.clone();
            while let Some(next) = merged_into.get(&id) {
                id = next.clone();
            }
            id
        };
        // Each changed call's row, from its record (a call merged away has none).
        let grace_ms = self.options.finalize_grace.as_millis() as i64;
        let (mut made, mut changed) = (Rows::default(), Rows::default());
        for (id, call) in calls {
            let Some(fold) = call.fold.as_ref().filter(|_| call.changed) else {
                continue;
            };
            if merged_into.contains_key(id) {
                continue;
            }
            let rec = fold.finish();
            let (state, finalize_at) = finalization::settle(
                &rec,
                call.emitted.as_deref(),
                call.finalize_at,
                created,
                grace_ms,
            );
            let rows = if call.new { &mut made } else { &mut changed };
            rows.push(
                id,
                state.as_str(),
                finalize_at,
                &rec,
                &call.seqs,
                &call.notes,
            );
        }
        let (names, owners): (Vec<&String>, Vec<String>) =
            moves.new_aliases.iter().map(|(a, c)| (a, last(c))).unzip();
        if !made.ids.is_empty() || !names.is_empty() {
            let r = &made;
            self.execute(
                tx,
                "WITH made AS (
                    INSERT INTO calls (id, account_id, created_at, heard_at, state, started_at,
                                       ended_at, last_event_at, finalize_at, direction, disposition,
                                       missed, search, event_seqs, merged, version)
                    SELECT id, $13, $14, $14, state, started_at, ended_at, last_event_at,
                           finalize_at, direction, disposition, missed, search, seqs::bigint[],
                           notes::jsonb, 1
                      FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                                  $6::bigint[], $7::text[], $8::text[], $9::bool[], $10::text[],
                                  $11::text[], $12::text[])
                           AS u(id, state, started_at, ended_at, last_event_at, finalize_at,
                                direction, disposition, missed, search, seqs, notes)
                 )
                 INSERT INTO call_aliases (account_id, alias, call_id)
                 SELECT $13, alias, call_id FROM unnest($15::text[], $16::text[]) AS a(alias, call_id)
                 ON CONFLICT (account_id, alias) DO UPDATE SET call_id = excluded.call_id",
                &r.with(&[&account.0, &created, &names, &owners]),
            )
            .await?;
        }
        // Ids move off merged calls, then those calls go.
        for (other, _) in &moves.merges {
            let into = last(other);
            self.execute(
                tx,
                "UPDATE call_aliases SET call_id = $1 WHERE call_id = $2",
                &[&into, other],
            )
            .await?;
            self.execute(tx, "DELETE FROM calls WHERE id = $1", &[other])
                .await?;
        }
        let (names, owners): (Vec<&String>, Vec<String>) =
            moves.taken_over.iter().map(|(a, c)| (a, last(c))).unzip();
        if !names.is_empty() {
            self.execute(
                tx,
                "UPDATE call_aliases a SET call_id = t.call_id
                   FROM unnest($2::text[], $3::text[]) AS t(alias, call_id)
                  WHERE a.account_id = $1 AND a.alias = ANY($2) AND a.alias = t.alias",
                &[&account.0, &names, &owners],
            )
            .await?;
        }
        if !changed.ids.is_empty() {
            let r = &changed;
            // Each row is reached by its key, then by the address the key gives, whatever the
            // statistics say: as `c.id = ANY($1)` it was planned as a scan of the whole table
            // while the table was young or bloated (4 ms a batch). The calls are locked since
            // `lock_calls`, so the address cannot move before the update; were a row missed
            // all the same, the count says so and the transaction is undone.
            let updated = self.execute(
                tx,
                "UPDATE calls c SET state = u.state, started_at = u.started_at, ended_at = u.ended_at,
                        last_event_at = u.last_event_at, finalize_at = u.finalize_at,
                        direction = u.direction, disposition = u.disposition, missed = u.missed,
                        search = u.search, event_seqs = u.seqs::bigint[],
                        merged = c.merged || u.notes::jsonb, heard_at = $13, version = c.version + 1
                   FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                               $6::bigint[], $7::text[], $8::text[], $9::bool[], $10::text[],
                               $11::text[], $12::text[])
                        AS u(id, state, started_at, ended_at, last_event_at, finalize_at, direction,
                             disposition, missed, search, seqs, notes),
                        LATERAL (SELECT ctid AS at FROM calls WHERE id = u.id OFFSET 0) AS k
                  WHERE c.ctid = k.at AND c.id = u.id",
                &r.with(&[&created]),
            )
            .await?;
            if updated != r.ids.len() as u64 {
                return Err(crate::StoreError::Corrupt(format!(
                    "{} of {} changed calls were updated",
                    updated,
                    r.ids.len()
                )));
            }
        }
        Ok(())
    }

    /// The batch's deliveries, in one statement: per (listener, call) only the oldest
    /// unfinished one is `pending`, the rest `queued` (the chains' advisory locks held, so a
    /// node promoting a chain's next delivery takes turns with this); a callback over its
    /// rate limit has them `suppressed`; the head delivery to a callback switched off waits.
    async fn write_deliveries(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        created: i64,
        deliveries: Vec<Delivery>,
    ) -> Result<Vec<(i64, bool)>> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let mut chains: Vec<(i64, &str)> = deliveries
            .iter()
            .filter_map(|d| d.call.as_deref().map(|c| (d.listener, c)))
            .collect();
        chains.sort_unstable();
        chains.dedup();
        let mut busy: HashSet<(i64, String)> = HashSet::new();
        if !chains.is_empty() {
            // The chains' locks are held (`deliver_batches` took them).
            let (listeners, calls): (Vec<i64>, Vec<&str>) = chains.iter().copied().unzip();
            busy = self
                .query(
                    tx,
                    // One index probe per chain, whatever the statistics say. As `EXISTS`
                    // it was planned as a hash semi join over every unfinished row of the
                    // outbox (a queue's statistics are always wrong: it thought 337 rows, it
                    // read 18 000), 4 ms a batch, the most costly statement of delivery.
                    "SELECT c.listener_id, c.call_id
                       FROM unnest($1::bigint[], $2::text[]) AS c(listener_id, call_id),
                            LATERAL (SELECT 1 FROM outbox o
                                      WHERE o.listener_id = c.listener_id AND o.call_id = c.call_id
                                        AND o.status IN ('pending', 'queued')
                                      LIMIT 1) AS busy",
                    &[&listeners, &calls],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        }
        // Rate-limited callbacks: how many deliveries their window holds already.
        let mut used: HashMap<i64, u64> = HashMap::new();
        let mut made = Vec::with_capacity(deliveries.len());
        let mut seqs = Vec::with_capacity(deliveries.len());
        let mut listeners = Vec::with_capacity(deliveries.len());
        let mut callbacks = Vec::with_capacity(deliveries.len());
        let mut call_ids = Vec::with_capacity(deliveries.len());
        let mut statuses = Vec::with_capacity(deliveries.len());
        let mut dues = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            let mut status = "pending";
            if let Some((number, period)) = d.rate_limit {
                if let std::collections::hash_map::Entry::Vacant(slot) = used.entry(d.callback) {
                    let since = created - (period as i64) * 1000;
                    let n: i64 = self
                        .query_one(
                            tx,
                            "SELECT COUNT(*) FROM outbox WHERE callback_id = $1 AND created_at > $2 AND status != 'suppressed'",
                            &[&d.callback, &since],
                        )
                        .await?
                        .get(0);
                    slot.insert(n as u64);
                }
                let n = used.get_mut(&d.callback).expect("counted");
                if *n >= number {
                    status = "suppressed";
                } else {
                    *n += 1;
                }
            }
            if status == "pending" {
                if let Some(call) = &d.call {
                    if !busy.insert((d.listener, call.clone())) {
                        status = "queued";
                    }
                }
            }
            let due = if status == "pending" && d.waits {
                crate::outbox::WAITING
            } else {
                created
            };
            made.push((d.seq, status == "suppressed"));
            seqs.push(d.seq);
            listeners.push(d.listener);
            callbacks.push(d.callback);
            call_ids.push(d.call.as_deref());
            statuses.push(status);
            dues.push(due);
        }
        self.execute(
            tx,
            "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id, status,
                                 next_attempt_at, created_at, updated_at)
             SELECT $1, seq, listener_id, callback_id, call_id, status, due, $8, $8
               FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
                 AS d(seq, listener_id, callback_id, call_id, status, due)",
            &[&account.0, &seqs, &listeners, &callbacks, &call_ids, &statuses, &dues, &created],
        )
        .await?;
        Ok(made)
    }
}
