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
        let mut deliveries = Vec::with_capacity(rows.len());
        let mut resources: HashMap<i64, Option<Arc<Resource>>> = HashMap::new();
        let mut events: HashMap<i64, Arc<Event>> = HashMap::new();
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
            let event = match events.get(&seq) {
                Some(e) => e.clone(),
                None => {
                    let row = self
                        .query_one(&tx, "SELECT body FROM events WHERE seq = $1", &[&seq])
                        .await?;
                    let event = Arc::new(crate::body::event_of(rusqlite::types::ValueRef::Blob(
                        row.get(0),
                    ))?);
                    events.insert(seq, event.clone());
                    event
                }
            };
            let account = AccountId(account);
            let listener = self
                .resource(&tx, &mut resources, account, listener_id)
                .await?;
            let callback = self
                .resource(&tx, &mut resources, account, callback_id)
                .await?;
            let fallback_id = callback
                .as_ref()
                .and_then(|c| c.body.get("fallback_callback_id").and_then(|f| f.as_i64()));
            let fallback = match fallback_id {
                Some(f) => self.resource(&tx, &mut resources, account, f).await?,
                None => None,
            };
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

    /// A resource of the account by id, read once per claim.
    async fn resource(
        &self,
        tx: &Transaction<'_>,
        seen: &mut HashMap<i64, Option<Arc<Resource>>>,
        account: AccountId,
        id: i64,
    ) -> Result<Option<Arc<Resource>>> {
        if let Some(r) = seen.get(&id) {
            return Ok(r.clone());
        }
        let row = self
            .query_opt(
                tx,
                &format!(
                    "SELECT {} FROM resources WHERE id = $1 AND account_id = $2",
                    super::RESOURCE_COLUMNS
                ),
                &[&id, &account.0],
            )
            .await?;
        let resource = row
            .map(|r| super::resource_of(&r))
            .transpose()?
            .map(Arc::new);
        seen.insert(id, resource.clone());
        Ok(resource)
    }

    /// Keeps this node's leases on rows still being sent (a send that takes longer than a
    /// lease would otherwise be taken by another node and sent twice).
    pub async fn extend_leases(&self, ids: &[i64], now_ms: i64) -> Result<u64> {
        let client = self.client().await?;
        let until = now_ms + self.lease.as_millis() as i64;
        client
            .execute(
                "UPDATE outbox SET lease_until = $3 WHERE id = ANY($1) AND leased_by = $2",
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
        let mut deactivated = Vec::new();
        for o in &outcomes {
            self.record_one(&tx, o, disable_after_ms, &mut deactivated)
                .await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(deactivated)
    }

    async fn record_one(
        &self,
        tx: &Transaction<'_>,
        o: &AttemptOutcome,
        disable_after_ms: i64,
        deactivated: &mut Vec<Deactivation>,
    ) -> Result<()> {
        if let Next::Reroute(target) = o.next {
            self.execute(
                tx,
                "UPDATE outbox SET callback_id = $2, leased_by = NULL, lease_until = NULL,
                        next_attempt_at = $3, updated_at = $3
                  WHERE id = $1 AND leased_by = $4",
                &[&o.outbox_id, &target, &o.at_ms, &self.node],
            )
            .await?;
            return Ok(());
        }
        let (status, next_at, counted) = match o.next {
            Next::Succeeded => ("succeeded", o.at_ms, true),
            Next::RetryAt(at) => ("pending", at, true),
            Next::Dead => ("dead", o.at_ms, true),
            Next::HoldUntil(at) => ("pending", at, false),
            Next::Wait => ("pending", WAITING, false),
            Next::Reroute(_) => unreachable!("handled above"),
        };
        let row = self.query_opt(tx, "UPDATE outbox SET status = $2, next_attempt_at = $3, leased_by = NULL, lease_until = NULL,
                        attempts = attempts + $4, last_error = $5, updated_at = $6
                  WHERE id = $1 AND leased_by = $7
              RETURNING account_id, callback_id, fallback_of, listener_id, call_id",
                &[
                    &o.outbox_id,
                    &status,
                    &next_at,
                    &i32::from(counted),
                    &o.error,
                    &o.at_ms,
                    &self.node,
                ],
            )
            .await?;
        let Some(row) = row else {
            tracing::debug!(
                outbox_id = o.outbox_id,
                "an outcome for a delivery this node no longer holds: another node has it"
            );
            return Ok(());
        };
        let (account, callback_id, fallback_of, listener_id, call_id): (
            i64,
            i64,
            Option<i64>,
            i64,
            Option<String>,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let account = AccountId(account);
        if !counted {
            return Ok(());
        }
        self.execute(
            tx,
            "INSERT INTO attempts (outbox_id, at, status_code, latency_ms, error, response_prefix)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &o.outbox_id,
                &o.at_ms,
                &o.status_code.map(i32::from),
                &o.latency_ms,
                &o.error,
                &o.response_prefix,
            ],
        )
        .await?;
        // Callback health: how long it has been failing without a success in between.
        if o.next == Next::Succeeded {
            self.execute(
                tx,
                "UPDATE callback_health SET failing_since = NULL, last_success = $2
                  WHERE callback_id = $1 AND failing_since IS NOT NULL",
                &[&callback_id, &o.at_ms],
            )
            .await?;
        } else {
            let since: Option<i64> = self
                .query_one(
                    tx,
                    "INSERT INTO callback_health (callback_id, failing_since) VALUES ($1, $2)
                     ON CONFLICT (callback_id) DO UPDATE
                        SET failing_since = COALESCE(callback_health.failing_since, $2)
                     RETURNING failing_since",
                    &[&callback_id, &o.at_ms],
                )
                .await?
                .get(0);
            if let Some(reason) = crate::outbox::disable_reason(o, since, disable_after_ms) {
                let changed = self.execute(tx, "UPDATE resources SET body = jsonb_set(body::jsonb, '{enabled}', 'false')::text
                          WHERE id = $1 AND kind = 'callback'
                            AND COALESCE((body::jsonb ->> 'enabled')::boolean, true)",
                        &[&callback_id],
                    )
                    .await?;
                if changed > 0 {
                    self.config_changed(tx, account).await?;
                    self.release_waiting(tx, account, o.at_ms).await?;
                    deactivated.push(Deactivation {
                        account,
                        callback_id,
                        reason,
                    });
                }
            }
        }
        // A delivery that died on its callback goes to the callback's fallback (once).
        let mut replaced = false;
        if o.next == Next::Dead && fallback_of.is_none() {
            let fallback: Option<i64> = self
                .query_opt(
                    tx,
                    "SELECT (body::jsonb ->> 'fallback_callback_id')::bigint FROM resources
                      WHERE id = $1 AND kind = 'callback'",
                    &[&callback_id],
                )
                .await?
                .and_then(|r| r.get(0));
            if let Some(fallback) = fallback.filter(|f| *f != callback_id) {
                replaced = true;
                self.execute(tx, "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id, status,
                                         next_attempt_at, created_at, updated_at, fallback_of)
                     SELECT account_id, event_seq, listener_id, $2, call_id, 'pending', $3, $3, $3, id
                       FROM outbox WHERE id = $1",
                    &[&o.outbox_id, &fallback, &o.at_ms],
                )
                .await?;
            }
        }
        if matches!(o.next, Next::Succeeded | Next::Dead) && !replaced {
            if let Some(call) = call_id {
                self.promote_next(tx, listener_id, &call, o.at_ms).await?;
            }
        }
        Ok(())
    }

    /// The oldest delivery queued for a listener and call becomes due, taking its turn with
    /// ingest on the chain's lock.
    pub(super) async fn promote_next(
        &self,
        tx: &Transaction<'_>,
        listener: i64,
        call: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.execute(
            tx,
            "SELECT pg_advisory_xact_lock($1)",
            &[&chain_key(listener, call)],
        )
        .await?;
        self.execute(
            tx,
            "UPDATE outbox SET status = 'pending', next_attempt_at = GREATEST(next_attempt_at, $3)
              WHERE id = (SELECT id FROM outbox WHERE listener_id = $1 AND call_id = $2
                             AND status = 'queued' ORDER BY id LIMIT 1)",
            &[&listener, &call, &now_ms],
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
        let callbacks = self
            .query(
                tx,
                &format!(
                    "SELECT {} FROM resources WHERE kind = 'callback' AND account_id = $1 ORDER BY id",
                    super::RESOURCE_COLUMNS
                ),
                &[&account.0],
            )
            .await?
            .iter()
            .map(super::resource_of)
            .collect::<Result<Vec<_>>>()?;
        let (on, off): (Vec<_>, Vec<_>) = crate::outbox::deliverable(&callbacks)
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
