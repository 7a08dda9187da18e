//! The event log on PostgreSQL: reading it after a cursor without ever skipping an event
//! (events are written by ingest, `ingest.rs`).
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
//!
//! So that a sender who reads right after its 202 finds its events, a read that stops short
//! of the account's committed events (they are visible, but not yet below the horizon) waits
//! a little for the horizon to pass them: a few milliseconds while the server's other
//! transactions end, at most `HORIZON_WAIT`.

use super::PgStore;
use crate::{Result, StoredEvent};
use std::time::Duration;
use switchboard_model::AccountId;

/// The longest a read waits for the horizon to pass the account's committed events.
const HORIZON_WAIT: Duration = Duration::from_secs(2);
/// How often it looks again meanwhile.
const HORIZON_STEP: Duration = Duration::from_millis(5);

impl PgStore {
    /// The account's events after the one at `after_seq` (0: from the start), in the order
    /// their transactions committed, never skipping one whose transaction commits late. A
    /// cursor at an event the log no longer has reads the events after its position.
    pub async fn events_after(
        &self,
        account: AccountId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let deadline = tokio::time::Instant::now() + HORIZON_WAIT;
        loop {
            let read = self.events_below_horizon(account, after_seq, limit).await?;
            if read.len() as i64 >= limit
                || tokio::time::Instant::now() >= deadline
                || !self.committed_beyond_horizon(account).await?
            {
                return Ok(read);
            }
            tokio::time::sleep(HORIZON_STEP).await;
        }
    }

    /// Whether the account has committed events the horizon has not passed yet.
    async fn committed_beyond_horizon(&self, account: AccountId) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM events WHERE account_id = $1
                                   AND xid >= pg_snapshot_xmin(pg_current_snapshot()))",
            )
            .await
            .map_err(|e| self.failed(e))?;
        Ok(client
            .query_one(&stmt, &[&account.0])
            .await
            .map_err(|e| self.failed(e))?
            .get(0))
    }

    async fn events_below_horizon(
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
