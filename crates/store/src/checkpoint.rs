//! Checkpoints: copying the WAL back into the database file, on a thread of their own (they
//! were a tenth of the writer's time under load, and the writer's own stalled ingest).
//!
//! The checkpointer runs a passive checkpoint every [`EVERY`]; it never blocks the writer or
//! readers. Under constant writes a passive checkpoint never catches the WAL's end, and the
//! WAL only starts over once a checkpoint has copied all of it; so when the WAL has grown past
//! [`RESTART_FRAMES`], the checkpointer follows its passive checkpoint at once with a
//! restarting one, which holds the writer back only while it copies the little written in
//! between, and the writer's next transaction starts the WAL from its beginning.

use crate::pool::open_connection;
use crate::{Result, StoreError};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(100);
/// WAL pages (4 KiB) past which the WAL is made to start over: 16 MiB.
const RESTART_FRAMES: i64 = 4096;

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

/// Copies what it can of the WAL into the database file, waiting for no one; when the WAL has
/// grown long, copies the rest too (briefly holding the writer back) so it starts over.
pub(crate) fn checkpoint(conn: &rusqlite::Connection) -> Result<()> {
    let wal_pages: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if wal_pages >= RESTART_FRAMES {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}
