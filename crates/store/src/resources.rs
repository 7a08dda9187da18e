//! Management resources — callbacks, listeners, subscriptions, filters, profiles — stored as
//! JSON documents in Phone.com's shape. The store checks ownership, references and what may
//! not be deleted while in use; the shape of each document is the server's business.

use crate::writer::WriteCtx;
use crate::{Result, SqliteStore, StoreError};
use rusqlite::{params, params_from_iter, types::Value as SqlValue, Connection, OptionalExtension};
use serde_json::Value;
use switchboard_model::AccountId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Callback,
    Listener,
    Subscription,
    Filter,
    Profile,
    Schedule,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Callback => "callback",
            Kind::Listener => "listener",
            Kind::Subscription => "subscription",
            Kind::Filter => "filter",
            Kind::Profile => "profile",
            Kind::Schedule => "schedule",
        }
    }

    /// Kinds whose changes alter which listeners an event goes to.
    pub(crate) fn affects_matching(self) -> bool {
        !matches!(self, Kind::Profile)
    }
}

/// Who owns a resource: an account, and an extension when made through the extension-level
/// API. An owner with an extension sees only that extension's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub account: AccountId,
    pub extension_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub id: i64,
    pub kind: Kind,
    pub account: AccountId,
    pub extension_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub body: Value,
    pub created_at: i64,
}

/// A reference from a document to another resource, checked to exist in the same account.
#[derive(Debug, Clone)]
pub struct Ref {
    pub field: String,
    pub kind: Kind,
    pub id: i64,
}

#[derive(Debug, Clone)]
pub struct NewResource {
    pub kind: Kind,
    pub owner: Owner,
    pub parent_id: Option<i64>,
    pub body: Value,
    pub refs: Vec<Ref>,
}

/// A resource of another kind that blocks deletion while its `field` names the deleted one.
#[derive(Debug, Clone)]
pub struct Blocker {
    pub kind: Kind,
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub kind: Kind,
    pub owner: Owner,
    pub parent_id: Option<i64>,
    /// `(field, value)`: the document's top-level `field` must equal `value`.
    pub equals: Vec<(String, Value)>,
    pub limit: i64,
    pub offset: i64,
}

const COLUMNS: &str = "id, kind, account_id, extension_id, parent_id, body, created_at";

pub(crate) fn kind_of(s: &str) -> Kind {
    match s {
        "callback" => Kind::Callback,
        "listener" => Kind::Listener,
        "subscription" => Kind::Subscription,
        "filter" => Kind::Filter,
        "schedule" => Kind::Schedule,
        _ => Kind::Profile,
    }
}

fn row_to_resource(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Resource, String)> {
    let body: String = r.get(5)?;
    let kind: String = r.get(1)?;
    Ok((
        Resource {
            id: r.get(0)?,
            kind: kind_of(&kind),
            account: AccountId(r.get(2)?),
            extension_id: r.get(3)?,
            parent_id: r.get(4)?,
            body: Value::Null,
            created_at: r.get(6)?,
        },
        body,
    ))
}

fn finish((mut res, body): (Resource, String)) -> Result<Resource> {
    res.body = serde_json::from_str(&body)?;
    Ok(res)
}

fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

pub(crate) fn get_in(
    conn: &Connection,
    kind: Kind,
    owner: Owner,
    parent_id: Option<i64>,
    id: i64,
) -> Result<Option<Resource>> {
    // Prepared once per connection: claims look up each listener and callback they deliver
    // for, and preparing the statement anew cost more than running it.
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM resources WHERE id = ?1 AND kind = ?2 AND account_id = ?3
             AND (?4 IS NULL OR extension_id = ?4) AND (?5 IS NULL OR parent_id = ?5)"
        ))?
        .query_row(
            params![
                id,
                kind.as_str(),
                owner.account.0,
                owner.extension_id,
                parent_id
            ],
            row_to_resource,
        )
        .optional()?;
    row.map(finish).transpose()
}

