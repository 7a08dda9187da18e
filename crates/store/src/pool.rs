//! Connections: how they are opened, and the pool of read connections.

use crate::Result;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::Mutex;

/// Opens a connection with the pragmas every connection needs.
pub(crate) fn open_connection(path: &std::path::Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    // A connection kept waiting (by the checkpoint that makes the WAL start over, mostly)
    // tries again every millisecond, ten seconds in all. SQLite's own wait backs off to sleeps
    // of 100 ms, so a checkpoint of a few milliseconds held ingest for hundreds.
    conn.busy_handler(Some(|attempt: i32| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        attempt < 10_000
    }))?;
    // WAL: readers never block the writer; synchronous=FULL: a commit is on disk when it returns.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // One plan per statement: without this, SQLite re-prepares a cached statement whenever a
    // parameter it planned with (a LIMIT, say) gets a new value — a sixth of the writer's time
    // when claiming deliveries.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// Read connections, opened on demand and kept for reuse.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

const MAX_IDLE: usize = 8;

impl ReadPool {
    pub(crate) fn new(path: PathBuf) -> Self {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().expect("read pool lock").pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("read pool lock");
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs a read on a pooled connection, off the async runtime.
    pub(crate) async fn read<T, F>(self: &std::sync::Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let out = f(&conn);
            pool.give_back(conn);
            out
        })
        .await
        .map_err(|e| crate::StoreError::Commit(format!("read task failed: {e}")))?
    }
}
