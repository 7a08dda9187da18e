//! What users see and do about deliveries on PostgreSQL: a callback's deliveries and health, a
//! call's deliveries, retrying one, replaying a listener's events, expiring what waited too
//! long for its callback, and forgetting old attempts. The statuses, the health tally and
//! which callbacks can deliver are the SQLite store's rules (`crate::outbox`).

use super::PgStore;
use crate::outbox::{
    deliverable, delivery_record, revision_of, tally, AttemptRecord, CallDeliveries,
    CallbackHealth, DeliveryPage, DeliveryRecord, DeliveryRow, RECENT_DELIVERIES,
};
use crate::{Result, StoreError};
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use switchboard_model::{AccountId, Direction};

/// The columns a delivery is read from, in [`delivery_of`]'s order.
const DELIVERY_COLUMNS: &str = "o.id, e.id::text, o.listener_id, o.callback_id, o.status,
    o.attempts, o.next_attempt_at, o.last_error, o.created_at";

fn delivery_of(r: &tokio_postgres::Row, stopped: bool) -> DeliveryRecord {
    let status: String = r.get(4);
    let attempts: i32 = r.get(5);
    delivery_record(
        DeliveryRow {
            id: r.get(0),
            event_id: r.get(1),
            listener_id: r.get(2),
            callback_id: r.get(3),
            status: &status,
            attempts: attempts as u32,
            due: r.get(6),
            last_error: r.get(7),
            created_at: r.get(8),
        },
        stopped,
    )
}

impl PgStore {
    /// The account's callbacks, each with whether its deliveries can go anywhere.
    pub(super) async fn deliverability(
        &self,
        tx: &Transaction<'_>,
        account: AccountId,
    ) -> Result<Vec<(i64, bool)>> {
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
        Ok(deliverable(&callbacks))
    }

    /// Each delivery's attempts, in order.
    async fn with_attempts(
        &self,
        tx: &Transaction<'_>,
        items: &mut [DeliveryRecord],
    ) -> Result<()> {
        let ids: Vec<i64> = items.iter().map(|d| d.id).collect();
        let rows = self
            .query(
                tx,
                "SELECT outbox_id, at, status_code, latency_ms, error, response_prefix FROM attempts
                  WHERE outbox_id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await?;
        let mut of: HashMap<i64, Vec<AttemptRecord>> = HashMap::new();
        for r in rows {
            let code: Option<i32> = r.get(2);
            of.entry(r.get(0)).or_default().push(AttemptRecord {
                at: r.get(1),
                status_code: code.and_then(|c| u16::try_from(c).ok()),
                latency_ms: r.get(3),
                error: r.get(4),
                response: r.get(5),
            });
        }
        for item in items {
            item.attempt_log = of.remove(&item.id).unwrap_or_default();
        }
        Ok(())
    }

    /// What was delivered about a call (by the hub's id): its events' deliveries and its call
    /// logs'. `None` when the account has no such call.
    pub async fn call_deliveries(
        &self,
        account: AccountId,
        call_id: String,
    ) -> Result<Option<CallDeliveries>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let Some(row) = self
            .query_opt(
                &tx,
                "SELECT event_seqs FROM calls WHERE id = $1 AND account_id = $2",
                &[&call_id, &account.0],
            )
            .await?
        else {
            return Ok(None);
        };
        let mut seqs: Vec<i64> = row.get(0);
        let mut out = CallDeliveries::default();
        for r in self
            .query(
                &tx,
                "SELECT seq, id::text, kind, source_key, received_at FROM events
                  WHERE account_id = $1 AND call_id = $2 AND kind IN ('call.log', 'call.missed')
                  ORDER BY seq",
                &[&account.0, &call_id],
            )
            .await?
        {
            let key: String = r.get(3);
            seqs.push(r.get(0));
            out.call_logs
                .push((r.get(1), r.get(2), revision_of(&key), r.get(4)));
        }
        seqs.sort_unstable();
        seqs.dedup();
        let stopped: Vec<i64> = self
            .deliverability(&tx, account)
            .await?
            .into_iter()
            .filter(|(_, deliverable)| !deliverable)
            .map(|(id, _)| id)
            .collect();
        let rows = self
            .query(
                &tx,
                &format!(
                    "SELECT {DELIVERY_COLUMNS}, e.kind FROM outbox o JOIN events e ON e.seq = o.event_seq
                      WHERE o.event_seq = ANY($1) AND o.account_id = $2 ORDER BY o.event_seq, o.id"
                ),
                &[&seqs, &account.0],
            )
            .await?;
        let mut records: Vec<DeliveryRecord> = Vec::with_capacity(rows.len());
        let mut kinds: Vec<String> = Vec::with_capacity(rows.len());
        for r in &rows {
            let callback: i64 = r.get(3);
            records.push(delivery_of(r, stopped.contains(&callback)));
            kinds.push(r.get(9));
        }
        self.with_attempts(&tx, &mut records).await?;
        out.deliveries = kinds.into_iter().zip(records).collect();
        Ok(Some(out))
    }