/// Checks that each resource a document names is one its owner may see: of its account, and
/// for an extension-bound owner of its own extension (a listener of extension 101 naming
/// extension 102's callback would send 101's events to 102's URL, signed with its secret).
fn check_refs(conn: &Connection, owner: Owner, refs: &[Ref]) -> Result<()> {
    for r in refs {
        let found: Option<i64> = conn
            .query_row(
                "SELECT id FROM resources WHERE id = ?1 AND kind = ?2 AND account_id = ?3
                   AND (?4 IS NULL OR extension_id = ?4)",
                params![r.id, r.kind.as_str(), owner.account.0, owner.extension_id],
                |row| row.get(0),
            )
            .optional()?;
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

pub(crate) fn insert(ctx: &mut WriteCtx<'_>, new: NewResource) -> Result<Resource> {
    check_refs(ctx.conn, new.owner, &new.refs)?;
    let created_at = jiff::Timestamp::now().as_second();
    ctx.conn.execute(
        "INSERT INTO resources (kind, account_id, extension_id, parent_id, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            new.kind.as_str(),
            new.owner.account.0,
            new.owner.extension_id,
            new.parent_id,
            new.body.to_string(),
            created_at
        ],
    )?;
    if new.kind.affects_matching() {
        ctx.invalidate(new.owner.account);
    }
    Ok(Resource {
        id: ctx.conn.last_insert_rowid(),
        kind: new.kind,
        account: new.owner.account,
        extension_id: new.owner.extension_id,
        parent_id: new.parent_id,
        body: new.body,
        created_at,
    })
}

impl SqliteStore {
    /// Creates a resource after checking its references.
    pub async fn create_resource(&self, new: NewResource) -> Result<Resource> {
        self.inner.writer.write(move |ctx| insert(ctx, new)).await
    }

    /// Creates several resources in one transaction; `build` sees the ids made so far.
    pub async fn create_resources<F>(&self, build: F) -> Result<Vec<Resource>>
    where
        F: FnOnce(&mut dyn FnMut(NewResource) -> Result<Resource>) -> Result<()> + Send + 'static,
    {
        self.inner
            .writer
            .write(move |ctx| {
                let mut made = Vec::new();
                let mut add = |new: NewResource| -> Result<Resource> {
                    let res = insert(ctx, new)?;
                    made.push(res.clone());
                    Ok(res)
                };
                build(&mut add)?;
                Ok(made)
            })
            .await
    }

    pub async fn get_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
    ) -> Result<Option<Resource>> {
        self.inner
            .readers
            .read(move |conn| get_in(conn, kind, owner, parent_id, id))
            .await
    }

    /// Replaces a resource's document; `NotFound` when the owner has no such resource.
    pub async fn update_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
        update: impl FnOnce(&Resource) -> Result<(Value, Vec<Ref>)> + Send + 'static,
    ) -> Result<Resource> {
        self.inner
            .writer
            .write(move |ctx| {
                let mut res =
                    get_in(ctx.conn, kind, owner, parent_id, id)?.ok_or(StoreError::NotFound)?;
                let (body, refs) = update(&res)?;
                check_refs(ctx.conn, owner, &refs)?;
                ctx.conn.execute(
                    "UPDATE resources SET body = ?1 WHERE id = ?2",
                    params![body.to_string(), id],
                )?;
                if kind.affects_matching() {
                    ctx.invalidate(owner.account);
                }
                if kind == Kind::Callback {
                    // Switched on or off, or a fallback set: its deliveries wait or go.
                    crate::outbox::release_waiting(
                        ctx.conn,
                        owner.account,
                        jiff::Timestamp::now().as_millisecond(),
                    )?;
                }
                res.body = body;
                Ok(res)
            })
            .await
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
        self.inner
            .writer
            .write(move |ctx| {
                get_in(ctx.conn, kind, owner, parent_id, id)?.ok_or(StoreError::NotFound)?;
                for b in &blockers {
                    let used: Option<i64> = ctx
                        .conn
                        .query_row(
                            &format!(
                                "SELECT id FROM resources WHERE kind = ?1 AND account_id = ?2
                                 AND json_extract(body, '$.{}') = ?3 AND id != ?3 LIMIT 1",
                                b.field
                            ),
                            params![b.kind.as_str(), owner.account.0, id],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if used.is_some() {
                        return Err(StoreError::Conflict(b.message.clone()));
                    }
                }
                ctx.conn
                    .execute("DELETE FROM resources WHERE parent_id = ?1", [id])?;
                ctx.conn
                    .execute("DELETE FROM resources WHERE id = ?1", [id])?;
                if kind.affects_matching() {
                    ctx.invalidate(owner.account);
                }
                Ok(())
            })
            .await
    }

    /// One page of resources, newest first, and how many match in all.
    pub async fn list_resources(&self, q: ListQuery) -> Result<(i64, Vec<Resource>)> {
        self.inner
            .readers
            .read(move |conn| {
                let mut sql = String::from(" FROM resources WHERE kind = ? AND account_id = ?");
                let mut args: Vec<SqlValue> = vec![
                    SqlValue::Text(q.kind.as_str().into()),
                    SqlValue::Integer(q.owner.account.0),
                ];
                if let Some(ext) = q.owner.extension_id {
                    sql.push_str(" AND extension_id = ?");
                    args.push(SqlValue::Integer(ext));
                }
                if let Some(parent) = q.parent_id {
                    sql.push_str(" AND parent_id = ?");
                    args.push(SqlValue::Integer(parent));
                }
                for (field, value) in &q.equals {
                    // Field names come from the server's fixed list, never from the request.
                    debug_assert!(field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    if value.is_null() {
                        sql.push_str(&format!(" AND json_extract(body, '$.{field}') IS NULL"));
                    } else {
                        sql.push_str(&format!(" AND json_extract(body, '$.{field}') = ?"));
                        args.push(sql_value(value));
                    }
                }
                let total: i64 = conn.query_row(
                    &format!("SELECT COUNT(*){sql}"),
                    params_from_iter(args.iter()),
                    |r| r.get(0),
                )?;
                let mut page_args = args.clone();
                page_args.push(SqlValue::Integer(q.limit));
                page_args.push(SqlValue::Integer(q.offset));
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS}{sql} ORDER BY id DESC LIMIT ? OFFSET ?"
                ))?;
                let rows = stmt
                    .query_map(params_from_iter(page_args.iter()), row_to_resource)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let items = rows.into_iter().map(finish).collect::<Result<Vec<_>>>()?;
                Ok((total, items))
            })
            .await
    }

    /// Every resource of a kind under the given parents (e.g. the subscriptions of listeners).
    pub async fn children_of(
        &self,
        kind: Kind,
        account: AccountId,
        parents: Vec<i64>,
    ) -> Result<Vec<Resource>> {
        self.inner
            .readers
            .read(move |conn| children_in(conn, kind, account, &parents))
            .await
    }
}

