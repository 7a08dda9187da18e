//! Requests that arrive together are written together: a few writer tasks per node each take
//! every ingest request waiting (up to a bound), and write one account's requests as one
//! batch in one transaction — as the SQLite writer shares a commit between requests. A
//! statement costs PostgreSQL far more than a row does, so a hundred single-event requests
//! written as one batch cost little more than one. Each request still hears back only after
//! the commit; if the shared transaction fails, each request is written again alone, so one
//! bad request (a call already full) fails no other.

use super::ingest::{lock_key, retryable, Touched, RETRIES};
use super::PgStore;
use crate::{IngestOutcome, Result};
use jiff::Timestamp;
use std::sync::Arc;
use switchboard_engine::calls::{aliases_of, is_call_event};
use switchboard_model::{AccountId, Event};
use tokio::sync::{mpsc, oneshot, Mutex};

/// How many writer tasks a node runs (each holds one connection while it writes).
const WRITERS: usize = 4;
/// The most requests, and events, one shared transaction takes.
const MOST_REQUESTS: usize = 256;
const MOST_EVENTS: usize = 2_000;

/// An ingest request waiting for a writer.
pub(super) struct Request {
    pub account: AccountId,
    pub events: Vec<Event>,
    pub bodies: Vec<Vec<u8>>,
    pub now: Timestamp,
    pub reply: oneshot::Sender<Result<IngestOutcome>>,
}

/// Starts the node's writer tasks on `store` (which must not hold the returned sender: the
/// tasks end when every sender is dropped).
pub(super) fn start(store: &PgStore) -> mpsc::UnboundedSender<Request> {
    let (sender, receiver) = mpsc::unbounded_channel::<Request>();
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..WRITERS {
        let store = store.clone();
        let receiver = receiver.clone();
        tokio::spawn(async move {
            loop {
                let requests = {
                    let mut receiver = receiver.lock().await;
                    let Some(first) = receiver.recv().await else {
                        break;
                    };
                    let mut events = first.events.len();
                    let mut requests = vec![first];
                    while requests.len() < MOST_REQUESTS && events < MOST_EVENTS {
                        match receiver.try_recv() {
                            Ok(next) => {
                                events += next.events.len();
                                requests.push(next);
                            }
                            Err(_) => break,
                        }
                    }
                    requests
                };
                // The same figures as the SQLite writer's: a transaction's time, and how many
                // requests it wrote (the writer tasks' transactions, one at a time each).
                let (started, jobs) = (std::time::Instant::now(), requests.len());
                store.write_requests(requests).await;
                metrics::histogram!("switchboard_writer_transaction_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("switchboard_writer_transaction_jobs").record(jobs as f64);
            }
        });
    }
    sender
}

impl PgStore {
    /// Writes requests taken together, and answers each.
    async fn write_requests(&self, mut requests: Vec<Request>) {
        if requests.len() > 1 {
            let mut tries = 0;
            loop {
                match self.write_together(&requests).await {
                    Ok((outcomes, touched)) => {
                        self.folds.settle(touched.folds, &touched.forget);
                        for (request, out) in requests.into_iter().zip(outcomes) {
                            let _ = request.reply.send(Ok(out));
                        }
                        return;
                    }
                    Err(e) if retryable(&e) && tries < RETRIES => tries += 1,
                    // Each alone, so that what failed fails only its own request.
                    Err(_) => break,
                }
            }
        }
        for request in requests.drain(..) {
            let out = self
                .ingest_alone(
                    request.account,
                    &request.events,
                    &request.bodies,
                    request.now,
                )
                .await;
            let _ = request.reply.send(out);
        }
    }

    /// Writes requests in one transaction: each account's requests as one batch.
    async fn write_together(&self, requests: &[Request]) -> Result<(Vec<IngestOutcome>, Touched)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let mut keys: Vec<i64> = requests
            .iter()
            .flat_map(|r| {
                r.events
                    .iter()
                    .filter(|e| is_call_event(e))
                    .flat_map(aliases_of)
                    .map(move |a| lock_key(r.account, &a))
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        self.execute(
            &tx,
            "SELECT COUNT(pg_advisory_xact_lock(k)) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) AS sorted",
            &[&keys],
        )
        .await?;
        let created = Timestamp::now().as_millisecond();
        let mut touched = Touched::default();
        let mut outcomes: Vec<Option<IngestOutcome>> = requests.iter().map(|_| None).collect();
        let mut accounts: Vec<AccountId> = requests.iter().map(|r| r.account).collect();
        accounts.dedup();
        let mut done: Vec<AccountId> = Vec::new();
        // Each account's requests joined as one batch; then all their deliveries written
        // together (`deliver_batches`: their chains locked at once).
        let (mut mines, mut batches) = (Vec::new(), Vec::new());
        for account in accounts {
            if done.contains(&account) {
                continue;
            }
            done.push(account);
            let mine: Vec<usize> = (0..requests.len())
                .filter(|i| requests[*i].account == account)
                .collect();
            // Borrowed, not copied: the requests live until they are answered.
            let batch: Vec<(&Event, &[u8])> = mine
                .iter()
                .flat_map(|i| super::batch::with_bodies(&requests[*i].events, &requests[*i].bodies))
                .collect();
            let index = self.index_for(&tx, account).await?;
            let now = requests[mine[0]].now;
            batches.push(
                self.join_batch(&tx, account, &batch, &index, now, created, &mut touched)
                    .await?,
            );
            mines.push(mine);
        }
        let written = self.deliver_batches(&tx, created, batches).await?;
        for (mine, written) in mines.into_iter().zip(written) {
            let mut at = 0;
            for i in mine {
                let n = requests[i].events.len();
                outcomes[i] = Some(super::batch::outcome(&written[at..at + n]));
                at += n;
            }
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok((
            outcomes
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect(),
            touched,
        ))
    }
}
