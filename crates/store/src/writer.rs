//! The one writer: a thread that owns the write connection and commits jobs in batches.
//!
//! A job is a closure run inside the open transaction, in a savepoint of its own. The caller's
//! answer is sent only after the transaction that holds its writes has committed, so "Ok"
//! always means "on disk". Jobs queued while a commit is under way ride along in the next one,
//! which is what lets many concurrent requests share one fsync. Waiting jobs are taken one
//! account's lane at a time, in turn, and a transaction takes no more once its jobs have
//! worked [`WORK_BUDGET`]: one account's backlog delays another's ingest by one of its jobs.

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
type Work = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Reply) + Send>;

/// A job and the lane it waits in: an account's ingest waits in that account's lane, other
/// work in a lane of its own.
struct Job {
    lane: Option<AccountId>,
    work: Work,
}

/// Most jobs one transaction takes before it commits.
const MAX_BATCH: usize = 512;
/// Once a transaction's jobs have worked this long, it takes no more and commits: the jobs
/// still waiting, each lane's in turn, go in the next one.
const WORK_BUDGET: std::time::Duration = std::time::Duration::from_millis(25);

/// The jobs waiting for the writer, by lane, taken one lane at a time in turn: an account
/// that queues many (or costly) batches delays another account's by one job of its own, not
/// by its whole backlog.
#[derive(Default)]
struct Lanes {
    waiting: HashMap<Option<AccountId>, std::collections::VecDeque<Work>>,
    /// Lanes with jobs, in the order they take their next turn.
    turns: std::collections::VecDeque<Option<AccountId>>,
}

impl Lanes {
    fn push(&mut self, job: Job) {
        let queue = self.waiting.entry(job.lane).or_default();
        if queue.is_empty() {
            self.turns.push_back(job.lane);
        }
        queue.push_back(job.work);
    }

    /// The next lane's next job.
    fn pop(&mut self) -> Option<Work> {
        let lane = self.turns.pop_front()?;
        let queue = self.waiting.get_mut(&lane)?;
        let work = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&lane);
        } else {
            self.turns.push_back(lane);
        }
        Some(work)
    }

    fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}
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
        self.write_for(None, f).await
    }

    /// As [`write`](Self::write), waiting in the account's own lane (see [`Lanes`]).
    pub(crate) async fn write_for<T, F>(&self, lane: Option<AccountId>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let work: Work = Box::new(move |ctx| {
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
            sender
                .send(Job { lane, work })
                .map_err(|_| StoreError::Closed)?;
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
    let mut lanes = Lanes::default();
    loop {
        if lanes.is_empty() {
            match rx.recv() {
                Ok(job) => lanes.push(job),
                Err(_) => break,
            }
        }
        while let Ok(job) = rx.try_recv() {
            lanes.push(job);
        }
        let mut replies: Vec<Reply> = Vec::new();
        let started = std::time::Instant::now();
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = began {
            // Dropping the jobs answers each caller with an error; nothing was written.
            tracing::error!(error = %e, "the writer could not begin a transaction");
            lanes = Lanes::default();
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        while replies.len() < MAX_BATCH && started.elapsed() < WORK_BUDGET {
            let Some(work) = lanes.pop() else { break };
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
            let reply = run_job(work, &mut ctx, &conn);
            replies.push(reply);
        }
        let jobs = replies.len();
        let worked = started.elapsed();
        let committed = conn
            .execute_batch("COMMIT")
            .map_err(|e| StoreError::Commit(e.to_string()));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
            indexes.clear();
            folds.clear();
        }
        metrics::histogram!("switchboard_writer_transaction_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("switchboard_writer_transaction_jobs").record(jobs as f64);
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
fn run_job(work: Work, ctx: &mut WriteCtx<'_>, conn: &Connection) -> Reply {
    let (failed, reply) = work(ctx);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_take_turns_so_a_backlog_delays_another_account_by_one_job() {
        let ran: Arc<Mutex<Vec<String>>> = Arc::default();
        let job = |lane: Option<i64>, name: &str| {
            let (ran, name) = (ran.clone(), name.to_string());
            Job {
                lane: lane.map(AccountId),
                work: Box::new(move |_| {
                    ran.lock().unwrap().push(name);
                    (false, Box::new(|_| {}) as Reply)
                }),
            }
        };
        let mut lanes = Lanes::default();
        for name in ["a1", "a2", "a3"] {
            lanes.push(job(Some(1), name));
        }
        lanes.push(job(Some(2), "b1"));
        lanes.push(job(None, "admin"));
        lanes.push(job(Some(2), "b2"));
        let conn = Connection::open_in_memory().unwrap();
        let mut indexes = HashMap::new();
        let mut folds = FoldCache::new(0);
        let mut ctx = WriteCtx {
            conn: &conn,
            indexes: &mut indexes,
            folds: &mut folds,
        };
        while let Some(work) = lanes.pop() {
            let _ = work(&mut ctx);
        }
        assert!(lanes.is_empty());
        assert_eq!(
            *ran.lock().unwrap(),
            ["a1", "b1", "admin", "a2", "b2", "a3"]
        );
    }
}
