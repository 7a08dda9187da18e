//! Retention: forgetting what is older than the hub keeps, in small batches.
//!
//! Three kinds, each with its own age: deliveries (an outbox row that is done — delivered,
//! dead, suppressed or expired — with its attempts), events (with their deliveries, once none
//! is still to be made), and finished calls (finalized, with their aliases). Each batch is
//! one writer job of at most `batch` rows per kind, so ingest's jobs take their turns between
//! them. Rows are taken oldest first along their keys (`outbox.id`, `events.seq`), which grow
//! with time: a batch reads the oldest rows and prunes the old ones among them, and stops at
//! the first that must stay, so a round costs the rows it prunes, not the table's size.
//!
//! An account's pruned events end at a mark ([`SqliteStore::pruned_through`]): a pull cursor
//! before it names events that are gone. Duplicates of a pruned event are no longer
//! recognized (its id is forgotten with it).

use crate::{Result, SqliteStore};
use rusqlite::{params, OptionalExtension};
use std::collections::HashMap;
use std::time::Duration;

/// How long each kind is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events, by when the hub received them.
    pub events: Duration,
    /// Finalized calls, by when they ended.
    pub calls: Duration,
    /// Deliveries that are done, by when they were written, with their attempts.
    pub deliveries: Duration,
}

/// What one batch pruned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: usize,
    pub calls: usize,
    pub deliveries: usize,
}

impl Pruned {
    pub fn any(&self) -> bool {
        self.events + self.calls + self.deliveries > 0
    }
}

/// Removes an event with its deliveries and their attempts; returns (events, deliveries)
/// removed.
pub(crate) fn forget_event(conn: &rusqlite::Connection, seq: i64) -> Result<(usize, usize)> {
    conn.prepare_cached(
        "DELETE FROM attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE event_seq = ?1)",
    )?
    .execute([seq])?;
    let deliveries = conn
        .prepare_cached("DELETE FROM outbox WHERE event_seq = ?1")?
        .execute([seq])?;
    let events = conn
        .prepare_cached("DELETE FROM events WHERE seq = ?1")?
        .execute([seq])?;
    Ok((events, deliveries))
}

/// Removes a call with its aliases (its events are another matter); returns whether it was
/// there.
pub(crate) fn forget_call(ctx: &mut crate::writer::WriteCtx<'_>, id: &str) -> Result<bool> {
    ctx.conn
        .prepare_cached("DELETE FROM call_aliases WHERE call_id = ?1")?
        .execute([id])?;
    let removed = ctx
        .conn
        .prepare_cached("DELETE FROM calls WHERE id = ?1")?
        .execute([id])?;
    ctx.folds.forget(id);
    Ok(removed > 0)
}

/// The time (ms) before which what is kept for `keep` is past its retention.
pub(crate) fn cutoff_ms(now_ms: i64, keep: Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
}

impl SqliteStore {
    /// Prunes one batch of each kind past its retention, as of `now_ms`.
    pub async fn prune_batch(&self, now_ms: i64, keep: Retention, batch: usize) -> Result<Pruned> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(1000);
        self.inner
            .writer
            .write(move |ctx| {
                let conn = ctx.conn;
                let mut out = Pruned::default();

                // Deliveries that are done, oldest first; one still to be made stops the run.
                let before = cutoff_ms(now_ms, keep.deliveries);
                let rows: Vec<(i64, String, i64)> = conn
                    .prepare_cached("SELECT id, status, created_at FROM outbox ORDER BY id LIMIT ?1")?
                    .query_map([batch], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let done: Vec<i64> = rows
                    .iter()
                    .take_while(|(_, status, at)| {
                        *at < before && !matches!(status.as_str(), "pending" | "queued")
                    })
                    .map(|(id, ..)| *id)
                    .collect();
                for id in &done {
                    conn.prepare_cached("DELETE FROM attempts WHERE outbox_id = ?1")?
                        .execute([id])?;
                    conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                        .execute([id])?;
                }
                out.deliveries = done.len();

                // Events, oldest first; one with a delivery still to be made stops the run.
                let before_ns = cutoff_ms(now_ms, keep.events).saturating_mul(1_000_000);
                let rows: Vec<(i64, i64, i64)> = conn
                    .prepare_cached(
                        "SELECT seq, account_id, received_at FROM events ORDER BY seq LIMIT ?1",
                    )?
                    .query_map([batch], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut marks: HashMap<i64, i64> = HashMap::new();
                for (seq, account, received) in rows {
                    if received >= before_ns {
                        break;
                    }
                    let owed = conn
                        .prepare_cached(
                            "SELECT 1 FROM outbox WHERE event_seq = ?1 AND status IN ('pending', 'queued') LIMIT 1",
                        )?
                        .query_row([seq], |_| Ok(()))
                        .optional()?
                        .is_some();
                    if owed {
                        break;
                    }
                    forget_event(conn, seq)?;
                    marks.insert(account, seq);
                    out.events += 1;
                }
                for (account, seq) in marks {
                    conn.prepare_cached(
                        "INSERT INTO retention_marks (account_id, events_through) VALUES (?1, ?2)
                         ON CONFLICT(account_id) DO UPDATE SET events_through = MAX(events_through, ?2)",
                    )?
                    .execute(params![account, seq])?;
                }

                // Finalized calls that ended before the cutoff, oldest made first; a call not
                // finalized yet (or ended since) stops the run.
                let before = cutoff_ms(now_ms, keep.calls);
                let rows: Vec<(String, String, Option<i64>)> = conn
                    .prepare_cached(
                        "SELECT id, state, COALESCE(ended_at, last_event_at, created_at) FROM calls ORDER BY rowid LIMIT ?1",
                    )?
                    .query_map([batch], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let calls: Vec<String> = rows
                    .into_iter()
                    .take_while(|(_, state, ended)| {
                        state == "finalized" && ended.is_some_and(|at| at < before)
                    })
                    .map(|(id, ..)| id)
                    .collect();
                for id in &calls {
                    forget_call(ctx, id)?;
                }
                out.calls = calls.len();
                Ok(out)
            })
            .await
    }

    /// Gives the pages pruning freed back to the file system, a few at a time (a database
    /// made with `auto_vacuum = INCREMENTAL`; others keep them for new data).
    pub async fn reclaim_space(&self, pages: u32) -> Result<()> {
        self.inner
            .writer
            .write(move |ctx| {
                ctx.conn
                    .execute_batch(&format!("PRAGMA incremental_vacuum({pages})"))?;
                Ok(())
            })
            .await
    }

    /// The log position up to which the account's events were pruned (0: none were).
    pub async fn pruned_through(&self, account: switchboard_model::AccountId) -> Result<i64> {
        self.inner
            .readers
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT events_through FROM retention_marks WHERE account_id = ?1",
                    )?
                    .query_row([account.0], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0))
            })
            .await
    }
}