pub(crate) fn children_in(
    conn: &Connection,
    kind: Kind,
    account: AccountId,
    parents: &[i64],
) -> Result<Vec<Resource>> {
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; parents.len()].join(",");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM resources WHERE kind = ? AND account_id = ? AND parent_id IN ({marks}) ORDER BY id"
    ))?;
    let mut args: Vec<SqlValue> = vec![
        SqlValue::Text(kind.as_str().into()),
        SqlValue::Integer(account.0),
    ];
    args.extend(parents.iter().map(|p| SqlValue::Integer(*p)));
    let rows = stmt
        .query_map(params_from_iter(args.iter()), row_to_resource)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish).collect()
}

/// Every resource of a kind in an account (used to build the listener index).
pub(crate) fn all_in(conn: &Connection, kind: Kind, account: AccountId) -> Result<Vec<Resource>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM resources WHERE kind = ?1 AND account_id = ?2 ORDER BY id"
    ))?;
    let rows = stmt
        .query_map(params![kind.as_str(), account.0], row_to_resource)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish).collect()
}

impl SqliteStore {
    /// Switches off the e-mail callback whose unsubscribe token this is; returns its account
    /// and id, or `None` for a token no callback has.
    pub async fn unsubscribe(&self, token: String) -> Result<Option<(AccountId, i64)>> {
        self.inner
            .writer
            .write(move |ctx| {
                let found: Option<(i64, i64)> = ctx
                    .conn
                    .query_row(
                        "SELECT account_id, id FROM resources
                         WHERE kind = 'callback' AND json_extract(body, '$.unsubscribe_token') = ?1",
                        [&token],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((account, id)) = found else { return Ok(None) };
                ctx.conn.execute(
                    "UPDATE resources SET body = json_set(body, '$.enabled', json('false')) WHERE id = ?1",
                    [id],
                )?;
                ctx.invalidate(AccountId(account));
                crate::outbox::release_waiting(
                    ctx.conn,
                    AccountId(account),
                    jiff::Timestamp::now().as_millisecond(),
                )?;
                Ok(Some((AccountId(account), id)))
            })
            .await
    }
}
