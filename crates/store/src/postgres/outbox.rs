//! Deliveries across nodes on PostgreSQL: due head rows of (listener, call) chains are
//! claimed with a lease, sent, and their outcome recorded only by the node that still holds
//! the lease.
//!
//! A claim is one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)` per callback with due
//! rows, at most as many as that callback has free senders on this node: two nodes never
//! take one row, and neither waits for the other. The lease (`leased_by`, `lease_until`) keeps
//! the row from every other claim until it runs out; a node that dies loses its leases when
//! they do, and the rows go to the others (delivery is at least once, deduplicable by
//! `webhook-id`). Recording an outcome clears the lease in the same statement that checks it,
//! so a node whose lease ran out (and whose row another node took) changes nothing.
//!
//! Per (listener, call) only the oldest unfinished row is `pending`; the rest are `queued`
//! and promoted one at a time, as on SQLite. Promoting and ingest's choice between `pending`
//! and `queued` take turns on an advisory lock of the chain, so a row queued by one node while
//! another finishes the row ahead of it is never left queued behind nothing.

use super::PgStore;
use crate::outbox::{
    AttemptOutcome, CallbackSlots, Claim, ClaimedDelivery, Deactivation, InFlight, Next, WAITING,
};
use crate::resources::Resource;
use crate::{dialect_of_version, Result};
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_model::{AccountId, Event};

/// What recording an outcome reads back from the row it moved on.
struct FinishedRow {
    id: i64,
    account: AccountId,
    callback_id: i64,
    fallback_of: Option<i64>,
    listener_id: i64,
    call_id: Option<String>,
}

/// Whether an outcome is an attempt made (not a row held back or left to wait).
fn counts(next: Next) -> bool {
    matches!(next, Next::Succeeded | Next::RetryAt(_) | Next::Dead)
}

/// The advisory lock key of a (listener, call) chain of deliveries.
pub(super) fn chain_key(listener: i64, call: &str) -> i64 {
    super::lock_key_of(&[b"chain", &listener.to_le_bytes(), call.as_bytes()])
}

