//! Moving house: an installation's SQLite database copied into an empty PostgreSQL database
//! (`switchboard migrate --from-sqlite DIR --to postgres://…`).
//!
//! Every table is copied as it is — accounts, tokens, resources, events (with their log
//! positions, so pull cursors and `Last-Event-ID`s handed out stay good), calls with their
//! ids and aliases, agents, the outbox with the attempts, callbacks' health, retention marks
//! — in one transaction: a copy that fails leaves the target as empty as it was. A database
//! that holds anything already is refused. Columns whose shape differs are converted on the
//! way (a call's event list, flags, the packed bodies of earlier versions); the identity
//! sequences then continue after the highest id copied.

use super::PgStore;
use crate::{Result, StoreError};
use rusqlite::types::ValueRef;
use std::path::Path;
use tokio_postgres::types::ToSql;

/// Rows read from SQLite and written to PostgreSQL at a time.
const CHUNK: i64 = 2000;

/// How a column travels: its PostgreSQL array type in the insert, and how it is read.
#[derive(Clone, Copy)]
enum Col {
    Int,
    Text,
    /// A BLOB as it is.
    Bytes,
    /// A body packed as `body.rs` packs it: a BLOB as it is, TEXT (earlier versions) packed.
    Packed,
}

/// A table to copy: the SQLite select (its first column the keyset key, `?1` after which,
/// `?2` how many), and the PostgreSQL columns with the type each arrives as and the
/// expression (over `c1`, `c2`, …) that makes it.
struct Table {
    name: &'static str,
    select: &'static str,
    columns: &'static [(&'static str, Col, &'static str)],
    /// The identity column whose sequence continues after the copy.
    identity: Option<&'static str>,
}

use Col::*;

