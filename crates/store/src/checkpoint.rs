//! Checkpoints: copying the WAL back into the database file, mostly off the writer's thread
//! (it was a tenth of the writer's time under load).
//!
//! The checkpointer thread runs a passive checkpoint every [`EVERY`]; it never blocks the writer
//! or readers. Under constant writes it can never catch the WAL's end, and the WAL only starts
//! over once a checkpoint has copied all of it; so the writer, between two transactions and at
//! most once per [`WRITER_EVERY`], checkpoints the little the checkpointer has not copied yet,
//! and its next transaction starts the WAL from its beginning.

use crate::pool::open_connection;
use crate::{Result, StoreError};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(100);
pub(crate) const WRITER_EVERY: Duration = Duration::from_millis(500);

pub(crate) struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> Result<Checkpointer> {
        let conn = open_connection(path)?;
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("switchboard-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(EVERY) {
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(error = %e, "checkpoint failed; the next one retries");
                    }
                }
            })
            .map_err(|e| StoreError::Commit(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            stop: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub(crate) fn close(&self) {
        self.stop.lock().expect("checkpointer lock").take();
        if let Some(thread) = self.thread.lock().expect("checkpointer lock").take() {
            let _ = thread.join();
        }
    }
}

/// Copies what it can of the WAL into the database file, waiting for no one.
pub(crate) fn checkpoint(conn: &rusqlite::Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}
