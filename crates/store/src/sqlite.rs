//! The embedded store: one SQLite file, one writer thread, a pool of readers.

use crate::pool::ReadPool;
use crate::writer::Writer;
use crate::{accounts, checkpoint, outbox, pool, schema};
use crate::{CallOptions, Result, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) writer: Writer,
    pub(crate) checkpointer: checkpoint::Checkpointer,
    pub(crate) readers: Arc<ReadPool>,
    pub(crate) tokens: accounts::TokenCache,
    pub(crate) calls: CallOptions,
    /// The last event's log position, for live streams.
    pub(crate) latest: tokio::sync::watch::Sender<i64>,
    /// Stored events parsed for delivery claims (events never change once stored).
    pub(crate) claimed_events: outbox::ParsedEvents,
}

impl SqliteStore {
    /// True when the storage refused a write (a full disk) within the last `window`.
    pub fn storage_failed_within(&self, window: std::time::Duration) -> bool {
        let at = self
            .inner
            .writer
            .failed_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        crate::failed_within(at, window)
    }

    /// Whether the storage takes writes now: a row written and removed in a committed
    /// transaction (for readiness: a full disk fails it).
    pub async fn probe_write(&self) -> Result<()> {
        self.inner
            .writer
            .write(|ctx| {
                ctx.conn
                    .execute("INSERT INTO write_probe (pad) VALUES (zeroblob(4096))", [])?;
                ctx.conn.execute("DELETE FROM write_probe", [])?;
                Ok(())
            })
            .await
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, migrating its schema.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(data_dir, CallOptions::default())
    }

    /// Opens the store with the given call options.
    pub fn open_with(data_dir: &Path, calls: CallOptions) -> Result<SqliteStore> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Commit(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("switchboard.db");
        let conn = pool::open_connection(&path)?;
        schema::migrate(&conn)?;
        outbox::release_leases(&conn)?;
        let latest: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        if let Some(pages) = calls.max_db_pages {
            conn.pragma_update(None, "max_page_count", pages as i64)?;
        }
        let writer = Writer::start(conn, calls.fold_capacity)?;
        let checkpointer = checkpoint::Checkpointer::start(&path)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                readers: Arc::new(ReadPool::new(path.clone())),
                path,
                writer,
                checkpointer,
                tokens: accounts::TokenCache::default(),
                calls,
                latest: tokio::sync::watch::channel(latest).0,
                claimed_events: outbox::ParsedEvents::default(),
            }),
        })
    }

    /// Follows the log position of the newest event (for live streams).
    pub fn watch_latest(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.latest.subscribe()
    }

    pub(crate) fn announce(&self, seq: i64) {
        if seq > 0 {
            self.inner.latest.send_if_modified(|v| {
                let newer = seq > *v;
                if newer {
                    *v = seq;
                }
                newer
            });
        }
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stops the writer after it has committed everything queued so far.
    pub fn close(&self) {
        self.inner.writer.close();
        self.inner.checkpointer.close();
    }
}