const TABLES: &[Table] = &[
    Table {
        name: "accounts",
        select: "SELECT id, id, name, created_at FROM accounts WHERE id > ?1 ORDER BY id LIMIT ?2",
        columns: &[("id", Int, "c1"), ("name", Text, "c2"), ("created_at", Int, "c3")],
        identity: None,
    },
    Table {
        name: "tokens",
        select: "SELECT id, id, account_id, scope, extension_id, secret_hash, created_at, default_tz
                   FROM tokens WHERE id > ?1 ORDER BY id LIMIT ?2",
        columns: &[
            ("id", Int, "c1"),
            ("account_id", Int, "c2"),
            ("scope", Text, "c3"),
            ("extension_id", Int, "c4"),
            ("secret_hash", Bytes, "c5"),
            ("created_at", Int, "c6"),
            ("default_tz", Text, "c7"),
        ],
        identity: Some("id"),
    },
    Table {
        name: "resources",
        select: "SELECT id, id, kind, account_id, extension_id, parent_id, body, created_at
                   FROM resources WHERE id > ?1 ORDER BY id LIMIT ?2",
        columns: &[
            ("id", Int, "c1"),
            ("kind", Text, "c2"),
            ("account_id", Int, "c3"),
            ("extension_id", Int, "c4"),
            ("parent_id", Int, "c5"),
            ("body", Text, "c6"),
            ("created_at", Int, "c7"),
        ],
        identity: Some("id"),
    },
    Table {
        name: "events",
        select: "SELECT seq, seq, id, account_id, source_key, kind, call_id, occurred_at, received_at, body
                   FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        columns: &[
            ("seq", Int, "c1"),
            ("id", Text, "c2::uuid"),
            ("account_id", Int, "c3"),
            ("source_key", Text, "c4"),
            ("kind", Text, "c5"),
            ("call_id", Text, "c6"),
            ("occurred_at", Int, "c7"),
            ("received_at", Int, "c8"),
            ("body", Packed, "c9"),
        ],
        identity: Some("seq"),
    },
    Table {
        name: "calls",
        select: "SELECT rowid, id, account_id, created_at, heard_at,
                        CASE WHEN state = 'finalized' THEN record END, state, started_at, ended_at,
                        last_event_at, finalize_at, revision, emitted_digest, missed_emitted,
                        direction, disposition, missed, search, merged, event_seqs
                   FROM calls WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        columns: &[
            ("id", Text, "c1"),
            ("account_id", Int, "c2"),
            ("created_at", Int, "c3"),
            ("heard_at", Int, "c4"),
            ("record", Packed, "c5"),
            ("state", Text, "c6"),
            ("started_at", Int, "c7"),
            ("ended_at", Int, "c8"),
            ("last_event_at", Int, "c9"),
            ("finalize_at", Int, "c10"),
            ("revision", Int, "c11"),
            ("emitted_digest", Text, "c12"),
            ("missed_emitted", Int, "c13 <> 0"),
            ("direction", Text, "c14"),
            ("disposition", Text, "c15"),
            ("missed", Int, "c16 <> 0"),
            ("search", Text, "c17"),
            ("merged", Text, "c18::jsonb"),
            (
                "event_seqs",
                Text,
                "COALESCE(array_remove(string_to_array(c19, ','), '')::bigint[], '{}')",
            ),
        ],
        identity: None,
    },
    Table {
        name: "call_aliases",
        select: "SELECT rowid, account_id, alias, call_id FROM call_aliases
                  WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        columns: &[("account_id", Int, "c1"), ("alias", Text, "c2"), ("call_id", Text, "c3")],
        identity: None,
    },
    Table {
        name: "agents",
        select: "SELECT rowid, account_id, agent_id, state, since, device FROM agents
                  WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        columns: &[
            ("account_id", Int, "c1"),
            ("agent_id", Text, "c2"),
            ("state", Text, "c3"),
            ("since", Int, "c4"),
            ("device", Text, "c5"),
        ],
        identity: None,
    },
    Table {
        name: "outbox",
        select: "SELECT id, id, account_id, event_seq, listener_id, callback_id, call_id, status,
                        attempts, next_attempt_at, last_error, created_at, updated_at, fallback_of
                   FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        columns: &[
            ("id", Int, "c1"),
            ("account_id", Int, "c2"),
            ("event_seq", Int, "c3"),
            ("listener_id", Int, "c4"),
            ("callback_id", Int, "c5"),
            ("call_id", Text, "c6"),
            ("status", Text, "c7"),
            ("attempts", Int, "c8::integer"),
            ("next_attempt_at", Int, "c9"),
            ("last_error", Text, "c10"),
            ("created_at", Int, "c11"),
            ("updated_at", Int, "c12"),
            ("fallback_of", Int, "c13"),
        ],
        identity: Some("id"),
    },
    Table {
        name: "attempts",
        select: "SELECT id, id, outbox_id, at, status_code, latency_ms, error, response_prefix
                   FROM attempts WHERE id > ?1 ORDER BY id LIMIT ?2",
        columns: &[
            ("id", Int, "c1"),
            ("outbox_id", Int, "c2"),
            ("at", Int, "c3"),
            ("status_code", Int, "c4::integer"),
            ("latency_ms", Int, "c5"),
            ("error", Text, "c6"),
            ("response_prefix", Text, "c7"),
        ],
        identity: Some("id"),
    },
    Table {
        name: "callback_health",
        select: "SELECT callback_id, callback_id, failing_since, last_success FROM callback_health
                  WHERE callback_id > ?1 ORDER BY callback_id LIMIT ?2",
        columns: &[
            ("callback_id", Int, "c1"),
            ("failing_since", Int, "c2"),
            ("last_success", Int, "c3"),
        ],
        identity: None,
    },
    Table {
        name: "retention_marks",
        select: "SELECT account_id, account_id, events_through FROM retention_marks
                  WHERE account_id > ?1 ORDER BY account_id LIMIT ?2",
        columns: &[("account_id", Int, "c1"), ("events_through", Int, "c2")],
        identity: None,
    },
];

/// One column of a chunk, as PostgreSQL takes it (an array).
enum Values {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Values {
    fn of(col: Col) -> Values {
        match col {
            Int => Values::Int(Vec::new()),
            Text => Values::Text(Vec::new()),
            Bytes | Packed => Values::Bytes(Vec::new()),
        }
    }

    fn push(&mut self, col: Col, v: ValueRef<'_>, table: &str) -> Result<()> {
        let wrong = || StoreError::Corrupt(format!("{table}: a value not of its column's type"));
        match (self, v) {
            (Values::Int(out), ValueRef::Null) => out.push(None),
            (Values::Int(out), ValueRef::Integer(i)) => out.push(Some(i)),
            (Values::Text(out), ValueRef::Null) => out.push(None),
            (Values::Text(out), ValueRef::Text(t)) => {
                out.push(Some(String::from_utf8_lossy(t).into_owned()))
            }
            (Values::Bytes(out), ValueRef::Null) => out.push(None),
            (Values::Bytes(out), ValueRef::Blob(b)) => out.push(Some(b.to_vec())),
            (Values::Bytes(out), ValueRef::Text(t)) if matches!(col, Packed) => {
                out.push(Some(crate::body::pack_json(t)?))
            }
            (Values::Bytes(out), ValueRef::Text(t)) => out.push(Some(t.to_vec())),
            _ => return Err(wrong()),
        }
        Ok(())
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Values::Int(v) => v,
            Values::Text(v) => v,
            Values::Bytes(v) => v,
        }
    }