impl PgStore {
    /// Claims up to `limit` due deliveries for this node, no more per callback than `slots`
    /// has room for, each leased to this node until its lease runs out, and says when the
    /// next delivery falls due. Rows `in_flight` on this node are leased already, so no claim
    /// takes them again.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        limit: i64,
        slots: CallbackSlots,
        _in_flight: Arc<InFlight>,
    ) -> Result<Claim> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        self.not_waiting_for_disk(&tx).await?;
        // The earliest pending row of each callback: one index step per callback.
        let heads = self
            .query(
                &tx,
                "WITH RECURSIVE heads AS (
                    (SELECT callback_id, next_attempt_at FROM outbox
                      WHERE status = 'pending' ORDER BY callback_id, next_attempt_at LIMIT 1)
                    UNION ALL
                    SELECT n.callback_id, n.next_attempt_at FROM heads,
                      LATERAL (SELECT callback_id, next_attempt_at FROM outbox
                                WHERE status = 'pending' AND callback_id > heads.callback_id
                                ORDER BY callback_id, next_attempt_at LIMIT 1) n
                 )
                 SELECT callback_id, next_attempt_at FROM heads",
                &[],
            )
            .await?;
        let mut next_due_ms: Option<i64> = None;
        let mut due = Vec::new();
        for r in heads {
            let (callback, at): (i64, i64) = (r.get(0), r.get(1));
            if at <= now_ms {
                due.push(callback);
            } else {
                next_due_ms = Some(next_due_ms.map_or(at, |n| n.min(at)));
            }
        }
        let lease_until = now_ms + self.lease.as_millis() as i64;
        let mut rows = Vec::new();
        for callback in due {
            let room = (limit - rows.len() as i64)
                .min(slots.free.get(&callback).copied().unwrap_or(slots.default) as i64);
            if room <= 0 {
                continue;
            }
            rows.extend(
                self.query(&tx, "UPDATE outbox o SET leased_by = $1, lease_until = $2
                       FROM (SELECT id FROM outbox
                              WHERE callback_id = $3 AND status = 'pending' AND next_attempt_at <= $4
                                AND (lease_until IS NULL OR lease_until < $4)
                              ORDER BY next_attempt_at, id LIMIT $5
                              FOR UPDATE SKIP LOCKED) due
                      WHERE o.id = due.id
                  RETURNING o.id, o.attempts, o.account_id, o.listener_id, o.callback_id, o.event_seq, o.call_id",
                    &[&self.node, &lease_until, &callback, &now_ms, &room],
                )
                .await?,
            );
            if rows.len() as i64 >= limit {
                break;
            }
        }
        // The claimed rows' events, listeners and callbacks (and the callbacks' fallbacks),
        // each read once, in a statement per kind.
        let mut seqs: Vec<i64> = rows.iter().map(|r| r.get(5)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut events: HashMap<i64, Arc<Event>> = HashMap::with_capacity(seqs.len());
        for r in self
            .query(
                &tx,
                "SELECT seq, body FROM events WHERE seq = ANY($1)",
                &[&seqs],
            )
            .await?
        {
            let event = crate::body::event_of(rusqlite::types::ValueRef::Blob(r.get(1)))?;
            events.insert(r.get(0), Arc::new(event));
        }
        let mut wanted: Vec<i64> = rows
            .iter()
            .flat_map(|r| [r.get::<_, i64>(3), r.get::<_, i64>(4)])
            .collect();
        let mut resources = self.resources(&tx, &mut wanted).await?;
        let mut fallbacks: Vec<i64> = resources
            .values()
            .filter_map(|r| r.body.get("fallback_callback_id").and_then(|f| f.as_i64()))
            .filter(|id| !resources.contains_key(id))
            .collect();
        resources.extend(self.resources(&tx, &mut fallbacks).await?);
        let mut deliveries = Vec::with_capacity(rows.len());
        for r in &rows {
            let (id, attempts, account, listener_id, callback_id, seq, call_id): (
                i64,
                i32,
                i64,
                i64,
                i64,
                i64,
                Option<String>,
            ) = (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            );
            let Some(event) = events.get(&seq).cloned() else {
                return Err(crate::StoreError::Corrupt(format!(
                    "delivery {id} is of event {seq}, which is not stored"
                )));
            };
            // Only the account's own resources: a row never names another account's.
            let of_account = |rid: i64| {
                resources
                    .get(&rid)
                    .filter(|r| r.account == AccountId(account))
                    .cloned()
            };
            let listener = of_account(listener_id);
            let callback = of_account(callback_id);
            let fallback = callback
                .as_ref()
                .and_then(|c| c.body.get("fallback_callback_id").and_then(|f| f.as_i64()))
                .and_then(of_account);
            deliveries.push(ClaimedDelivery {
                outbox_id: id,
                callback_id,
                attempts: attempts as u32,
                event,
                listener_id,
                listener_extension_id: listener.as_ref().and_then(|l| l.extension_id),
                only_event: listener
                    .as_ref()
                    .and_then(|l| l.body.get("event"))
                    .and_then(|e| e.as_str())
                    .map(str::to_owned),
                dialect: listener.as_ref().and_then(|l| {
                    dialect_of_version(
                        l.body
                            .get("version")
                            .and_then(|v| v.as_str())
                            .unwrap_or("2.0.0"),
                    )
                }),
                callback,
                fallback,
                call_id,
                call_direction: None,
            });
        }
        // The claim holds once committed: then no other node takes these rows.
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(Claim {
            deliveries,
            next_due_ms,
        })
    }

    /// A claim or an outcome is committed without waiting for the disk: lost in a crash of the
    /// database, it leaves the row to be claimed and sent again (delivery is at least once),
    /// never an acknowledged event lost. The recorder and the claims then wait for no flush.
    async fn not_waiting_for_disk(&self, tx: &Transaction<'_>) -> Result<()> {
        self.execute(tx, "SET LOCAL synchronous_commit = off", &[])
            .await
            .map(|_| ())
    }

    /// Resources by id, in one statement (`ids` sorted and deduplicated on the way).
    async fn resources(
        &self,
        tx: &Transaction<'_>,
        ids: &mut Vec<i64>,
    ) -> Result<HashMap<i64, Arc<Resource>>> {
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.query(
            tx,
            &format!(
                "SELECT {} FROM resources WHERE id = ANY($1)",
                super::RESOURCE_COLUMNS
            ),
            &[&*ids],
        )
        .await?
        .iter()
        .map(|r| super::resource_of(r).map(|res| (res.id, Arc::new(res))))
        .collect()
    }

    /// Keeps this node's leases on rows still being sent (a send that takes longer than a
    /// lease would otherwise be taken by another node and sent twice).
    pub async fn extend_leases(&self, ids: &[i64], now_ms: i64) -> Result<u64> {
        let client = self.client().await?;
        let until = now_ms + self.lease.as_millis() as i64;
        client
            .execute(
                // Rows being recorded now are skipped, not waited for: they are finishing.
                "UPDATE outbox SET lease_until = $3 WHERE id IN (
                    SELECT id FROM outbox WHERE id = ANY($1) AND leased_by = $2
                       FOR UPDATE SKIP LOCKED)",
                &[&ids, &self.node, &until],
            )
            .await
            .map_err(|e| self.failed(e))
    }

    /// Records attempts and moves their rows on, for the rows this node still holds the lease
    /// of (an outcome for a row whose lease ran out changes nothing: another node has it).
    /// A finished row promotes the next of its chain; a callback that answered 410 or kept
    /// failing for `disable_after_ms` is switched off; a row dead on its callback goes to the
    /// callback's fallback (once). Returns the callbacks switched off.
    ///
    pub async fn record_attempts(
        &self,
        outcomes: Vec<AttemptOutcome>,
        disable_after_ms: i64,
    ) -> Result<Vec<Deactivation>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        self.not_waiting_for_disk(&tx).await?;
        let mut deactivated = Vec::new();
        // Reroutes (to a disabled callback's fallback) one by one: they are few.
        for o in outcomes
            .iter()
            .filter(|o| matches!(o.next, Next::Reroute(_)))
        {
            if let Next::Reroute(target) = o.next {
                self.execute(
                    &tx,
                    "UPDATE outbox SET callback_id = $2, leased_by = NULL, lease_until = NULL,
                            next_attempt_at = $3, updated_at = $3
                      WHERE id = $1 AND leased_by = $4",
                    &[&o.outbox_id, &target, &o.at_ms, &self.node],
                )
                .await?;
            }
        }
        let rest: Vec<&AttemptOutcome> = outcomes
            .iter()
            .filter(|o| !matches!(o.next, Next::Reroute(_)))
            .collect();
        let finished = self.finish_rows(&tx, &rest).await?;
        let by_id: HashMap<i64, &AttemptOutcome> = rest.iter().map(|o| (o.outbox_id, *o)).collect();
        let counted: Vec<(&AttemptOutcome, &FinishedRow)> = finished
            .iter()
            .filter_map(|row| Some((*by_id.get(&row.id)?, row)))
            .filter(|(o, _)| counts(o.next))
            .collect();
        self.insert_attempts(&tx, &counted).await?;
        // Callback health: a success ends a failure streak (only a failing callback has one
        // to end, so a healthy one costs no write); a failure starts or goes on with one, and
        // may switch the callback off.
        let mut ended: HashMap<i64, i64> = HashMap::new();
        for (o, row) in &counted {
            if o.next == Next::Succeeded {
                let at = ended.entry(row.callback_id).or_insert(o.at_ms);
                *at = (*at).max(o.at_ms);
            }
        }
        // A failure before a later success of the same callback in this batch started no
        // streak (the success ended it) — unless the receiver answered 410.
        let failures: Vec<&(&AttemptOutcome, &FinishedRow)> = counted
            .iter()
            .filter(|(o, row)| {
                o.next != Next::Succeeded
                    && (o.gone || ended.get(&row.callback_id).is_none_or(|s| o.at_ms > *s))
            })
            .collect();
        if !ended.is_empty() {
            let (callbacks, ats): (Vec<i64>, Vec<i64>) = ended.into_iter().unzip();
            self.execute(
                &tx,
                "UPDATE callback_health h SET failing_since = NULL, last_success = s.at
                   FROM unnest($1::bigint[], $2::bigint[]) AS s(callback_id, at)
                  WHERE h.callback_id = s.callback_id AND h.failing_since IS NOT NULL",
                &[&callbacks, &ats],
            )
            .await?;
        }
        for (o, row) in failures {
            self.record_failure(&tx, o, row, disable_after_ms, &mut deactivated)
                .await?;
        }
        // A delivery that died on its callback goes to the callback's fallback (once), taking
        // its place at the head of its call; the others finished let the next of their chain
        // go.
        let mut chains: Vec<(i64, String)> = Vec::new();
        for (o, row) in &counted {
            let replaced = o.next == Next::Dead && self.to_fallback(&tx, o, row).await?;
            if matches!(o.next, Next::Succeeded | Next::Dead) && !replaced {
                if let Some(call) = &row.call_id {
                    chains.push((row.listener_id, call.clone()));
                }
            }
        }
        let now = rest.iter().map(|o| o.at_ms).max().unwrap_or(0);
        self.promote_next_of(&tx, chains, now).await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(deactivated)
    }

    /// Moves the rows this node still holds the lease of on, in one statement, clearing their
    /// leases; returns what the rest needs of each (an outcome for a row whose lease ran out
    /// changes nothing: another node has it).
    async fn finish_rows(
        &self,
        tx: &Transaction<'_>,
        outcomes: &[&AttemptOutcome],
    ) -> Result<Vec<FinishedRow>> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(outcomes.len());
        let mut statuses = Vec::with_capacity(outcomes.len());
        let mut next_ats = Vec::with_capacity(outcomes.len());
        let mut counted = Vec::with_capacity(outcomes.len());
        let mut errors = Vec::with_capacity(outcomes.len());
        let mut ats = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            let (status, next_at) = match o.next {
                Next::Succeeded => ("succeeded", o.at_ms),
                Next::RetryAt(at) => ("pending", at),
                Next::Dead => ("dead", o.at_ms),
                Next::HoldUntil(at) => ("pending", at),
                Next::Wait => ("pending", WAITING),
                Next::Reroute(_) => unreachable!("recorded apart"),
            };
            ids.push(o.outbox_id);
            statuses.push(status);
            next_ats.push(next_at);
            counted.push(i32::from(counts(o.next)));
            errors.push(o.error.as_deref());
            ats.push(o.at_ms);
        }
        let rows = self
            .query(
                tx,
                "UPDATE outbox o SET status = u.status, next_attempt_at = u.next_at,
                        leased_by = NULL, lease_until = NULL, attempts = o.attempts + u.counted,
                        last_error = u.error, updated_at = u.at
                   FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::int[], $5::text[], $6::bigint[])
                        AS u(id, status, next_at, counted, error, at)
                  WHERE o.id = u.id AND o.leased_by = $7
              RETURNING o.id, o.account_id, o.callback_id, o.fallback_of, o.listener_id, o.call_id",
                &[&ids, &statuses, &next_ats, &counted, &errors, &ats, &self.node],
            )
            .await?;
        if rows.len() < outcomes.len() {
            tracing::debug!(
                outcomes = outcomes.len(),
                held = rows.len(),
                "outcomes for deliveries this node no longer holds: other nodes have them"
            );
        }
        Ok(rows
            .iter()
            .map(|r| FinishedRow {
                id: r.get(0),
                account: AccountId(r.get(1)),
                callback_id: r.get(2),
                fallback_of: r.get(3),
                listener_id: r.get(4),
                call_id: r.get(5),
            })
            .collect())
    }

    /// The attempts made, in one statement.
    async fn insert_attempts(
        &self,
        tx: &Transaction<'_>,
        made: &[(&AttemptOutcome, &FinishedRow)],
    ) -> Result<()> {
        if made.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = made.iter().map(|(o, _)| o.outbox_id).collect();
        let ats: Vec<i64> = made.iter().map(|(o, _)| o.at_ms).collect();
        let codes: Vec<Option<i32>> = made
            .iter()
            .map(|(o, _)| o.status_code.map(i32::from))
            .collect();
        let latencies: Vec<i64> = made.iter().map(|(o, _)| o.latency_ms).collect();
        let errors: Vec<Option<&str>> = made.iter().map(|(o, _)| o.error.as_deref()).collect();
        let responses: Vec<Option<&str>> = made
            .iter()
            .map(|(o, _)| o.response_prefix.as_deref())
            .collect();
        self.execute(
            tx,
            "INSERT INTO attempts (outbox_id, at, status_code, latency_ms, error, response_prefix)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::text[])",
            &[&ids, &ats, &codes, &latencies, &errors, &responses],
        )
        .await?;
        Ok(())
    }

    /// A failed attempt: the callback's failure streak starts or goes on, and the callback is
    /// switched off when it answered 410 or has failed for `disable_after_ms`.
    async fn record_failure(
        &self,
        tx: &Transaction<'_>,
        o: &AttemptOutcome,
        row: &FinishedRow,
        disable_after_ms: i64,
        deactivated: &mut Vec<Deactivation>,
    ) -> Result<()> {
        let since: Option<i64> = self
            .query_one(
                tx,
                "INSERT INTO callback_health (callback_id, failing_since) VALUES ($1, $2)
                 ON CONFLICT (callback_id) DO UPDATE
                    SET failing_since = COALESCE(callback_health.failing_since, $2)
                 RETURNING failing_since",
                &[&row.callback_id, &o.at_ms],
            )
            .await?
            .get(0);
        let Some(reason) = crate::outbox::disable_reason(o, since, disable_after_ms) else {
            return Ok(());
        };
        let changed = self
            .execute(
                tx,
                "UPDATE resources SET body = jsonb_set(body::jsonb, '{enabled}', 'false')::text
                  WHERE id = $1 AND kind = 'callback'
                    AND COALESCE((body::jsonb ->> 'enabled')::boolean, true)",
                &[&row.callback_id],
            )
            .await?;
        if changed > 0 {
            self.config_changed(tx, row.account).await?;
            self.release_waiting(tx, row.account, o.at_ms).await?;
            deactivated.push(Deactivation {
                account: row.account,
                callback_id: row.callback_id,
                reason,
            });
        }
        Ok(())
    }

    /// A dead delivery goes to its callback's fallback, once; returns whether it did.
    async fn to_fallback(
        &self,
        tx: &Transaction<'_>,
        o: &AttemptOutcome,
        row: &FinishedRow,
    ) -> Result<bool> {
        if row.fallback_of.is_some() {
            return Ok(false);
        }
        let fallback: Option<i64> = self
            .query_opt(
                tx,
                "SELECT (body::jsonb ->> 'fallback_callback_id')::bigint FROM resources
                  WHERE id = $1 AND kind = 'callback'",
                &[&row.callback_id],
            )
            .await?
            .and_then(|r| r.get(0));
        let Some(fallback) = fallback.filter(|f| *f != row.callback_id) else {
            return Ok(false);
        };
        self.execute(
            tx,
            "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id, status,
                                 next_attempt_at, created_at, updated_at, fallback_of)
             SELECT account_id, event_seq, listener_id, $2, call_id, 'pending', $3, $3, $3, id
               FROM outbox WHERE id = $1",
            &[&o.outbox_id, &fallback, &o.at_ms],
        )
        .await?;
        Ok(true)
    }

    /// Takes the advisory locks of (listener, call) chains (`chain_key`), in key order, in one
    /// statement. Every transaction takes all the chain locks it needs this way, at once, so
    /// two never wait for each other: a second set taken later in the same transaction could
    /// be out of order with another's (a finalizer round that took each call's chains in turn
    /// deadlocked with ingest and the recorder, which PostgreSQL broke after a second each).
    pub(super) async fn lock_chains(&self, tx: &Transaction<'_>, mut keys: Vec<i64>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort_unstable();
        keys.dedup();
        self.execute(
            tx,
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) AS sorted",
            &[&keys],
        )
        .await?;
        Ok(())
    }

    /// The oldest delivery queued in each of these (listener, call) chains becomes due,
    /// taking its turn with ingest on the chains' locks (taken in key order, as ingest does).
    pub(super) async fn promote_next_of(
        &self,
        tx: &Transaction<'_>,
        mut chains: Vec<(i64, String)>,
        now_ms: i64,
    ) -> Result<()> {
        if chains.is_empty() {
            return Ok(());
        }
        chains.sort_unstable();
        chains.dedup();
        self.lock_chains(tx, chains.iter().map(|(l, c)| chain_key(*l, c)).collect())
            .await?;
        let (listeners, calls): (Vec<i64>, Vec<String>) = chains.into_iter().unzip();
        self.execute(
            tx,
            // The head of each chain by one index probe (`outbox_call_queue`).
            "UPDATE outbox o SET status = 'pending', next_attempt_at = GREATEST(o.next_attempt_at, $3)
               FROM unnest($1::bigint[], $2::text[]) AS c(listener_id, call_id),
                    LATERAL (SELECT q.id FROM outbox q
                              WHERE q.listener_id = c.listener_id AND q.call_id = c.call_id
                                AND q.status IN ('pending', 'queued') AND q.status = 'queued'
                              ORDER BY q.id LIMIT 1) head
              WHERE o.id = head.id",
            &[&listeners, &calls, &now_ms],
        )
        .await?;
        Ok(())
    }

    /// After an account's callbacks changed (switched on or off, a fallback set): the
    /// deliveries of a callback whose events can go nowhere wait; those of one that can again
    /// are due now (as on SQLite).
    pub(super) async fn release_waiting(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
        now_ms: i64,
    ) -> Result<()> {
        let (on, off): (Vec<_>, Vec<_>) = self
            .deliverability(tx, account)
            .await?
            .into_iter()
            .partition(|(_, deliverable)| *deliverable);
        let on: Vec<i64> = on.into_iter().map(|(id, _)| id).collect();
        let off: Vec<i64> = off.into_iter().map(|(id, _)| id).collect();
        self.execute(
            tx,
            "UPDATE outbox SET next_attempt_at = $2 WHERE callback_id = ANY($1) AND status = 'pending'
                AND next_attempt_at != $2",
            &[&off, &WAITING],
        )
        .await?;
        self.execute(
            tx,
            "UPDATE outbox SET next_attempt_at = $3 WHERE callback_id = ANY($1) AND status = 'pending'
                AND next_attempt_at = $2",
            &[&on, &WAITING, &now_ms],
        )
        .await?;
        Ok(())
    }

    /// An account's matching configuration changed: every node's listener index of it is
    /// stale from this transaction's commit on.
    pub(super) async fn config_changed(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
    ) -> Result<()> {
        self.execute(
            tx,
            "UPDATE accounts SET config_version = config_version + 1 WHERE id = $1",
            &[&account.0],
        )
        .await?;
        Ok(())
    }
}
