//! The one writer: a thread that owns the write connection and commits jobs in batches.
//!
//! A job is a closure run inside the open transaction, in a savepoint of its own. The caller's
//! answer is sent only after the transaction that holds its writes has committed, so "Ok"
//! always means "on disk". Jobs queued while a commit is under way ride along in the next one,
//! which is what lets many concurrent requests share one fsync.

use crate::folds::FoldCache;
use crate::{Result, StoreError};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use switchboard_engine::ListenerIndex;
use switchboard_model::AccountId;
use tokio::sync::oneshot;

/// What a job may use: the connection inside the open transaction, and the cache of listener
/// indexes the writer keeps per account.
pub(crate) struct WriteCtx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) indexes: &'a mut HashMap<AccountId, Arc<ListenerIndex>>,
    pub(crate) folds: &'a mut FoldCache,
}

impl WriteCtx<'_> {
    /// Forgets an account's listener index; the next ingest rebuilds it from the tables.
    pub(crate) fn invalidate(&mut self, account: AccountId) {
        self.indexes.remove(&account);
    }
}

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// A job returns whether it failed (so its savepoint is rolled back) and how to answer.
type Job = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Reply) + Send>;

/// Most jobs one transaction takes before it commits.
const MAX_BATCH: usize = 512;
/// A transaction this long is logged (at debug level) with its jobs and where the time went.
const SLOW: std::time::Duration = std::time::Duration::from_millis(20);

pub(crate) struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// When a storage failure (a full disk) was last logged, in ms: said once a minute, not
    /// once a write.
    failure_logged_ms: std::sync::atomic::AtomicI64,
    /// When the storage last refused a write, in ms (0: never).
    pub(crate) failed_ms: std::sync::atomic::AtomicI64,
}

impl Writer {
    pub(crate) fn start(conn: Connection, fold_capacity: usize) -> Result<Writer> {
        // Savepoint journals stay in memory; checkpoints are the checkpointer's work (see
        // `checkpoint`), and the WAL is cut back to 64 MiB when it starts over.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("switchboard-writer".into())
            .spawn(move || run(conn, rx, FoldCache::new(fold_capacity)))
            .map_err(|e| StoreError::Commit(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            failure_logged_ms: std::sync::atomic::AtomicI64::new(0),
            failed_ms: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Runs `f` in the writer's transaction; resolves once that transaction committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |ctx| {
            let outcome = f(ctx);
            let failed = outcome.is_err();
            let reply: Reply = Box::new(move |committed: Result<()>| {
                let answer = match (committed, outcome) {
                    (Ok(()), outcome) => outcome,
                    (Err(e), _) => Err(e),
                };
                let _ = tx.send(answer);
            });
            (failed, reply)
        });
        {
            let guard = self.jobs.lock().expect("writer lock");
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        let result = rx.await.map_err(|_| StoreError::Closed)?;
        if let Err(e) = &result {
            if e.is_storage() {
                use std::sync::atomic::Ordering;
                let now = jiff::Timestamp::now().as_millisecond();
                self.failed_ms.store(now, Ordering::Relaxed);
                let last = self.failure_logged_ms.load(Ordering::Relaxed);
                if now - last >= 60_000
                    && self
                        .failure_logged_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::error!(error = %e, "the storage refuses writes (full?): nothing is accepted until it takes them again (said once a minute)");
                }
            }
        }
        result
    }

    /// Lets the writer finish what is queued, then stops it.
    pub(crate) fn close(&self) {
        self.jobs.lock().expect("writer lock").take();
        if let Some(thread) = self.thread.lock().expect("writer lock").take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>, mut folds: FoldCache) {
    let mut indexes: HashMap<AccountId, Arc<ListenerIndex>> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        let started = std::time::Instant::now();
        let jobs = batch.len();
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = began {
            // Dropping the jobs answers each caller with an error; nothing was written.
            tracing::error!(error = %e, "the writer could not begin a transaction");
            drop(batch);
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        for job in batch {
            if let Err(e) = conn
                .prepare_cached("SAVEPOINT job")
                .and_then(|mut s| s.execute([]))
            {
                tracing::error!(error = %e, "the writer could not open a savepoint");
            }
            let mut ctx = WriteCtx {
                conn: &conn,
                indexes: &mut indexes,
                folds: &mut folds,
            };
            // The job reports its own outcome through its reply; a failed job is undone here.
            let reply = run_job(job, &mut ctx, &conn);
            replies.push(reply);
        }
        let worked = started.elapsed();
        let committed = conn
            .execute_batch("COMMIT")
            .map_err(|e| StoreError::Commit(e.to_string()));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
            indexes.clear();
            folds.clear();
        }
        if started.elapsed() >= SLOW {
            tracing::debug!(
                jobs,
                work_ms = worked.as_secs_f64() * 1e3,
                commit_ms = (started.elapsed() - worked).as_secs_f64() * 1e3,
                "slow writer transaction"
            );
        }
        for reply in replies {
            reply(match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Commit(e.to_string())),
            });
        }
    }
}

/// Runs one job in its savepoint, rolling the savepoint back if the job failed.
fn run_job(job: Job, ctx: &mut WriteCtx<'_>, conn: &Connection) -> Reply {
    let (failed, reply) = job(ctx);
    if failed {
        ctx.folds.job_undone();
    } else {
        ctx.folds.job_done();
    }
    let ended = if failed {
        conn.execute_batch("ROLLBACK TO job; RELEASE job")
    } else {
        conn.prepare_cached("RELEASE job")
            .and_then(|mut s| s.execute([]).map(|_| ()))
    };
    if let Err(e) = ended {
        tracing::error!(error = %e, "the writer could not end a savepoint");
    }
    reply
}
