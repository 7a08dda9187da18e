//! Schema and migrations. `PRAGMA user_version` records how many migrations have run; each
//! start runs the ones after it, in one transaction each.

use crate::Result;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: accounts, tokens, management resources, the event log and the outbox.
    r#"
    CREATE TABLE accounts (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id    INTEGER NOT NULL REFERENCES accounts(id),
        scope         TEXT NOT NULL,
        extension_id  INTEGER,
        secret_hash   BLOB NOT NULL,
        created_at    INTEGER NOT NULL
    );
    -- Callbacks, listeners, subscriptions, filters and profiles: each a JSON document in
    -- Phone.com's own shape, with the columns the API filters and joins on beside it.
    CREATE TABLE resources (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        kind          TEXT NOT NULL,
        account_id    INTEGER NOT NULL REFERENCES accounts(id),
        extension_id  INTEGER,
        parent_id     INTEGER,
        body          TEXT NOT NULL,
        created_at    INTEGER NOT NULL
    );
    CREATE INDEX resources_by_account ON resources(account_id, kind, id);
    CREATE INDEX resources_by_parent ON resources(parent_id);
    CREATE TABLE events (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        id           TEXT NOT NULL UNIQUE,
        account_id   INTEGER NOT NULL,
        source_key   TEXT NOT NULL,
        kind         TEXT NOT NULL,
        call_id      TEXT,
        occurred_at  INTEGER NOT NULL,
        received_at  INTEGER NOT NULL,
        body         TEXT NOT NULL,
        UNIQUE (account_id, source_key)
    );
    CREATE INDEX events_by_call ON events(account_id, call_id);
    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id       INTEGER NOT NULL,
        event_seq        INTEGER NOT NULL REFERENCES events(seq),
        listener_id      INTEGER NOT NULL,
        callback_id      INTEGER NOT NULL,
        call_id          TEXT,
        status           TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  INTEGER NOT NULL,
        leased           INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
    );
    CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending';
    CREATE INDEX outbox_call_order ON outbox(listener_id, call_id, id) WHERE status = 'pending';
    CREATE INDEX outbox_by_callback ON outbox(callback_id, id);
    CREATE TABLE attempts (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        outbox_id        INTEGER NOT NULL REFERENCES outbox(id),
        at               INTEGER NOT NULL,
        status_code      INTEGER,
        latency_ms       INTEGER NOT NULL,
        error            TEXT,
        response_prefix  TEXT
    );
    CREATE INDEX attempts_by_outbox ON attempts(outbox_id);
    "#,
    // 2: fallback deliveries, rate-limit windows, callback health.
    r#"
    ALTER TABLE outbox ADD COLUMN fallback_of INTEGER;
    CREATE INDEX outbox_rate_window ON outbox(callback_id, created_at);
    CREATE TABLE callback_health (
        callback_id    INTEGER PRIMARY KEY,
        failing_since  INTEGER,
        last_success   INTEGER
    );
    CREATE INDEX attempts_by_time ON attempts(at);
    "#,
    // 3: a time zone per ingest token, for sources that send local times.
    r#"
    ALTER TABLE tokens ADD COLUMN default_tz TEXT;
    "#,
    // 4: calls assembled from events, their external ids, and agents.
    r#"
    CREATE TABLE calls (
        id              TEXT PRIMARY KEY,
        account_id      INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        record          TEXT NOT NULL,
        state           TEXT NOT NULL,
        started_at      INTEGER,
        ended_at        INTEGER,
        last_event_at   INTEGER,
        finalize_at     INTEGER,
        revision        INTEGER NOT NULL DEFAULT 0,
        emitted_digest  TEXT,
        missed_emitted  INTEGER NOT NULL DEFAULT 0,
        direction       TEXT,
        disposition     TEXT,
        missed          INTEGER NOT NULL DEFAULT 0,
        search          TEXT NOT NULL DEFAULT '',
        merged          TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX calls_by_start ON calls(account_id, started_at DESC, id DESC);
    CREATE INDEX calls_due ON calls(finalize_at) WHERE finalize_at IS NOT NULL;
    CREATE INDEX calls_open ON calls(last_event_at) WHERE state IN ('initiated', 'ringing', 'active');
    CREATE TABLE call_aliases (
        account_id  INTEGER NOT NULL,
        alias       TEXT NOT NULL,
        call_id     TEXT NOT NULL,
        PRIMARY KEY (account_id, alias)
    );
    CREATE INDEX call_aliases_by_call ON call_aliases(call_id);
    CREATE TABLE call_events (
        call_id    TEXT NOT NULL,
        event_seq  INTEGER NOT NULL,
        PRIMARY KEY (call_id, event_seq)
    );
    CREATE TABLE agents (
        account_id  INTEGER NOT NULL,
        agent_id    TEXT NOT NULL,
        state       TEXT NOT NULL,
        since       INTEGER NOT NULL,
        device      TEXT,
        PRIMARY KEY (account_id, agent_id)
    );
    "#,
    // 5: the fold of a call's events, so an event that comes in order needs no re-read.
    r#"
    ALTER TABLE calls ADD COLUMN fold TEXT;
    "#,
    // 6: per listener and call, only the head delivery is 'pending'; the ones behind it are
    // 'queued' until it is done, so claiming needs no look at the rows before it.
    r#"
    CREATE INDEX outbox_call_queue ON outbox(listener_id, call_id, id) WHERE status IN ('pending', 'queued');
    CREATE INDEX outbox_due_by_callback ON outbox(callback_id, next_attempt_at) WHERE status = 'pending';
    UPDATE outbox SET status = 'queued'
     WHERE status = 'pending' AND call_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.listener_id = outbox.listener_id
           AND p.call_id = outbox.call_id AND p.id < outbox.id);
    "#,
    // 7: folds live in the writer's memory now (they are rebuilt from events when missing);
    // events are found by call through call_events, never by the vendor's call id; open calls
    // are indexed by when they started (a call idle for a time started before it), which,
    // unlike the time of their last event, does not change with every event.
    r#"
    UPDATE calls SET fold = NULL;
    DROP INDEX events_by_call;
    DROP INDEX calls_open;
    CREATE INDEX calls_open ON calls(started_at) WHERE state IN ('initiated', 'ringing', 'active');
    "#,
    // 8: the index of pending deliveries by listener and call has been unused since 6 (the
    // queue index covers pending and queued alike); it cost a write per delivery and outcome.
    r#"
    DROP INDEX outbox_call_order;
    "#,
    // 9: a call's events are listed in its own row (which every event rewrites anyway), not in
    // a table of their own whose index took a write at a random place for every event.
    r#"
    ALTER TABLE calls ADD COLUMN event_seqs TEXT NOT NULL DEFAULT '';
    UPDATE calls SET event_seqs = COALESCE(
        (SELECT group_concat(',' || event_seq, '') FROM call_events WHERE call_id = calls.id), '');
    DROP TABLE call_events;
    "#,
    // 10: two outbox indexes every delivery paid for twice (written with the row, and again
    // when it finished) that other indexes answer: the next due time comes from the claim's
    // walk of the due index by callback, and a callback's deliveries are listed newest first
    // through the rate-window index (callback, created_at).
    r#"
    DROP INDEX outbox_due;
    DROP INDEX outbox_by_callback;
    "#,
    // 11: the open-calls index says which states are open with `=` and `OR`: SQLite computes
    // an `IN (…)` list of a partial index's condition in a temporary b-tree it builds anew for
    // the old and the new row every time a call's state or start changes.
    r#"
    DROP INDEX calls_open;
    CREATE INDEX calls_open ON calls(started_at)
     WHERE state = 'initiated' OR state = 'ringing' OR state = 'active';
    "#,
    // 12: a call goes quiet by when the hub last heard of it (`heard_at`, the receipt time of
    // its latest event), not by the times its events carry: history replayed or imported
    // today is not idle. Open calls are indexed by when the hub made them (which never
    // changes; a call quiet for a time was made before it).
    r#"
    ALTER TABLE calls ADD COLUMN heard_at INTEGER;
    UPDATE calls SET heard_at = MAX(created_at, COALESCE(last_event_at, 0));
    DROP INDEX calls_open;
    CREATE INDEX calls_open ON calls(created_at)
     WHERE state = 'initiated' OR state = 'ringing' OR state = 'active';
    "#,
    // 13: the agent logged on at a device, for the calls that device handles.
    r#"
    CREATE INDEX agents_by_device ON agents(account_id, device);
    "#,
    // 14: where the readiness check writes (and removes) a row, to learn whether the storage
    // takes writes.
    r#"
    CREATE TABLE write_probe (id INTEGER PRIMARY KEY, pad BLOB);
    "#,
    // 15: retention. An event's deliveries are found by the event (to prune them with it, and
    // for the foreign key's check when it goes); where each account's pruned events end, so
    // a cursor before it is told so.
    r#"
    CREATE INDEX outbox_by_event ON outbox(event_seq);
    CREATE TABLE retention_marks (
        account_id      INTEGER PRIMARY KEY,
        events_through  INTEGER NOT NULL
    );
    "#,
];

/// Brings the schema up to date. A new database gives the space pruning frees back to the
/// file system bit by bit (`auto_vacuum = INCREMENTAL`, which only a database without tables
/// can take); one made by an earlier version reuses freed pages for new data instead.
pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == 0 {
        let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables == 0 {
            // (The file's header is written already, by the switch to WAL: an empty
            // database's VACUUM makes the new mode its own.)
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            conn.execute_batch("VACUUM")?;
        }
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}
