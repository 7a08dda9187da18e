//! Finalizing calls on PostgreSQL, once across the cluster: each node's finalizer takes due
//! calls `FOR UPDATE SKIP LOCKED`, so two nodes never finalize one call, and a call that an
//! ingest is writing is left for the next round (which folds that event in). The rules are the
//! engine's (`engine::finalization`), as on SQLite; the `call.log` and `call.missed` events go
//! through the same matching and outbox rows as any event, in the same transaction.

use super::ingest::Touched;
use super::PgStore;
use crate::{Finalized, Result};
use jiff::Timestamp;
use switchboard_engine::calls::CallFold;
use switchboard_engine::finalization::{self, Said};
use switchboard_model::{AccountId, Event};
use uuid::Uuid;

/// How many calls one round takes, of each kind (ended, gone quiet).
const CHUNK: i64 = 32;

impl PgStore {
    /// Finalizes calls whose grace window is over, and closes calls the hub heard nothing of
    /// for the idle timeout, at most 32 of each a round; emits their `call.log` (and
    /// `call.missed`) events. Returns how many events were emitted and whether more calls are
    /// due. Any number of nodes may run it at once.
    pub async fn finalize_due(&self, now: Timestamp) -> Result<Finalized> {
        let now_ms = now.as_millisecond();
        let idle_ms = self.options.idle_timeout.as_millis() as i64;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let columns =
            "id, account_id, version, revision, emitted_digest, missed_emitted, event_seqs";
        let due = self
            .query(
                &tx,
                &format!(
                    "SELECT {columns} FROM calls WHERE finalize_at IS NOT NULL AND finalize_at <= $1
                      ORDER BY finalize_at LIMIT $2 FOR UPDATE SKIP LOCKED"
                ),
                &[&now_ms, &CHUNK],
            )
            .await?;
        let quiet = self
            .query(
                &tx,
                &format!(
                    "SELECT {columns} FROM calls
                      WHERE state IN ('initiated', 'ringing', 'active')
                        AND created_at < $1 AND heard_at < $1
                      LIMIT $2 FOR UPDATE SKIP LOCKED"
                ),
                &[&(now_ms - idle_ms), &CHUNK],
            )
            .await?;
        let more = due.len() as i64 == CHUNK || quiet.len() as i64 == CHUNK;
        let mut touched = Touched::default();
        let mut emitted = 0;
        let tagged = due
            .iter()
            .map(|r| (r, false))
            .chain(quiet.iter().map(|r| (r, true)));
        // What each call's finalization says, first; then its events and the calls written.
        let mut finals = Vec::with_capacity(due.len() + quiet.len());
        for (row, idle) in tagged {
            let (id, account, version): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
            let account = AccountId(account);
            let said = Said {
                revision: row.get(3),
                emitted: row.get(4),
                missed_emitted: row.get(5),
            };
            let seqs: Vec<i64> = row.get(6);
            let fold = match self.folds.take(&id, version) {
                Some((_, fold)) => fold,
                None => CallFold::of(&self.events_at(&tx, &seqs).await?),
            };
            let done = finalization::finalize(
                account,
                &id,
                fold.finish(),
                &said,
                idle,
                fold.audible(),
                now,
                Uuid::now_v7,
            );
            finals.push((id, account, done));
        }
        // Each account's call logs joined as one batch (a statement costs more than a row);
        // then all their deliveries written together (`deliver_batches`: their chains locked
        // at once; a lock statement per call deadlocked with ingest).
        let mut accounts: Vec<AccountId> = Vec::new();
        for (_, account, done) in &finals {
            if !done.events.is_empty() && !accounts.contains(account) {
                accounts.push(*account);
            }
        }
        let mut joined = Vec::new();
        for account in accounts {
            let events: Vec<&Event> = finals
                .iter()
                .filter(|(_, a, _)| *a == account)
                .flat_map(|(_, _, done)| &done.events)
                .collect();
            let bodies = events
                .iter()
                .map(|e| crate::body::pack_event(e))
                .collect::<Result<Vec<_>>>()?;
            let batch = super::batch::with_bodies(events, &bodies);
            let index = self.index_for(&tx, account).await?;
            joined.push(
                self.join_batch(&tx, account, &batch, &index, now, now_ms, &mut touched)
                    .await?,
            );
        }
        for out in self.deliver_batches(&tx, now_ms, joined).await? {
            emitted += out.iter().filter(|w| w.seq.is_some()).count();
        }
        for (id, _, done) in finals {
            let record = crate::body::pack_json(&serde_json::to_vec(&done.record)?)?;
            let c = finalization::columns(&done.record);
            self.execute(
                &tx,
                "UPDATE calls SET state = 'finalized', finalize_at = NULL, revision = $2,
                        emitted_digest = $3, missed_emitted = missed_emitted OR $4, record = $5,
                        started_at = $6, ended_at = $7, last_event_at = $8, direction = $9,
                        disposition = $10, missed = $11, search = $12, version = version + 1
                  WHERE id = $1",
                &[
                    &id,
                    &done.revision,
                    &done.digest,
                    &done.record.missed,
                    &record,
                    &c.started_at_ms,
                    &c.ended_at_ms,
                    &c.last_event_at_ms,
                    &c.direction,
                    &c.disposition,
                    &c.missed,
                    &c.search,
                ],
            )
            .await?;
            // A finalized call rarely hears more; a late event folds it again from its events.
            touched.forget.push(id);
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        self.folds.settle(touched.folds, &touched.forget);
        Ok(Finalized {
            events: emitted,
            more,
        })
    }
}
