//! Ingest on PostgreSQL: a batch's events, their calls and their outbox rows in one
//! transaction (requests that arrive together share one: `coalesce.rs`; how a batch is
//! written: `batch.rs`), any node beside any other.
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
use crate::resources::Kind;
use crate::{IngestOutcome, Result, StoreError};
use deadpool_postgres::Transaction;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_engine::calls::{aliases_of, device_of, is_call_event, CallFold};
use switchboard_engine::ListenerIndex;
use switchboard_model::{AccountId, Event};

/// How many times a batch is run again after losing a deadlock to another.
pub(super) const RETRIES: usize = 8;

/// The advisory lock key of a call id, with the account.
pub(super) fn lock_key(account: AccountId, alias: &str) -> i64 {
    super::lock_key_of(&[&account.0.to_le_bytes(), alias.as_bytes()])
}

/// True for an error that running the transaction again may not meet: a deadlock or a
/// serialization failure.
pub(super) fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Postgres(e) => e
            .code()
            .is_some_and(|c| matches!(c.code(), "40P01" | "40001")),
        _ => false,
    }
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
        let Some(writers) = &self.writers else {
            return self.ingest_alone(account, &events, &bodies, now).await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = super::coalesce::Request {
            account,
            events,
            bodies,
            now,
            reply,
        };
        writers.send(request).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Writes one request in a transaction of its own (running it again when it lost a
    /// deadlock to another node's).
    pub(super) async fn ingest_alone(
        &self,
        account: AccountId,
        events: &[Event],
        bodies: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        let mut tries = 0;
        loop {
            match self.ingest_once(account, events, bodies, now).await {
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
        // The calls' locks, and the account's configuration version, in one statement.
        let version: i64 = self
            .query_one(
                &tx,
                "SELECT COALESCE((SELECT config_version FROM accounts WHERE id = $2), 0),
                        (SELECT COUNT(pg_advisory_xact_lock(k))
                           FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) AS sorted)",
                &[&keys, &account.0],
            )
            .await?
            .get(0);
        let index = self.index_at(&tx, account, version).await?;
        let created = Timestamp::now().as_millisecond();
        let mut touched = Touched::default();
        let batch = super::batch::with_bodies(events, bodies);
        let joined = self
            .join_batch(&tx, account, &batch, &index, now, created, &mut touched)
            .await?;
        let written = self
            .deliver_batches(&tx, created, vec![joined])
            .await?
            .pop()
            .unwrap_or_default();
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok((super::batch::outcome(&written), touched))
    }

    /// The agent logged on at the device a call event is seen at, when its source named none.
    pub(super) async fn agent_at_device(
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
        self.index_at(tx, account, version).await
    }

    /// The account's listener index at configuration version `version`.
    async fn index_at(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        version: i64,
    ) -> Result<Arc<ListenerIndex>> {
        if let Some((at, index)) = self.indexes.lock().expect("index cache").get(&account) {
            if *at == version {
                return Ok(index.clone());
            }
        }
        let rows = self
            .query(
                tx,
                &format!(
                    "SELECT {} FROM resources
                      WHERE account_id = $1
                        AND kind IN ('callback', 'listener', 'subscription', 'filter', 'schedule')
                      ORDER BY id",
                    super::RESOURCE_COLUMNS
                ),
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
            let resource = super::resource_of(&r)?;
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
