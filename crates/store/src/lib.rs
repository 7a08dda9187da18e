//! Durable state: accounts and tokens, management resources, the event log and the outbox.
//! The hub holds one [`Store`] (`store.rs`), which is one of two:
//!
//! - [`SqliteStore`], the default: one SQLite file. Every write goes through one writer thread
//!   that commits in batches: concurrent requests share a commit, and a caller hears back only
//!   after its writes are on disk. Each job runs in its own savepoint, so one failing request
//!   never undoes another's. Reads use a small pool of separate connections (WAL lets them
//!   run beside the writer).
//! - [`PgStore`] (`postgres/`): one PostgreSQL database shared by several nodes
//!   (ARCHITECTURE.md § Two stores).

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
mod sqlite;
mod store;
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

pub use postgres::{Imported, PgStore};
pub use sqlite::SqliteStore;
pub use store::Store;

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
    #[error("database error: {}", postgres_message(.0))]
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

/// Whether a storage failure noted at `at_ms` (0: none yet) lies within the last `window`.
pub(crate) fn failed_within(at_ms: i64, window: std::time::Duration) -> bool {
    at_ms > 0 && jiff::Timestamp::now().as_millisecond() - at_ms < window.as_millis() as i64
}

/// What PostgreSQL said (its message and detail; the error's own text is only "db error").
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
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
