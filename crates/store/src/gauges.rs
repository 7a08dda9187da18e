//! What the store can tell of the hub's state at a moment: the figures `/metrics` samples
//! when it is scraped (a few indexed counts; nothing is kept up to date per event for them).

use crate::outbox::WAITING;
use crate::{Result, SqliteStore};

/// The store's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    /// Deliveries due now and not yet made.
    pub deliveries_due: i64,
    /// How long the oldest of them has been due, in ms (0 when none is).
    pub oldest_due_ms: i64,
    /// Calls not yet ended.
    pub calls_in_progress: i64,
    /// The database file and its WAL, in bytes.
    pub database_bytes: u64,
}

impl SqliteStore {
    /// The store's figures now.
    pub async fn gauges(&self) -> Result<Gauges> {
        let path = self.inner.path.clone();
        let now = jiff::Timestamp::now().as_millisecond();
        self.inner
            .readers
            .read(move |conn| {
                let (due, oldest): (i64, Option<i64>) = conn.query_row(
                    "SELECT COUNT(*), MIN(next_attempt_at) FROM outbox
                      WHERE status = 'pending' AND next_attempt_at <= ?1 AND next_attempt_at != ?2",
                    rusqlite::params![now, WAITING],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let calls_in_progress: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM calls WHERE state IN ('initiated', 'ringing', 'active')",
                    [],
                    |r| r.get(0),
                )?;
                let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
                let mut wal = path.clone().into_os_string();
                wal.push("-wal");
                Ok(Gauges {
                    deliveries_due: due,
                    oldest_due_ms: oldest.map_or(0, |at| (now - at).max(0)),
                    calls_in_progress,
                    database_bytes: size(&path) + size(std::path::Path::new(&wal)),
                })
            })
            .await
    }
}
