//! The PostgreSQL store: one database that several Switchboard nodes share, behind the one
//! `Store` the server uses (`serve --store postgres://…`; ARCHITECTURE.md § Two stores).
//!
//! - this module: connecting (a clear error for a bad URL or a database that cannot be
//!   reached), the pool, migrations (safe when several nodes start at once), the readiness
//!   probe, the statement helpers, resource rows and advisory lock keys;
//! - `schema.rs`: the tables, shaped for many nodes;
//! - `coalesce.rs`, `ingest.rs`, `batch.rs`: ingest — requests taken together, correlation
//!   serialized on the calls' ids, a batch written set-wise;
//! - `outbox.rs`: delivery claims with leases, outcomes, promotion of a call's next delivery;
//! - `finalize.rs`: the finalizer, once across the cluster;
//! - `events.rs`: cursors that never skip an event; `queries.rs`: calls and agents;
//! - `history.rs`: delivery history, retry, replay, expiry of waiting deliveries;
//! - `upkeep.rs`: retention (once across the cluster), erasure, gauges, the unsubscribe
//!   link, following the newest event for live streams;
//! - `node.rs`: a node's name, kept from one start to the next so that a restarted node
//!   takes back its unfinished claims at once;
//! - `import.rs`: an SQLite installation copied in (`switchboard migrate`);
//! - `accounts.rs`, `resources.rs`: accounts, tokens, management resources.

mod accounts;
mod batch;
mod coalesce;
mod events;
mod finalize;
mod history;
mod import;
mod ingest;
mod node;
mod outbox;
mod queries;
mod resources;
mod schema;
mod upkeep;

pub use import::Imported;

use crate::{CallOptions, Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_engine::calls::CallFold;
use switchboard_engine::ListenerIndex;
use switchboard_model::AccountId;
use tokio_postgres::{GenericClient, NoTls};

/// How long a node waits for a connection to the database before it says the database is
/// unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a claimed delivery stays a node's before others may take it, by default: longer
/// than a send may take (the node extends the leases of sends still running).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long a node trusts a token it read before reading it again: an account erased
/// through one node stops working on every node within this.
const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// Connections a node keeps open to the database, by default.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// A PostgreSQL database, shared by any number of nodes.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Where it is, for messages: host, port and database, never the password.
    place: String,
    options: CallOptions,
    /// How to connect (for the connection holding the node's name, `node.rs`).
    config: Arc<tokio_postgres::Config>,
    /// This node's name on the leases it takes: kept from one start to the next when the
    /// server gives one (`node.rs`), else unique to this start.
    node: String,
    /// The lock on the node's name, held while the node runs.
    node_lock: Option<Arc<node::NodeLock>>,
    /// How long a claimed delivery stays this node's before others may take it.
    lease: Duration,
    /// Folds of calls this node touched, each with the version of the call's row it is of.
    folds: Arc<Folds>,
    /// Each account's listener index, with the account's `config_version` it was built at.
    indexes: Arc<Mutex<Indexes>>,
    /// Tokens already read (they never change once made).
    tokens: Arc<crate::accounts::TokenCache>,
    /// When (ms) the database last could not be reached from this node (0: never).
    failed_ms: Arc<std::sync::atomic::AtomicI64>,
    /// The newest event's log position, followed for live streams while anyone listens
    /// (`upkeep.rs`).
    latest: Arc<Mutex<Option<tokio::sync::watch::Sender<i64>>>>,
    /// The node's writer tasks, which write requests that arrive together in one
    /// transaction (`coalesce.rs`); `None` in the tasks' own copies.
    writers: Option<tokio::sync::mpsc::UnboundedSender<coalesce::Request>>,
}

/// Each account's listener index, with the account's `config_version` it was built at.
type Indexes = HashMap<AccountId, (i64, Arc<ListenerIndex>)>;

/// Folds of calls, by call id, each with the version of the call's row it was made at.
#[derive(Default)]
struct Folds(Mutex<HashMap<String, (i64, CallFold)>>);

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("place", &self.place)
            .finish()
    }
}

