//! Durable state: accounts and tokens, management resources, the event log and the outbox,
//! in one SQLite file.
//!
//! Every write goes through one writer thread that commits in batches: concurrent requests
//! share a commit, and a caller hears back only after its writes are on disk. Each job runs in
//! its own savepoint, so one failing request never undoes another's. Reads use a small pool of
//! separate connections (WAL lets them run beside the writer).

mod accounts;
mod events;
mod outbox;
mod pool;
mod resources;
mod schema;
mod writer;

pub use accounts::{Account, Scope, TokenInfo};
pub use events::dialect_of_version;
pub use events::{IngestOutcome, StoredEvent};
pub use outbox::{
    AttemptOutcome, AttemptRecord, ClaimedDelivery, Deactivation, DeliveryRecord, DeliveryStatus,
    Next,
};
pub use resources::{Blocker, Kind, ListQuery, NewResource, Owner, Ref, Resource};

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
    #[error("stored JSON is unreadable: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the store is shut down")]
    Closed,
    #[error("commit failed: {0}")]
    Commit(String),
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
    readers: Arc<ReadPool>,
    tokens: accounts::TokenCache,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, migrating its schema.
    pub fn open(data_dir: &Path) -> Result<Store> {
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
        let writer = Writer::start(conn)?;
        Ok(Store {
            inner: Arc::new(Inner {
                readers: Arc::new(ReadPool::new(path.clone())),
                path,
                writer,
                tokens: accounts::TokenCache::default(),
            }),
        })
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stops the writer after it has committed everything queued so far.
    pub fn close(&self) {
        self.inner.writer.close();
    }
}