    fn pg_type(col: Col) -> &'static str {
        match col {
            Int => "bigint[]",
            Text => "text[]",
            Bytes | Packed => "bytea[]",
        }
    }
}

/// What a copy moved: each table with its rows.
pub type Imported = Vec<(&'static str, u64)>;

impl PgStore {
    /// Copies the SQLite database in `data_dir` (no hub may be running on it) into this
    /// database, which must be empty. `progress` hears each table's rows copied so far and
    /// its total after every chunk.
    pub async fn import_sqlite(
        &self,
        data_dir: &Path,
        progress: &mut dyn FnMut(&'static str, u64, u64),
    ) -> Result<Imported> {
        let file = data_dir.join("switchboard.db");
        if !file.exists() {
            return Err(StoreError::Config(format!(
                "no SQLite database at {} (is it the hub's --data-dir?)",
                file.display()
            )));
        }
        // Opened as the hub opens it, so its schema is brought up to date first.
        crate::SqliteStore::open(data_dir)?.close();
        let source = rusqlite::Connection::open_with_flags(
            &file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        // One snapshot of the source for the whole copy.
        source.execute_batch("BEGIN")?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        let holds: bool = self
            .query_one(
                &tx,
                "SELECT EXISTS (SELECT 1 FROM accounts) OR EXISTS (SELECT 1 FROM resources)
                     OR EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM calls)",
                &[],
            )
            .await?
            .get(0);
        if holds {
            return Err(StoreError::Conflict(format!(
                "the database at {} is not empty: a copy goes into an empty database only",
                self.place
            )));
        }
        let mut copied = Vec::new();
        for table in TABLES {
            let total: i64 =
                source.query_row(&format!("SELECT COUNT(*) FROM {}", table.name), [], |r| {
                    r.get(0)
                })?;
            let total = total as u64;
            let insert = insert_sql(table);
            let mut done = 0u64;
            let mut after = i64::MIN;
            progress(table.name, 0, total);
            loop {
                let mut columns: Vec<Values> = table
                    .columns
                    .iter()
                    .map(|(_, c, _)| Values::of(*c))
                    .collect();
                let mut rows = 0u64;
                {
                    let mut stmt = source.prepare_cached(table.select)?;
                    let mut read = stmt.query(rusqlite::params![after, CHUNK])?;
                    while let Some(row) = read.next()? {
                        after = row.get(0)?;
                        for (i, (_, col, _)) in table.columns.iter().enumerate() {
                            columns[i].push(*col, row.get_ref(i + 1)?, table.name)?;
                        }
                        rows += 1;
                    }
                }
                if rows == 0 {
                    break;
                }
                let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Values::param).collect();
                self.execute(&tx, &insert, &params).await?;
                done += rows;
                progress(table.name, done, total);
            }
            if let Some(column) = table.identity {
                self.execute(
                    &tx,
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{0}', '{column}'),
                                       (SELECT COALESCE(MAX({column}), 0) + 1 FROM {0}), false)",
                        table.name
                    ),
                    &[],
                )
                .await?;
            }
            copied.push((table.name, done));
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(copied)
    }
}

/// `INSERT INTO t (cols) SELECT exprs FROM unnest($1::type[], …) AS u(c1, …)`.
fn insert_sql(table: &Table) -> String {
    let names: Vec<&str> = table.columns.iter().map(|(n, _, _)| *n).collect();
    let exprs: Vec<&str> = table.columns.iter().map(|(_, _, e)| *e).collect();
    let arrays: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, c, _))| format!("${}::{}", i + 1, Values::pg_type(*c)))
        .collect();
    let aliases: Vec<String> = (1..=table.columns.len()).map(|i| format!("c{i}")).collect();
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({})",
        table.name,
        names.join(", "),
        exprs.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    )
}
