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

use super::PgStore;
use crate::{Result, StoredEvent};
use switchboard_model::AccountId;

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
