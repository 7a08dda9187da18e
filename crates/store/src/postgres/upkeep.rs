//! Upkeep on PostgreSQL: retention (once across the cluster), erasure, the figures `/metrics`
//! samples, the unsubscribe link, and following the newest event for live streams.
//!
//! Retention rules are the SQLite store's (`crate::retention`): oldest first along each key,
//! a run stops at the first row that must stay. A node prunes only while it holds a
//! transaction-scoped advisory lock taken with `pg_try_advisory_xact_lock`: the others skip
//! their turn instead of pruning the same rows. Space is given back by PostgreSQL's autovacuum,
//! so `reclaim_space` has nothing to do.

use super::PgStore;
use crate::erase::{mentions, ERASE_CHUNK, SCAN_CHUNK};
use crate::retention::cutoff_ms;
use crate::{Erased, Gauges, Pruned, Result, Retention, WAITING};
use deadpool_postgres::Transaction;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use switchboard_model::AccountId;

/// The advisory lock a pruning batch holds (`'swbd'` `'prun'`).
const PRUNE_LOCK: i64 = 0x7377_6264_7072_756e;
/// How often a node looks for new events while live streams follow them.
const LATEST_POLL: Duration = Duration::from_millis(50);

impl PgStore {
    /// Prunes one batch of each kind past its retention, as of `now_ms` — unless another
    /// node is pruning now (then nothing, and that node goes on).
    pub async fn prune_batch(&self, now_ms: i64, keep: Retention, batch: usize) -> Result<Pruned> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(1000);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let mut out = Pruned::default();
        let mine: bool = self
            .query_one(&tx, "SELECT pg_try_advisory_xact_lock($1)", &[&PRUNE_LOCK])
            .await?
            .get(0);
        if !mine {
            return Ok(out);
        }

        // Deliveries that are done, oldest first; one still to be made stops the run.
        let before = cutoff_ms(now_ms, keep.deliveries);
        let done: Vec<i64> = self
            .query(
                &tx,
                "SELECT id, status, created_at FROM outbox ORDER BY id LIMIT $1",
                &[&batch],
            )
            .await?
            .iter()
            .map(|r| {
                (
                    r.get::<_, i64>(0),
                    r.get::<_, String>(1),
                    r.get::<_, i64>(2),
                )
            })
            .take_while(|(_, status, at)| {
                *at < before && !matches!(status.as_str(), "pending" | "queued")
            })
            .map(|(id, ..)| id)
            .collect();
        self.execute(
            &tx,
            "DELETE FROM attempts WHERE outbox_id = ANY($1)",
            &[&done],
        )
        .await?;
        out.deliveries = self
            .execute(&tx, "DELETE FROM outbox WHERE id = ANY($1)", &[&done])
            .await? as usize;

        // Events, oldest first; one with a delivery still to be made stops the run.
        let before_ns = cutoff_ms(now_ms, keep.events).saturating_mul(1_000_000);
        let rows = self
            .query(
                &tx,
                "SELECT e.seq, e.account_id, e.received_at,
                        EXISTS (SELECT 1 FROM outbox o WHERE o.event_seq = e.seq
                                   AND o.status IN ('pending', 'queued'))
                   FROM events e ORDER BY e.seq LIMIT $1",
                &[&batch],
            )
            .await?;
        let mut seqs = Vec::new();
        let mut marks: HashMap<i64, i64> = HashMap::new();
        for r in &rows {
            let (seq, account, received, owed): (i64, i64, i64, bool) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if received >= before_ns || owed {
                break;
            }
            seqs.push(seq);
            marks.insert(account, seq);
        }
        let (events, _) = self.forget_events_in(&tx, &seqs).await?;
        out.events = events;
        for (account, seq) in marks {
            self.execute(
                &tx,
                "INSERT INTO retention_marks (account_id, events_through) VALUES ($1, $2)
                 ON CONFLICT (account_id) DO UPDATE
                    SET events_through = GREATEST(retention_marks.events_through, $2)",
                &[&account, &seq],
            )
            .await?;
        }

