//! The event log on PostgreSQL: appending events (deduplicated across nodes by the unique
//! `(account_id, source_key)`), and reading them after a cursor without ever skipping one.
//!
//! Events are read in the order of the transactions that stored them (`xid`, then `seq`),
//! and only those of transactions older than every transaction still running
//! (`pg_snapshot_xmin` of the reader's snapshot). Sequence numbers are taken before commit,
//! so with several writers a later `seq` can be visible while an earlier one's transaction is
//! still open; reading by `seq` alone would pass it and never return to it. An event not yet
//! readable belongs to a transaction at or after the horizon, so it sorts after everything
//! read so far. The price: a transaction that stays open holds back the readers (not the
//! writers) until it ends — any transaction on the server that has written, in any of its
//! databases, since transaction ids are the server's. (A server of its own for Switchboard,
//! or a horizon taken from this database's sessions only, avoids that.)

use super::PgStore;
use crate::{Result, StoredEvent};
use switchboard_model::{AccountId, Event};

impl PgStore {
    /// Appends one account's events to the log in one transaction; an event whose source
    /// key the account has already stored (through any node) is skipped. Returns each
    /// event's position in the log, `None` for a duplicate.
    ///
    /// This is the event log's part of ingest; correlation and the outbox join it in the
    /// same transaction as they are built.
    pub async fn append_events(
        &self,
        account: AccountId,
        events: &[Event],
    ) -> Result<Vec<Option<i64>>> {
        let bodies = events
            .iter()
            .map(crate::body::pack_event)
            .collect::<Result<Vec<_>>>()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO events (id, account_id, source_key, kind, call_id, occurred_at, received_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (account_id, source_key) DO NOTHING
                 RETURNING seq",
            )
            .await
            .map_err(|e| self.failed(e))?;
        let mut seqs = Vec::with_capacity(events.len());
        for (event, body) in events.iter().zip(&bodies) {
            let row = tx
                .query_opt(
                    &insert,
                    &[
                        &event.id,
                        &account.0,
                        &event.fact.source_key,
                        &event.fact.kind.as_str(),
                        &event.fact.call_id,
                        &event.fact.occurred_at.as_millisecond(),
                        &event.received_at.as_millisecond(),
                        body,
                    ],
                )
                .await
                .map_err(|e| self.failed(e))?;
            seqs.push(row.map(|r| r.get::<_, i64>(0)));
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(seqs)
    }

    /// The account's events after the one at `after_seq` (0: from the start), in the order
    /// their transactions committed, never skipping one whose transaction commits late. A
    /// cursor at an event the log no longer has reads the events after its position.
    pub async fn events_after(
        &self,
        account: AccountId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let client = self.client().await?;
        let cursor = if after_seq > 0 {
            client
                .query_opt(
                    "SELECT xid::text FROM events WHERE account_id = $1 AND seq = $2",
                    &[&account.0, &after_seq],
                )
                .await
                .map_err(|e| self.failed(e))?
                .map(|r| r.get::<_, String>(0))
        } else {
            None
        };
        let rows = match cursor {
            Some(xid) => {
                client
                    .query(
                        "SELECT seq, body FROM events
                      WHERE account_id = $1 AND (xid, seq) > ($2::text::xid8, $3)
                        AND xid < pg_snapshot_xmin(pg_current_snapshot())
                      ORDER BY xid, seq LIMIT $4",
                        &[&account.0, &xid, &after_seq, &limit],
                    )
                    .await
            }
            None => {
                client
                    .query(
                        "SELECT seq, body FROM events
                      WHERE account_id = $1 AND seq > $2
                        AND xid < pg_snapshot_xmin(pg_current_snapshot())
                      ORDER BY xid, seq LIMIT $3",
                        &[&account.0, &after_seq, &limit],
                    )
                    .await
            }
        }
        .map_err(|e| self.failed(e))?;
        rows.iter()
            .map(|r| {
                let body: &[u8] = r.get(1);
                Ok(StoredEvent {
                    seq: r.get(0),
                    event: crate::body::event_of(rusqlite::types::ValueRef::Blob(body))?,
                })
            })
            .collect()
    }
}
