//! Management resources on PostgreSQL: the same documents and rules as on SQLite
//! (`crate::resources`), and every change to what decides matching bumps the account's
//! `config_version` in the same transaction, so every node's next ingest rebuilds its
//! listener index.

use super::{resource_of, PgStore, RESOURCE_COLUMNS};
use crate::resources::{Blocker, Kind, ListQuery, NewResource, Owner, Ref};
use crate::{Resource, Result, StoreError};
use deadpool_postgres::Transaction;
use serde_json::Value;
use switchboard_model::AccountId;

impl PgStore {
    /// Creates a resource after checking its references.
    pub async fn create_resource(&self, new: NewResource) -> Result<Resource> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let made = self.insert_in(&tx, new).await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(made)
    }

    /// Creates several resources in one transaction; `build` sees the ids made so far. The
    /// builder is the SQLite store's synchronous one: it runs on a blocking thread and hands
    /// each resource over to this transaction, waiting for its id.
    pub async fn create_resources<F>(&self, build: F) -> Result<Vec<Resource>>
    where
        F: FnOnce(&mut dyn FnMut(NewResource) -> Result<Resource>) -> Result<()> + Send + 'static,
    {
        type Ask = (NewResource, tokio::sync::oneshot::Sender<Result<Resource>>);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let (ask, mut asked) = tokio::sync::mpsc::channel::<Ask>(1);
        let builder = tokio::task::spawn_blocking(move || {
            let mut add = |new: NewResource| -> Result<Resource> {
                let (reply, made) = tokio::sync::oneshot::channel();
                ask.blocking_send((new, reply))
                    .map_err(|_| StoreError::Closed)?;
                made.blocking_recv().map_err(|_| StoreError::Closed)?
            };
            build(&mut add)
        });
        let mut made = Vec::new();
        while let Some((new, reply)) = asked.recv().await {
            let res = self.insert_in(&tx, new).await;
            if let Ok(r) = &res {
                made.push(r.clone());
            }
            // The builder decides what a failure means (it is given back to it).
            let _ = reply.send(res);
        }
        builder
            .await
            .map_err(|e| StoreError::Commit(format!("building resources failed: {e}")))??;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(made)
    }

    /// Inserts a resource in `tx` after checking its references.
    async fn insert_in(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        new: NewResource,
    ) -> Result<Resource> {
        self.check_refs(tx, new.owner, &new.refs).await?;
        let created_at = jiff::Timestamp::now().as_second();
        let id: i64 = self
            .query_one(
                tx,
                "INSERT INTO resources (kind, account_id, extension_id, parent_id, body, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &new.kind.as_str(),
                    &new.owner.account.0,
                    &new.owner.extension_id,
                    &new.parent_id,
                    &new.body.to_string(),
                    &created_at,
                ],
            )
            .await?
            .get(0);
        if new.kind.affects_matching() {
            self.config_changed(tx, new.owner.account).await?;
        }
        Ok(Resource {
            id,
            kind: new.kind,
            account: new.owner.account,
            extension_id: new.owner.extension_id,
            parent_id: new.parent_id,
            body: new.body,
            created_at,
        })
    }

    pub async fn get_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
    ) -> Result<Option<Resource>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        self.get_in(&tx, kind, owner, parent_id, id, false).await
    }

    /// The owner's resource, locked for the transaction when `lock`.
    async fn get_in(
        &self,
        tx: &Transaction<'_>,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
        lock: bool,
    ) -> Result<Option<Resource>> {
        let sql = format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources
              WHERE id = $1 AND kind = $2 AND account_id = $3
                AND ($4::bigint IS NULL OR extension_id = $4)
                AND ($5::bigint IS NULL OR parent_id = $5){}",
            if lock { " FOR UPDATE" } else { "" }
        );
        self.query_opt(
            tx,
            &sql,
            &[
                &id,
                &kind.as_str(),
                &owner.account.0,
                &owner.extension_id,
                &parent_id,
            ],
        )
        .await?
        .map(|r| resource_of(&r))
        .transpose()
    }

    /// Each resource a document names must be one its owner may see (as on SQLite).
    async fn check_refs(&self, tx: &Transaction<'_>, owner: Owner, refs: &[Ref]) -> Result<()> {
        for r in refs {
            let found = self
                .query_opt(
                    tx,
                    "SELECT id FROM resources WHERE id = $1 AND kind = $2 AND account_id = $3
                       AND ($4::bigint IS NULL OR extension_id = $4)",
                    &[
                        &r.id,
                        &r.kind.as_str(),
                        &owner.account.0,
                        &owner.extension_id,
                    ],
                )
                .await?;
            if found.is_none() {
                return Err(StoreError::MissingRef {
                    field: r.field.clone(),
                    kind: r.kind.as_str(),
                    id: r.id,
                });
            }
        }
        Ok(())
    }

    /// Replaces a resource's document; `NotFound` when the owner has no such resource. A
    /// callback switched on or off releases (or holds) the deliveries that wait for it.
    pub async fn update_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
        update: impl FnOnce(&Resource) -> Result<(Value, Vec<Ref>)> + Send + 'static,
    ) -> Result<Resource> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let mut res = self
            .get_in(&tx, kind, owner, parent_id, id, true)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (body, refs) = update(&res)?;
        self.check_refs(&tx, owner, &refs).await?;
        self.execute(
            &tx,
            "UPDATE resources SET body = $1 WHERE id = $2",
            &[&body.to_string(), &id],
        )
        .await?;
        if kind.affects_matching() {
            self.config_changed(&tx, owner.account).await?;
        }
        if kind == Kind::Callback {
            // Switched on or off, or a fallback set: its deliveries wait or go.
            let now_ms = jiff::Timestamp::now().as_millisecond();
            self.release_waiting(&tx, owner.account, now_ms).await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        res.body = body;
        Ok(res)
    }

    /// Deletes a resource and its children, unless a blocker still refers to it.
    pub async fn delete_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
        blockers: Vec<Blocker>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        self.get_in(&tx, kind, owner, parent_id, id, true)
            .await?
            .ok_or(StoreError::NotFound)?;
        // A blocker's field is a path into the document (`filter_value.id`).
        for b in &blockers {
            let used = self
                .query_opt(
                    &tx,
                    "SELECT id FROM resources WHERE kind = $1 AND account_id = $2
                       AND (body::jsonb #> string_to_array($3, '.')) = to_jsonb($4::bigint) AND id != $4 LIMIT 1",
                    &[&b.kind.as_str(), &owner.account.0, &b.field, &id],
                )
                .await?;
            if used.is_some() {
                return Err(StoreError::Conflict(b.message.clone()));
            }
        }
        self.execute(&tx, "DELETE FROM resources WHERE parent_id = $1", &[&id])
            .await?;
        self.execute(&tx, "DELETE FROM resources WHERE id = $1", &[&id])
            .await?;
        if kind.affects_matching() {
            self.config_changed(&tx, owner.account).await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// One page of resources, newest first, and how many match in all.
    pub async fn list_resources(&self, q: ListQuery) -> Result<(i64, Vec<Resource>)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        // Each document field is compared as JSON: `{"field": value}` contained in the body;
        // a field asked to be null is missing or null.
        let mut wanted = serde_json::Map::new();
        let mut absent: Vec<&str> = Vec::new();
        for (field, value) in &q.equals {
            if value.is_null() {
                absent.push(field);
            } else {
                wanted.insert(field.clone(), value.clone());
            }
        }
        let filter = "FROM resources WHERE kind = $1 AND account_id = $2
                        AND ($3::bigint IS NULL OR extension_id = $3)
                        AND ($4::bigint IS NULL OR parent_id = $4)
                        AND body::jsonb @> $5::text::jsonb
                        AND NOT EXISTS (SELECT 1 FROM unnest($6::text[]) AS f
                                         WHERE body::jsonb -> f <> 'null'::jsonb)";
        let wanted = Value::Object(wanted).to_string();
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &q.kind.as_str(),
            &q.owner.account.0,
            &q.owner.extension_id,
            &q.parent_id,
            &wanted,
            &absent,
        ];
        let total: i64 = self
            .query_one(&tx, &format!("SELECT COUNT(*) {filter}"), &args)
            .await?
            .get(0);
        let mut page: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args.to_vec();
        page.push(&q.limit);
        page.push(&q.offset);
        let items = self
            .query(
                &tx,
                &format!("SELECT {RESOURCE_COLUMNS} {filter} ORDER BY id DESC LIMIT $7 OFFSET $8"),
                &page,
            )
            .await?
            .iter()
            .map(resource_of)
            .collect::<Result<Vec<_>>>()?;
        Ok((total, items))
    }

    /// Every resource of a kind under the given parents (e.g. the subscriptions of listeners).
    pub async fn children_of(
        &self,
        kind: Kind,
        account: AccountId,
        parents: Vec<i64>,
    ) -> Result<Vec<Resource>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        self.query(
            &tx,
            &format!(
                "SELECT {RESOURCE_COLUMNS} FROM resources
                  WHERE kind = $1 AND account_id = $2 AND parent_id = ANY($3) ORDER BY id"
            ),
            &[&kind.as_str(), &account.0, &parents],
        )
        .await?
        .iter()
        .map(resource_of)
        .collect()
    }
}
