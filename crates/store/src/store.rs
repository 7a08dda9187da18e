//! The one store the hub runs on: the embedded SQLite file, or a PostgreSQL database shared by
//! several nodes. The server, delivery and the command line hold a [`Store`] and never ask
//! which; each method is carried out by the store it holds, with the same meaning on both
//! (the conformance tests run the same checks against each).

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{
    Account, AgentRow, AttemptOutcome, Blocker, CallDeliveries, CallOptions, CallQuery,
    CallbackHealth, CallbackSlots, Claim, Deactivation, DeliveryPage, Erased, Finalized, Gauges,
    InFlight, IngestOutcome, Kind, ListQuery, NewResource, Owner, Pruned, Ref, Resource, Result,
    Retention, Scope, StoreError, StoredCall, StoredEvent, TokenInfo,
};
use jiff::Timestamp;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use switchboard_model::{AccountId, Direction, Event};

/// The hub's store: SQLite in a data directory (the default), or PostgreSQL.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Runs the same call on whichever store `self` holds.
macro_rules! on_either {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Ok(Store::Sqlite(SqliteStore::open(data_dir)?))
    }

    /// Opens the SQLite store in `data_dir` with the given call options.
    pub fn open_with(data_dir: &Path, calls: CallOptions) -> Result<Store> {
        Ok(Store::Sqlite(SqliteStore::open_with(data_dir, calls)?))
    }

    /// Where the state lives, for logs: the database file, or PostgreSQL's host, port and
    /// database (never a password).
    pub fn place(&self) -> String {
        match self {
            Store::Sqlite(s) => s.path().display().to_string(),
            Store::Postgres(s) => s.place().to_string(),
        }
    }

    /// Whether several nodes may share this store (work that must run once across them
    /// takes its turn through the database).
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Finishes what is queued and lets go of the database.
    pub fn close(&self) {
        on_either!(self, s => s.close())
    }

    /// True when the storage refused a write within the last `window`.
    pub fn storage_failed_within(&self, window: std::time::Duration) -> bool {
        on_either!(self, s => s.storage_failed_within(window))
    }

    /// Whether the storage takes writes now (for readiness).
    pub async fn probe_write(&self) -> Result<()> {
        on_either!(self, s => s.probe_write().await)
    }

    /// Follows the log position of the newest event (for live streams).
    pub fn watch_latest(&self) -> tokio::sync::watch::Receiver<i64> {
        on_either!(self, s => s.watch_latest())
    }

    pub async fn create_account(&self, id: Option<i64>, name: String) -> Result<Account> {
        on_either!(self, s => s.create_account(id, name).await)
    }

    pub async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        on_either!(self, s => s.account(id).await)
    }

    pub async fn create_token(
        &self,
        account: AccountId,
        scope: Scope,
        extension_id: Option<i64>,
        default_tz: Option<String>,
    ) -> Result<String> {
        on_either!(self, s => s.create_token(account, scope, extension_id, default_tz).await)
    }

    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        on_either!(self, s => s.authenticate(token).await)
    }

    pub async fn ingest(
        &self,
        account: AccountId,
        events: Vec<Event>,
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        on_either!(self, s => s.ingest(account, events, now).await)
    }

    pub async fn events_after(
        &self,
        account: AccountId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        on_either!(self, s => s.events_after(account, after_seq, limit).await)
    }

    pub async fn count_events(&self, account: AccountId) -> Result<i64> {
        on_either!(self, s => s.count_events(account).await)
    }

    pub async fn finalize_due(&self, now: Timestamp) -> Result<Finalized> {
        on_either!(self, s => s.finalize_due(now).await)
    }

    pub async fn call(
        &self,
        account: AccountId,
        id: String,
    ) -> Result<Option<(StoredCall, Vec<Event>)>> {
        on_either!(self, s => s.call(account, id).await)
    }

    pub async fn calls(&self, account: AccountId, q: CallQuery) -> Result<(i64, Vec<StoredCall>)> {
        on_either!(self, s => s.calls(account, q).await)
    }

    pub async fn agents(&self, account: AccountId) -> Result<Vec<AgentRow>> {
        on_either!(self, s => s.agents(account).await)
    }

    pub async fn claim_due(
        &self,
        now_ms: i64,
        limit: i64,
        slots: CallbackSlots,
        in_flight: Arc<InFlight>,
    ) -> Result<Claim> {
        on_either!(self, s => s.claim_due(now_ms, limit, slots, in_flight).await)
    }

    /// Keeps the claims on rows still being sent (PostgreSQL leases them to a node for a
    /// while; SQLite's claims are in memory and need nothing).
    pub async fn extend_leases(&self, ids: &[i64], now_ms: i64) -> Result<u64> {
        match self {
            Store::Sqlite(_) => Ok(0),
            Store::Postgres(s) => s.extend_leases(ids, now_ms).await,
        }
    }

    /// How long a claim lasts before another node may take its row (`None`: for ever).
    pub fn lease(&self) -> Option<std::time::Duration> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(s) => Some(s.lease()),
        }
    }

    pub async fn record_attempts(
        &self,
        outcomes: Vec<AttemptOutcome>,
        disable_after_ms: i64,
    ) -> Result<Vec<Deactivation>> {
        on_either!(self, s => s.record_attempts(outcomes, disable_after_ms).await)
    }

    pub async fn call_deliveries(
        &self,
        account: AccountId,
        call_id: String,
    ) -> Result<Option<CallDeliveries>> {
        on_either!(self, s => s.call_deliveries(account, call_id).await)
    }

    pub async fn callback_health(
        &self,
        account: AccountId,
        callbacks: Vec<i64>,
    ) -> Result<Vec<CallbackHealth>> {
        on_either!(self, s => s.callback_health(account, callbacks).await)
    }

    pub async fn deliveries_of_callback(
        &self,
        account: AccountId,
        callback_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<DeliveryPage> {
        on_either!(self, s => s.deliveries_of_callback(account, callback_id, limit, offset).await)
    }

    pub async fn retry_delivery(
        &self,
        account: AccountId,
        callback_id: i64,
        id: i64,
    ) -> Result<()> {
        on_either!(self, s => s.retry_delivery(account, callback_id, id).await)
    }

    pub async fn replay(
        &self,
        account: AccountId,
        listener_id: i64,
        callback_id: i64,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<usize> {
        on_either!(self, s => s.replay(account, listener_id, callback_id, from_ns, to_ns).await)
    }

    pub async fn expire_waiting(&self, before_ms: i64) -> Result<usize> {
        on_either!(self, s => s.expire_waiting(before_ms).await)
    }

    pub async fn call_directions(&self, ids: Vec<String>) -> Result<HashMap<String, Direction>> {
        on_either!(self, s => s.call_directions(ids).await)
    }

    pub async fn prune_attempts(&self, before_ms: i64) -> Result<usize> {
        on_either!(self, s => s.prune_attempts(before_ms).await)
    }

    pub async fn reset_callback_health(&self, callback_id: i64) -> Result<()> {
        on_either!(self, s => s.reset_callback_health(callback_id).await)
    }

    pub async fn create_resource(&self, new: NewResource) -> Result<Resource> {
        on_either!(self, s => s.create_resource(new).await)
    }

    /// Creates several resources in one transaction; `build` sees the ids made so far.
    pub async fn create_resources<F>(&self, build: F) -> Result<Vec<Resource>>
    where
        F: FnOnce(&mut dyn FnMut(NewResource) -> Result<Resource>) -> Result<()> + Send + 'static,
    {
        on_either!(self, s => s.create_resources(build).await)
    }

    pub async fn get_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
    ) -> Result<Option<Resource>> {
        on_either!(self, s => s.get_resource(kind, owner, parent_id, id).await)
    }

    pub async fn update_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
        update: impl FnOnce(&Resource) -> Result<(Value, Vec<Ref>)> + Send + 'static,
    ) -> Result<Resource> {
        on_either!(self, s => s.update_resource(kind, owner, parent_id, id, update).await)
    }

    pub async fn delete_resource(
        &self,
        kind: Kind,
        owner: Owner,
        parent_id: Option<i64>,
        id: i64,
        blockers: Vec<Blocker>,
    ) -> Result<()> {
        on_either!(self, s => s.delete_resource(kind, owner, parent_id, id, blockers).await)
    }

    pub async fn list_resources(&self, q: ListQuery) -> Result<(i64, Vec<Resource>)> {
        on_either!(self, s => s.list_resources(q).await)
    }

    pub async fn children_of(
        &self,
        kind: Kind,
        account: AccountId,
        parents: Vec<i64>,
    ) -> Result<Vec<Resource>> {
        on_either!(self, s => s.children_of(kind, account, parents).await)
    }

    pub async fn unsubscribe(&self, token: String) -> Result<Option<(AccountId, i64)>> {
        on_either!(self, s => s.unsubscribe(token).await)
    }

    pub async fn prune_batch(&self, now_ms: i64, keep: Retention, batch: usize) -> Result<Pruned> {
        on_either!(self, s => s.prune_batch(now_ms, keep, batch).await)
    }

    pub async fn reclaim_space(&self, pages: u32) -> Result<()> {
        on_either!(self, s => s.reclaim_space(pages).await)
    }

    pub async fn pruned_through(&self, account: AccountId) -> Result<i64> {
        on_either!(self, s => s.pruned_through(account).await)
    }

    pub async fn erase_number(&self, account: Option<AccountId>, digits: String) -> Result<Erased> {
        on_either!(self, s => s.erase_number(account, digits).await)
    }

    pub async fn erase_account(&self, account: AccountId) -> Result<Erased> {
        on_either!(self, s => s.erase_account(account).await)
    }

    pub async fn gauges(&self) -> Result<Gauges> {
        on_either!(self, s => s.gauges().await)
    }

    /// The SQLite store, for what only it does (its file, backups of it).
    pub fn as_sqlite(&self) -> Result<&SqliteStore> {
        match self {
            Store::Sqlite(s) => Ok(s),
            Store::Postgres(_) => Err(StoreError::Config(
                "this works on the embedded SQLite store only".into(),
            )),
        }
    }
}