    /// The health of these callbacks of an account.
    pub async fn callback_health(
        &self,
        account: AccountId,
        callbacks: Vec<i64>,
    ) -> Result<Vec<CallbackHealth>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let mut out = Vec::with_capacity(callbacks.len());
        for callback_id in callbacks {
            let (failing_since, last_success) = self
                .query_opt(
                    &tx,
                    "SELECT failing_since, last_success FROM callback_health WHERE callback_id = $1",
                    &[&callback_id],
                )
                .await?
                .map_or((None, None), |r| (r.get(0), r.get(1)));
            let mut health = CallbackHealth {
                callback_id,
                failing_since,
                last_success,
                ..CallbackHealth::default()
            };
            for r in self
                .query(
                    &tx,
                    "SELECT status, attempts FROM outbox WHERE account_id = $1 AND callback_id = $2
                      ORDER BY created_at DESC LIMIT $3",
                    &[&account.0, &callback_id, &RECENT_DELIVERIES],
                )
                .await?
            {
                let (status, attempts): (String, i32) = (r.get(0), r.get(1));
                tally(&mut health, &status, attempts as u32);
            }
            out.push(health);
        }
        Ok(out)
    }

    /// A callback's deliveries, newest first, with their attempts.
    pub async fn deliveries_of_callback(
        &self,
        account: AccountId,
        callback_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<DeliveryPage> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let total: i64 = self
            .query_one(
                &tx,
                "SELECT COUNT(*) FROM outbox WHERE account_id = $1 AND callback_id = $2",
                &[&account.0, &callback_id],
            )
            .await?
            .get(0);
        // While it can deliver nowhere, the rest of each call's deliveries wait too.
        let stopped = self
            .deliverability(&tx, account)
            .await?
            .iter()
            .any(|(id, deliverable)| *id == callback_id && !deliverable);
        let waiting: i64 = self
            .query_one(
                &tx,
                "SELECT COUNT(*) FROM outbox WHERE account_id = $1 AND callback_id = $2
                    AND ((status = 'pending' AND next_attempt_at = $3)
                         OR ($4 AND status IN ('pending', 'queued')))",
                &[&account.0, &callback_id, &crate::WAITING, &stopped],
            )
            .await?
            .get(0);
        let mut items: Vec<DeliveryRecord> = self
            .query(
                &tx,
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM outbox o JOIN events e ON e.seq = o.event_seq
                      WHERE o.account_id = $1 AND o.callback_id = $2
                      ORDER BY o.created_at DESC, o.id DESC LIMIT $3 OFFSET $4"
                ),
                &[&account.0, &callback_id, &limit, &offset],
            )
            .await?
            .iter()
            .map(|r| delivery_of(r, stopped))
            .collect();
        self.with_attempts(&tx, &mut items).await?;
        Ok(DeliveryPage {
            total,
            waiting,
            items,
        })
    }

    /// Sends a delivery once more (whatever its state), at once.
    pub async fn retry_delivery(
        &self,
        account: AccountId,
        callback_id: i64,
        id: i64,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let now = jiff::Timestamp::now().as_millisecond();
        let n = self
            .execute(
                &tx,
                "UPDATE outbox SET status = 'pending', leased_by = NULL, lease_until = NULL,
                        next_attempt_at = $4, updated_at = $4
                  WHERE id = $1 AND account_id = $2 AND callback_id = $3",
                &[&id, &account.0, &callback_id, &now],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(|e| self.failed(e))
    }

    /// Re-sends, as new deliveries to the listener's current callback, every event that
    /// matched the listener and was received in `[from_ns, to_ns)`. Returns how many.
    pub async fn replay(
        &self,
        account: AccountId,
        listener_id: i64,
        callback_id: i64,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let now = jiff::Timestamp::now().as_millisecond();
        // The events that went to the listener then, each once, in log order, with the order
        // key (the call) their first delivery had.
        let rows = self
            .query(
                &tx,
                "SELECT e.seq, (SELECT o.call_id FROM outbox o WHERE o.event_seq = e.seq
                                   AND o.listener_id = $2 ORDER BY o.id LIMIT 1)
                   FROM events e
                  WHERE e.account_id = $1 AND e.received_at >= $3 AND e.received_at < $4
                    AND EXISTS (SELECT 1 FROM outbox o WHERE o.event_seq = e.seq AND o.listener_id = $2)
                  ORDER BY e.seq",
                &[&account.0, &listener_id, &from_ns, &to_ns],
            )
            .await?;
        // Every chain the replay adds to, locked at once (`lock_chains`).
        self.lock_chains(
            &tx,
            rows.iter()
                .filter_map(|r| r.get::<_, Option<String>>(1))
                .map(|call| super::outbox::chain_key(listener_id, &call))
                .collect(),
        )
        .await?;
        for r in &rows {
            let (seq, call): (i64, Option<String>) = (r.get(0), r.get(1));
            let status = match &call {
                Some(call) => {
                    // Behind an unfinished delivery of the chain (its lock held).
                    let ahead = self
                        .query_opt(
                            &tx,
                            "SELECT id FROM outbox WHERE listener_id = $1 AND call_id = $2
                                AND status IN ('pending', 'queued') LIMIT 1",
                            &[&listener_id, call],
                        )
                        .await?;
                    if ahead.is_some() {
                        "queued"
                    } else {
                        "pending"
                    }
                }
                None => "pending",
            };
            self.execute(
                &tx,
                "INSERT INTO outbox (account_id, event_seq, listener_id, callback_id, call_id, status,
                                     next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7)",
                &[&account.0, &seq, &listener_id, &callback_id, &call, &status, &now],
            )
            .await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(rows.len())
    }

    /// Deliveries that waited since before `before_ms` for their callback to be switched on
    /// (it is off, and no fallback is on) expire: never sent, listed as `expired`. The next
    /// delivery of each call takes its place. Returns how many expired. Rows are taken with
    /// `SKIP LOCKED`, so nodes that expire at once expire each row once.
    pub async fn expire_waiting(&self, before_ms: i64) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let now = jiff::Timestamp::now().as_millisecond();
        let accounts: Vec<i64> = self
            .query(
                &tx,
                "SELECT DISTINCT account_id FROM resources WHERE kind = 'callback'
                    AND (body::jsonb ->> 'enabled') = 'false'",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut expired = 0;
        let (mut chains, mut touched) = (Vec::new(), Vec::new());
        for account in accounts {
            let account = AccountId(account);
            let stopped: Vec<i64> = self
                .deliverability(&tx, account)
                .await?
                .into_iter()
                .filter(|(_, deliverable)| !deliverable)
                .map(|(id, _)| id)
                .collect();
            if stopped.is_empty() {
                continue;
            }
            let old = self
                .query(
                    &tx,
                    "UPDATE outbox o SET status = 'expired', updated_at = $3,
                            last_error = 'waited longer than the limit for its callback to be switched on'
                       FROM (SELECT id FROM outbox WHERE callback_id = ANY($1) AND created_at < $2
                                AND status IN ('pending', 'queued') FOR UPDATE SKIP LOCKED) old
                      WHERE o.id = old.id
                  RETURNING o.listener_id, o.call_id",
                    &[&stopped, &before_ms, &now],
                )
                .await?;
            expired += old.len();
            chains.extend(
                old.iter()
                    .filter_map(|r| r.get::<_, Option<String>>(1).map(|c| (r.get(0), c))),
            );
            touched.push(account);
        }
        // Every account's chains promoted in one go (their locks taken at once: `lock_chains`);
        // then each account's waiting deliveries released.
        self.promote_next_of(&tx, chains, now).await?;
        for account in touched {
            self.release_waiting(&tx, account, now).await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(expired)
    }

    /// The direction the hub concluded for each of these calls (by its id), where it has one.
    pub async fn call_directions(&self, ids: Vec<String>) -> Result<HashMap<String, Direction>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let rows = self
            .query(
                &tx,
                "SELECT id, direction FROM calls WHERE id = ANY($1) AND direction IS NOT NULL",
                &[&ids],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let name: String = r.get(1);
                let direction = serde_json::from_value::<Direction>(name.into()).ok()?;
                Some((r.get(0), direction))
            })
            .collect())
    }

    /// Forgets attempts made before `before_ms`; returns how many.
    pub async fn prune_attempts(&self, before_ms: i64) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let n = self
            .execute(&tx, "DELETE FROM attempts WHERE at < $1", &[&before_ms])
            .await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(n as usize)
    }

    /// Forgets a callback's failure streak (it was switched on again by hand).
    pub async fn reset_callback_health(&self, callback_id: i64) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        self.execute(
            &tx,
            "DELETE FROM callback_health WHERE callback_id = $1",
            &[&callback_id],
        )
        .await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }
}
