//! Durable state: accounts and tokens, management resources, the event log and the outbox,
//! in one SQLite file.
//!
//! Every write goes through one writer thread that commits in batches: concurrent requests
//! share a commit, and a caller hears back only after its writes are on disk. Each job runs in
//! its own savepoint, so one failing request never undoes another's. Reads use a small pool of
//! separate connections (WAL lets them run beside the writer).
//!
//! `postgres` is the second store being built: one PostgreSQL database shared by several
//! nodes (`postgres::PgStore`; ARCHITECTURE.md § Two stores).

mod accounts;
mod backup;
mod body;
mod calls;
mod checkpoint;
mod erase;
mod events;
mod folds;
mod gauges;
mod outbox;
mod pool;
pub mod postgres;
mod resources;
mod retention;
mod schema;
mod writer;

pub use accounts::{Account, Scope, TokenInfo};
pub use backup::{backup, inspect, BackupReport};
pub use calls::{AgentRow, CallQuery, FinalizeRound, Finalized, StoredCall};
pub use erase::{digits_of, Erased};
pub use events::dialect_of_version;
pub use events::{IngestOutcome, StoredEvent};
pub use gauges::Gauges;
pub use outbox::{
    AttemptOutcome, AttemptRecord, CallDeliveries, CallbackHealth, CallbackSlots, Claim,
    ClaimedDelivery, Deactivation, DeliveryPage, DeliveryRecord, DeliveryStatus, InFlight, Next,
    WAITING,
};
pub use resources::{Blocker, Kind, ListQuery, NewResource, Owner, Ref, Resource};
pub use retention::{Pruned, Retention};
pub use switchboard_engine::calls::CallRecord;

use pool::ReadPool;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use writer::Writer;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A referenced resource does not exist (`field` names the reference).
    #[error("{field}: no {kind} with id {id}")]
    MissingRef {
        field: String,
        kind: &'static str,
        id: i64,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(tokio_postgres::Error),
    /// The database cannot be reached (it went away, refuses connections, or has none to
    /// spare); the same work may succeed when it is back. The message says where and why.
    #[error("{0}")]
    Unavailable(String),
    /// The store's configuration is wrong (the message names the setting).
    #[error("{0}")]
    Config(String),
    #[error("stored JSON is unreadable: {0}")]
    Json(#[from] serde_json::Error),
    /// Stored data that is not in the shape the store wrote.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("commit failed: {0}")]
    Commit(String),
    /// A backup could not be taken (the message says why).
    #[error("{0}")]
    Backup(String),
    /// An event would make its call longer than a call may be (`max_events_per_call`); the
    /// batch is refused whole. `index` is the event's place in its batch.
    #[error("call {call_id} has {max} events, as many as a call may have")]
    CallFull {
        index: Option<usize>,
        call_id: String,
        max: usize,
    },
}

impl Store {
    /// True when the storage refused a write (a full disk) within the last `window`.
    pub fn storage_failed_within(&self, window: std::time::Duration) -> bool {
        let at = self
            .inner
            .writer
            .failed_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        at > 0 && jiff::Timestamp::now().as_millisecond() - at < window.as_millis() as i64
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

impl StoreError {
    /// True when the storage itself failed — the disk is full, an I/O error, the database was
    /// busy — rather than the work: the same work may succeed when the storage recovers.
    pub fn is_storage(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                DiskFull | SystemIoFailure | DatabaseBusy | DatabaseLocked | CannotOpen
            ),
            StoreError::Commit(_) | StoreError::Unavailable(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The SQLite store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    checkpointer: checkpoint::Checkpointer,
    readers: Arc<ReadPool>,
    tokens: accounts::TokenCache,
    calls: CallOptions,
    /// The last event's log position, for live streams.
    latest: tokio::sync::watch::Sender<i64>,
    /// Stored events parsed for delivery claims (events never change once stored).
    claimed_events: outbox::ParsedEvents,
}

/// How calls are finalized.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions {
    /// How long after its end a call waits for stragglers before its call log is emitted.
    pub finalize_grace: std::time::Duration,
    /// A call with no event for this long is closed with `inferred_end`.
    pub idle_timeout: std::time::Duration,
    /// How many active calls' folds the writer keeps in memory.
    pub fold_capacity: usize,
    /// The most pages the database may grow to (`PRAGMA max_page_count`): a quota, and how
    /// tests make the storage full. `None`: as large as the disk allows.
    pub max_db_pages: Option<u64>,
    /// The most events one call may have: an event beyond it is refused (its batch answers
    /// 422). It bounds what one call costs the writer.
    pub max_events_per_call: usize,
}

/// The most events one call may have, by default.
pub const DEFAULT_MAX_EVENTS_PER_CALL: usize = 10_000;

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            finalize_grace: std::time::Duration::from_secs(2),
            idle_timeout: std::time::Duration::from_secs(4 * 3600),
            fold_capacity: folds::DEFAULT_CAPACITY,
            max_db_pages: None,
            max_events_per_call: DEFAULT_MAX_EVENTS_PER_CALL,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, migrating its schema.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Store::open_with(data_dir, CallOptions::default())
    }

    /// Opens the store with the given call options.
    pub fn open_with(data_dir: &Path, calls: CallOptions) -> Result<Store> {
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
        Ok(Store {
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