        // Finalized calls that ended before the cutoff, oldest made first; a call not
        // finalized yet (or ended since) stops the run.
        let before = cutoff_ms(now_ms, keep.calls);
        let calls: Vec<String> = self
            .query(
                &tx,
                "SELECT id, state, COALESCE(ended_at, last_event_at, created_at) FROM calls
                  ORDER BY created_at, id LIMIT $1",
                &[&batch],
            )
            .await?
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, Option<i64>>(2),
                )
            })
            .take_while(|(_, state, ended)| {
                state == "finalized" && ended.is_some_and(|at| at < before)
            })
            .map(|(id, ..)| id)
            .collect();
        out.calls = self.forget_calls_in(&tx, &calls).await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(out)
    }

    /// Nothing: PostgreSQL's autovacuum makes pruned rows' space reusable.
    pub async fn reclaim_space(&self, _pages: u32) -> Result<()> {
        Ok(())
    }

    /// The log position up to which the account's events were pruned (0: none were).
    pub async fn pruned_through(&self, account: AccountId) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        Ok(self
            .query_opt(
                &tx,
                "SELECT events_through FROM retention_marks WHERE account_id = $1",
                &[&account.0],
            )
            .await?
            .map_or(0, |r| r.get(0)))
    }

    /// Removes these events with their deliveries and attempts; returns (events, deliveries).
    async fn forget_events_in(&self, tx: &Transaction<'_>, seqs: &[i64]) -> Result<(usize, usize)> {
        if seqs.is_empty() {
            return Ok((0, 0));
        }
        self.execute(
            tx,
            "DELETE FROM attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE event_seq = ANY($1))",
            &[&seqs],
        )
        .await?;
        let deliveries = self
            .execute(tx, "DELETE FROM outbox WHERE event_seq = ANY($1)", &[&seqs])
            .await?;
        let events = self
            .execute(tx, "DELETE FROM events WHERE seq = ANY($1)", &[&seqs])
            .await?;
        Ok((events as usize, deliveries as usize))
    }

    /// Removes these calls with their aliases (their events are another matter); returns how
    /// many there were.
    async fn forget_calls_in(&self, tx: &Transaction<'_>, ids: &[String]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.execute(
            tx,
            "DELETE FROM call_aliases WHERE call_id = ANY($1)",
            &[&ids],
        )
        .await?;
        let n = self
            .execute(tx, "DELETE FROM calls WHERE id = ANY($1)", &[&ids])
            .await?;
        self.folds.settle(HashMap::new(), ids);
        Ok(n as usize)
    }

    /// Removes events, then calls, a transaction per chunk (ingest goes on meanwhile).
    async fn forget(&self, seqs: &[i64], ids: &[String]) -> Result<Erased> {
        let mut erased = Erased::default();
        for chunk in seqs.chunks(ERASE_CHUNK) {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.failed(e))?;
            let (events, deliveries) = self.forget_events_in(&tx, chunk).await?;
            tx.commit().await.map_err(|e| self.failed(e))?;
            erased.events += events;
            erased.deliveries += deliveries;
        }
        for chunk in ids.chunks(ERASE_CHUNK) {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.failed(e))?;
            erased.calls += self.forget_calls_in(&tx, chunk).await?;
            tx.commit().await.map_err(|e| self.failed(e))?;
        }
        Ok(erased)
    }

    /// Erases every event and call that mentions the number's `digits` (in one account, or
    /// in all), with their deliveries, attempts and aliases (the rule is the SQLite store's).
    pub async fn erase_number(&self, account: Option<AccountId>, digits: String) -> Result<Erased> {
        let account = account.map(|a| a.0);
        let mut seqs: BTreeSet<i64> = BTreeSet::new();
        let mut after = 0i64;
        let mut client = self.client().await?;
        loop {
            let tx = client.transaction().await.map_err(|e| self.failed(e))?;
            let rows = self
                .query(
                    &tx,
                    "SELECT seq, body FROM events WHERE seq > $1 AND ($2::bigint IS NULL OR account_id = $2)
                      ORDER BY seq LIMIT $3",
                    &[&after, &account, &SCAN_CHUNK],
                )
                .await?;
            drop(tx);
            let Some(last) = rows.last().map(|r| r.get::<_, i64>(0)) else {
                break;
            };
            for r in &rows {
                let event =
                    crate::body::event_of(rusqlite::types::ValueRef::Blob(r.get::<_, &[u8]>(1)))?;
                if mentions(&serde_json::to_string(&event)?, &digits) {
                    seqs.insert(r.get(0));
                }
            }
            after = last;
        }
        // The calls they belong to, and those whose record names the number.
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let rows = self
            .query(
                &tx,
                "SELECT id, event_seqs, search, record FROM calls
                  WHERE ($1::bigint IS NULL OR account_id = $1)",
                &[&account],
            )
            .await?;
        drop(tx);
        let mut ids = Vec::new();
        let mut of_calls = Vec::new();
        for r in &rows {
            let events: Vec<i64> = r.get(1);
            let search: String = r.get(2);
            let record = match r.get::<_, Option<&[u8]>>(3) {
                Some(b) => Some(
                    String::from_utf8_lossy(&crate::body::unpack_json(
                        rusqlite::types::ValueRef::Blob(b),
                    )?)
                    .into_owned(),
                ),
                None => None,
            };
            let names = mentions(&search, &digits) || record.is_some_and(|t| mentions(&t, &digits));
            if names || events.iter().any(|s| seqs.contains(s)) {
                ids.push(r.get::<_, String>(0));
                of_calls.extend(events);
            }
        }
        seqs.extend(of_calls);
        let seqs: Vec<i64> = seqs.into_iter().collect();
        self.forget(&seqs, &ids).await
    }

    /// Erases an account and everything of it. Its tokens go first (every node reads a token
    /// again within seconds, so they stop working everywhere); then its rows, a chunk per
    /// transaction, twice over (a batch whose token was checked just before may land since).
    pub async fn erase_account(&self, account: AccountId) -> Result<Erased> {
        let mut erased = Erased::default();
        for _ in 0..2 {
            {
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(|e| self.failed(e))?;
                self.execute(
                    &tx,
                    "DELETE FROM tokens WHERE account_id = $1",
                    &[&account.0],
                )
                .await?;
                tx.commit().await.map_err(|e| self.failed(e))?;
            }
            self.tokens.forget_account(account);
            loop {
                let seqs = self
                    .chunk_of(
                        account,
                        "SELECT seq FROM events WHERE account_id = $1 LIMIT $2",
                    )
                    .await?;
                if seqs.is_empty() {
                    break;
                }
                erased += self.forget(&seqs, &[]).await?;
            }
            loop {
                let ids = self
                    .chunk_of(
                        account,
                        "SELECT id FROM calls WHERE account_id = $1 LIMIT $2",
                    )
                    .await?;
                if ids.is_empty() {
                    break;
                }
                erased += self.forget(&[], &ids).await?;
            }
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.failed(e))?;
            for sql in [
                "DELETE FROM callback_health WHERE callback_id IN
                   (SELECT id FROM resources WHERE account_id = $1 AND kind = 'callback')",
                "DELETE FROM resources WHERE account_id = $1",
                "DELETE FROM agents WHERE account_id = $1",
                "DELETE FROM call_aliases WHERE account_id = $1",
                "DELETE FROM retention_marks WHERE account_id = $1",
                "DELETE FROM accounts WHERE id = $1",
            ] {
                self.execute(&tx, sql, &[&account.0]).await?;
            }
            tx.commit().await.map_err(|e| self.failed(e))?;
            self.indexes
                .lock()
                .expect("listener indexes")
                .remove(&account);
        }
        Ok(erased)
    }

    /// A chunk of an account's rows by `sql` (`$1` the account, `$2` the chunk's size).
    async fn chunk_of<T>(&self, account: AccountId, sql: &str) -> Result<Vec<T>>
    where
        T: for<'a> tokio_postgres::types::FromSql<'a>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        Ok(self
            .query(&tx, sql, &[&account.0, &(ERASE_CHUNK as i64)])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// The store's figures now (`database_bytes`: the whole database's size).
    pub async fn gauges(&self) -> Result<Gauges> {
        let now = jiff::Timestamp::now().as_millisecond();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let due = self
            .query_one(
                &tx,
                "SELECT COUNT(*), MIN(next_attempt_at) FROM outbox
                  WHERE status = 'pending' AND next_attempt_at <= $1 AND next_attempt_at != $2",
                &[&now, &WAITING],
            )
            .await?;
        let calls_in_progress: i64 = self
            .query_one(
                &tx,
                "SELECT COUNT(*) FROM calls WHERE state IN ('initiated', 'ringing', 'active')",
                &[],
            )
            .await?
            .get(0);
        let bytes: i64 = self
            .query_one(&tx, "SELECT pg_database_size(current_database())", &[])
            .await?
            .get(0);
        let oldest: Option<i64> = due.get(1);
        Ok(Gauges {
            deliveries_due: due.get(0),
            oldest_due_ms: oldest.map_or(0, |at| (now - at).max(0)),
            calls_in_progress,
            database_bytes: bytes.max(0) as u64,
        })
    }

    /// Switches off the e-mail callback whose unsubscribe token this is; returns its account
    /// and id, or `None` for a token no callback has.
    pub async fn unsubscribe(&self, token: String) -> Result<Option<(AccountId, i64)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let Some(row) = self
            .query_opt(
                &tx,
                "UPDATE resources SET body = jsonb_set(body::jsonb, '{enabled}', 'false')::text
                  WHERE id = (SELECT id FROM resources WHERE kind = 'callback'
                                 AND body::jsonb ->> 'unsubscribe_token' = $1 LIMIT 1)
              RETURNING account_id, id",
                &[&token],
            )
            .await?
        else {
            return Ok(None);
        };
        let account = AccountId(row.get(0));
        self.config_changed(&tx, account).await?;
        self.release_waiting(&tx, account, jiff::Timestamp::now().as_millisecond())
            .await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(Some((account, row.get(1))))
    }

    /// Follows the log position of the newest event, from any node (for live streams): read
    /// every `LATEST_POLL` while anyone follows it, and not at all otherwise.
    ///
    /// Followers read with the never-skip horizon (`events_after`), under which an event
    /// becomes readable only once every transaction older than its own has ended, which can be
    /// after the newest position last changed. So followers are woken on every change of the
    /// newest position, and again whenever the horizon moves on, until it has passed every
    /// transaction that could have written an event up to that position (the snapshot's
    /// `xmax` when it was seen).
    pub fn watch_latest(&self) -> tokio::sync::watch::Receiver<i64> {
        let mut slot = self.latest.lock().expect("latest event");
        if let Some(sender) = slot.as_ref() {
            return sender.subscribe();
        }
        let (sender, receiver) = tokio::sync::watch::channel(0);
        *slot = Some(sender.clone());
        let store = self.clone();
        tokio::spawn(async move {
            let (mut horizon, mut until) = (0i64, 0i64);
            loop {
                match store.newest().await {
                    Ok((seq, xmin, xmax)) => {
                        if seq > *sender.borrow() {
                            sender.send_replace(seq);
                            until = xmax;
                        } else if xmin > horizon && horizon < until {
                            sender.send_modify(|_| {});
                        }
                        horizon = xmin;
                    }
                    Err(e) => tracing::debug!(error = %e, "could not read the newest event"),
                }
                tokio::time::sleep(LATEST_POLL).await;
                let mut slot = store.latest.lock().expect("latest event");
                if sender.receiver_count() == 0 {
                    *slot = None;
                    break;
                }
            }
        });
        receiver
    }

    /// The newest event's position, and the horizon (`xmin`) and `xmax` of a snapshot now.
    async fn newest(&self) -> Result<(i64, i64, i64)> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events),
                        pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint
                   FROM pg_current_snapshot() s",
            )
            .await
            .map_err(|e| self.failed(e))?;
        let r = client
            .query_one(&stmt, &[])
            .await
            .map_err(|e| self.failed(e))?;
        Ok((r.get(0), r.get(1), r.get(2)))
    }

    /// Nothing to finish: every write was committed before it was answered.
    pub fn close(&self) {}
}