impl PgStore {
    /// Connects to the database `url` names (`postgres://user:password@host:5432/db`) and
    /// brings its schema up to date. A URL that is not one, or a database that cannot be
    /// reached, is an error that says which (and never shows the password). `calls` are the
    /// same options as the SQLite store's (`fold_capacity` and `max_db_pages` aside).
    pub async fn connect(url: &str, calls: CallOptions) -> Result<PgStore> {
        const SHAPE: &str = "postgres://user:password@host:5432/database";
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Config(format!(
                "store: not a PostgreSQL URL ({SHAPE})"
            )));
        }
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            StoreError::Config(format!("store: not a PostgreSQL URL ({SHAPE}): {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("switchboard");
        // PostgreSQL's own choice between a plan made for each statement's values and one made
        // once (whatever the server's default). The statements whose best plan depends on the
        // tables' size reach their rows by key (`LATERAL` probes), so a plan made once stays
        // right as the tables grow. Forcing a plan per execution (as before) also replanned
        // every foreign-key check, row by row: 33 µs a row instead of 7, a sixth of what
        // delivery cost PostgreSQL.
        config.options("-c plan_cache_mode=auto");
        let place = place_of(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(DEFAULT_POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Config(format!("store: {e}")))?;
        let store = PgStore {
            pool,
            place,
            config: Arc::new(config),
            options: calls,
            node: uuid::Uuid::now_v7().to_string(),
            node_lock: None,
            lease: DEFAULT_LEASE,
            folds: Arc::default(),
            indexes: Arc::default(),
            tokens: Arc::new(crate::accounts::TokenCache::expiring(TOKEN_RECHECK)),
            failed_ms: Arc::default(),
            latest: Arc::default(),
            writers: None,
        };
        store.migrate().await?;
        let writers = coalesce::start(&store);
        Ok(PgStore {
            writers: Some(writers),
            ..store
        })
    }

    /// The same store with leases of `lease` on the deliveries it claims.
    pub fn with_lease(mut self, lease: Duration) -> PgStore {
        self.lease = lease;
        self
    }

    /// Where the database is: host, port and database name.
    pub fn place(&self) -> &str {
        &self.place
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| self.unreachable(&e))
    }

    /// The database could not be reached (noted for readiness): where, and why.
    fn unreachable(&self, e: &dyn std::error::Error) -> StoreError {
        self.note_failure();
        StoreError::Unavailable(format!(
            "PostgreSQL at {} cannot be reached: {}",
            self.place,
            cause(e)
        ))
    }

    /// Runs the migrations the database has not had, in one transaction holding an advisory
    /// lock: of nodes starting together, one migrates and the others wait, then find nothing
    /// left to do.
    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema::MIGRATION_LOCK],
        )
        .await
        .map_err(|e| self.failed(e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS switchboard_migrations (
                 version     INTEGER PRIMARY KEY,
                 applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|e| self.failed(e))?;
        let done = self.version_in(&*tx).await?;
        if done > schema::MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "the database at {} has schema version {done}, newer than this build knows ({}): run a newer Switchboard",
                self.place,
                schema::MIGRATIONS.len()
            )));
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(done) {
            let version = i as i32 + 1;
            tx.batch_execute(sql).await.map_err(|e| self.failed(e))?;
            tx.execute(
                "INSERT INTO switchboard_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(|e| self.failed(e))?;
            tracing::info!(version, database = %self.place, "database migrated");
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<usize> {
        let client = self.client().await?;
        self.version_in(&**client).await
    }

    async fn version_in(&self, client: &impl GenericClient) -> Result<usize> {
        let version: i32 = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM switchboard_migrations",
                &[],
            )
            .await
            .map_err(|e| self.failed(e))?
            .get(0);
        Ok(version as usize)
    }

    /// Whether the database takes writes now: a transaction that writes and is committed
    /// (for readiness).
    pub async fn probe_write(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(e))?;
        tx.execute("SELECT pg_current_xact_id()", &[])
            .await
            .map_err(|e| self.failed(e))?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    /// A statement run in `tx`, prepared once per connection (a statement parsed and planned
    /// for every use cost PostgreSQL more than running it).
    pub(super) async fn query(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let stmt = tx.prepare_cached(sql).await.map_err(|e| self.failed(e))?;
        tx.query(&stmt, params).await.map_err(|e| self.failed(e))
    }

    /// [`Self::query`] of one row.
    pub(super) async fn query_one(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<tokio_postgres::Row> {
        let stmt = tx.prepare_cached(sql).await.map_err(|e| self.failed(e))?;
        tx.query_one(&stmt, params)
            .await
            .map_err(|e| self.failed(e))
    }

    /// [`Self::query`] of at most one row.
    pub(super) async fn query_opt(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>> {
        let stmt = tx.prepare_cached(sql).await.map_err(|e| self.failed(e))?;
        tx.query_opt(&stmt, params)
            .await
            .map_err(|e| self.failed(e))
    }

    /// [`Self::query`] that returns how many rows it changed.
    pub(super) async fn execute(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let stmt = tx.prepare_cached(sql).await.map_err(|e| self.failed(e))?;
        tx.execute(&stmt, params).await.map_err(|e| self.failed(e))
    }

    /// A database error, as the store's: one that comes from the connection (the database
    /// went away, refused, or shut down) says the database is unavailable.
    fn failed(&self, e: tokio_postgres::Error) -> StoreError {
        if is_connection_failure(&e) {
            self.unreachable(&e)
        } else {
            StoreError::Postgres(e)
        }
    }
}

impl PgStore {
    fn note_failure(&self) {
        self.failed_ms.store(
            jiff::Timestamp::now().as_millisecond(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// True when the database could not be reached from this node within the last `window`.
    pub fn storage_failed_within(&self, window: Duration) -> bool {
        crate::failed_within(
            self.failed_ms.load(std::sync::atomic::Ordering::Relaxed),
            window,
        )
    }

    /// How long a claimed delivery stays this node's before others may take it.
    pub fn lease(&self) -> Duration {
        self.lease
    }
}

/// An advisory lock key: the first 8 bytes of the SHA-256 of `parts` (the same on every node
/// and every build, unlike a hasher seeded per process).
pub(super) fn lock_key_of(parts: &[&[u8]]) -> i64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in parts {
        h.update(part);
    }
    let d = h.finalize();
    i64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The columns [`resource_of`] reads, in its order.
pub(super) const RESOURCE_COLUMNS: &str =
    "id, kind, account_id, extension_id, parent_id, body, created_at";

/// A management resource from a row of [`RESOURCE_COLUMNS`].
pub(super) fn resource_of(r: &tokio_postgres::Row) -> Result<crate::Resource> {
    let body: String = r.get(5);
    let kind: String = r.get(1);
    Ok(crate::Resource {
        id: r.get(0),
        kind: crate::resources::kind_of(&kind),
        account: AccountId(r.get(2)),
        extension_id: r.get(3),
        parent_id: r.get(4),
        body: serde_json::from_str(&body)?,
        created_at: r.get(6),
    })
}

/// True for an error of the connection rather than of the statement: the database closed
/// it, is shutting down, refuses connections, or has none to spare.
fn is_connection_failure(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 08 (connection exception), 53 (insufficient resources), 57P01-57P03
        // (shutting down, cannot connect now).
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
        }
        // No SQLSTATE: the error came from the socket.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// `host:port/database` of a connection config, for messages.
fn place_of(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// An error with the chain of its causes, as one line.
fn cause(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
