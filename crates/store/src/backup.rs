//! Backups: a consistent copy of a data directory's database, taken while the hub runs.
//!
//! `VACUUM INTO` copies the database as one read transaction sees it: every commit before
//! it, none after, whatever the hub writes meanwhile (WAL readers do not stop the writer).
//! The copy is compact and whole (no WAL beside it); restoring is putting it in a data
//! directory as `switchboard.db`, and deliveries that were pending in it are sent when a hub
//! starts on it.

use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    pub bytes: u64,
    pub events: i64,
    pub calls: i64,
    /// Deliveries not yet made (pending or queued behind another of their call).
    pub pending_deliveries: i64,
}

/// Copies the database in `data_dir` into the new file `to`.
pub fn backup(data_dir: &Path, to: &Path) -> Result<BackupReport> {
    let source = data_dir.join("switchboard.db");
    if !source.is_file() {
        return Err(StoreError::Backup(format!(
            "no database at {} (is --data-dir the hub's?)",
            source.display()
        )));
    }
    if to.exists() {
        return Err(StoreError::Backup(format!(
            "{} exists already: a backup never overwrites a file",
            to.display()
        )));
    }
    let target = to
        .to_str()
        .ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", to.display())))?;
    // Read-only: the copy changes nothing of the live database (the WAL index beside it is
    // shared with the hub, as every reader's is).
    let conn = Connection::open_with_flags(
        &source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|e| StoreError::Backup(format!("cannot write {}: {e}", to.display())))?;
    drop(conn);
    inspect(to)
}

/// What a backup file (or any database file of the hub's) holds.
pub fn inspect(file: &Path) -> Result<BackupReport> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    Ok(BackupReport {
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        events: count("SELECT COUNT(*) FROM events")?,
        calls: count("SELECT COUNT(*) FROM calls")?,
        pending_deliveries: count(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'queued')",
        )?,
    })
}
