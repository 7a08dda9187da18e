//! Reads of calls and agents on PostgreSQL, with the same answers as SQLite's
//! (`crate::calls`): a finalized call's record as written, an open call's folded from its
//! events.

use super::PgStore;
use crate::{AgentRow, CallQuery, Result, StoredCall};
use deadpool_postgres::Transaction;
use jiff::Timestamp;
use std::collections::HashMap;
use switchboard_engine::calls::{CallFold, CallRecord};
use switchboard_model::{normalize_number, AccountId, Event};

impl PgStore {
    /// A call by the hub's id or by any external id it is known by, with its events in the
    /// order they occurred.
    pub async fn call(
        &self,
        account: AccountId,
        id: String,
    ) -> Result<Option<(StoredCall, Vec<Event>)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let by_alias: Option<String> = self
            .query_opt(
                &tx,
                // Each id it may be, by the key, in order (`aliases_naming`).
                "SELECT a.call_id FROM unnest($2::text[]) WITH ORDINALITY AS k(alias, n),
                     LATERAL (SELECT call_id FROM call_aliases
                               WHERE account_id = $1 AND alias = k.alias OFFSET 0) AS a
                  ORDER BY k.n LIMIT 1",
                &[&account.0, &switchboard_engine::calls::aliases_naming(&id)],
            )
            .await?
            .map(|r| r.get(0));
        let call_id = by_alias.unwrap_or(id);
        let Some(row) = self
            .query_opt(
                &tx,
                "SELECT id, record, revision, merged::text, state, event_seqs FROM calls
                  WHERE id = $1 AND account_id = $2",
                &[&call_id, &account.0],
            )
            .await?
        else {
            return Ok(None);
        };
        let mut events = self.events_at(&tx, &row.get::<_, Vec<i64>>(5)).await?;
        let mut calls = self.stored_calls(&tx, vec![row], Some(&events)).await?;
        events.sort_by(|a, b| {
            (a.fact.occurred_at, &a.fact.source_key).cmp(&(b.fact.occurred_at, &b.fact.source_key))
        });
        Ok(calls.pop().map(|call| (call, events)))
    }

    /// One page of an account's calls, newest first, and how many match in all.
    pub async fn calls(&self, account: AccountId, q: CallQuery) -> Result<(i64, Vec<StoredCall>)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let mut words = Vec::new();
        if let Some(n) = &q.number {
            words.push(format!(" {} ", normalize_number(n)));
        }
        if let Some(e) = &q.extension {
            words.push(format!(" ext:{e} "));
        }
        if let Some(a) = &q.agent {
            words.push(format!(" agent:{a} "));
        }
        let filter = "FROM calls WHERE account_id = $1 AND cardinality(event_seqs) > 0
                        AND ($2::text IS NULL OR direction = $2)
                        AND ($3::text IS NULL OR disposition = $3)
                        AND ($4::bool IS NULL OR missed = $4)
                        AND (NOT $5 OR state IN ('initiated', 'ringing', 'active'))
                        AND NOT EXISTS (SELECT 1 FROM unnest($6::text[]) AS w WHERE strpos(search, w) = 0)
                        AND ($7::bigint IS NULL OR started_at >= $7)
                        AND ($8::bigint IS NULL OR started_at < $8)";
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &account.0,
            &q.direction,
            &q.disposition,
            &q.missed,
            &q.in_progress,
            &words,
            &q.since_ms,
            &q.until_ms,
        ];
        let total: i64 = self
            .query_one(&tx, &format!("SELECT COUNT(*) {filter}"), &args)
            .await?
            .get(0);
        let (before_at, before_id) = match &q.before {
            Some((at, id)) => (Some(*at), Some(id.clone())),
            None => (None, None),
        };
        let mut page: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args.to_vec();
        page.push(&before_at);
        page.push(&before_id);
        page.push(&q.limit);
        let rows = self
            .query(
                &tx,
                &format!(
                    "SELECT id, record, revision, merged::text, state, event_seqs {filter}
                        AND ($9::bigint IS NULL OR started_at < $9 OR (started_at = $9 AND id < $10))
                      ORDER BY started_at DESC NULLS LAST, id DESC LIMIT $11"
                ),
                &page,
            )
            .await?;
        let calls = self.stored_calls(&tx, rows, None).await?;
        Ok((total, calls))
    }

    /// Calls from rows of `id, record, revision, merged, state, event_seqs`, with their ids;
    /// an open call's record folded from `events` when given, else from its own.
    async fn stored_calls(
        &self,
        tx: &Transaction<'_>,
        rows: Vec<tokio_postgres::Row>,
        events: Option<&[Event]>,
    ) -> Result<Vec<StoredCall>> {
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
        for r in self
            .query(
                tx,
                "SELECT call_id, alias FROM call_aliases WHERE call_id = ANY($1) ORDER BY alias",
                &[&ids],
            )
            .await?
        {
            aliases.entry(r.get(0)).or_default().push(r.get(1));
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.get(0);
            let state: String = r.get(4);
            let record: CallRecord = if state == "finalized" {
                let stored: &[u8] = r.get(1);
                serde_json::from_slice(&crate::body::unpack_json(
                    rusqlite::types::ValueRef::Blob(stored),
                )?)?
            } else {
                match events {
                    Some(events) => CallFold::of(events).finish(),
                    None => {
                        CallFold::of(&self.events_at(tx, &r.get::<_, Vec<i64>>(5)).await?).finish()
                    }
                }
            };
            out.push(StoredCall {
                aliases: aliases.remove(&id).unwrap_or_default(),
                id,
                revision: r.get(2),
                merged: serde_json::from_str(r.get::<_, &str>(3))?,
                record,
                finalized: state == "finalized",
            });
        }
        Ok(out)
    }

    /// Every agent of the account with its current state and since when.
    pub async fn agents(&self, account: AccountId) -> Result<Vec<AgentRow>> {
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT agent_id, state, since, device FROM agents WHERE account_id = $1 ORDER BY agent_id",
                &[&account.0],
            )
            .await
            .map_err(|e| self.failed(e))?
            .iter()
            .map(|r| AgentRow {
                agent_id: r.get(0),
                state: r.get(1),
                since: Timestamp::from_millisecond(r.get(2))
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                device: r.get(3),
            })
            .collect())
    }

    /// How many events the account has in its log.
    pub async fn count_events(&self, account: AccountId) -> Result<i64> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT COUNT(*) FROM events WHERE account_id = $1",
                &[&account.0],
            )
            .await
            .map_err(|e| self.failed(e))?
            .get(0))
    }
}
