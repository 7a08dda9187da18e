//! The HTTP face of Switchboard: ingest, the Phone.com-compatible management API, admin and
//! ops endpoints, and the lifecycle that ties the store and delivery workers to the server.
//!
//! [`run`] takes an already bound listener, a configuration and a shutdown future, so tests
//! can start many hubs side by side on port 0.

mod api_errors;
pub mod config;
mod console;
mod error;
mod extract;
mod listing;
mod metrics;
pub mod openapi;
mod routes;
mod serve;

pub use config::{Config, ConfigError, DEFAULT_CONFIG};

/// The target of the spans exported as traces (one per ingest request, one per delivery
/// attempt): the binary's OTLP layer listens to it, its log lines do not.
pub const TRACE_TARGET: &str = switchboard_delivery::TRACE_TARGET;

use axum::Router;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use switchboard_delivery::DeliveryHandle;
use switchboard_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub delivery: DeliveryHandle,
    pub config: Arc<Config>,
    ready: Arc<AtomicBool>,
    /// Cancelled when shutdown begins: long-lived responses (live streams) end on it, so
    /// the server can drain.
    stopping: CancellationToken,
}

/// Why the hub could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot open the store: {0}")]
    Store(#[from] switchboard_store::StoreError),
    #[error("the server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Builds the router over a state (exposed for tests that drive it in-process).
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Runs the hub on `listener` until `shutdown` resolves, then stops gracefully: no new
/// connections, requests in flight finish, the delivery dispatcher stops claiming, sends in
/// flight get `shutdown_grace` to finish, and the writer commits what it has queued.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let calls = switchboard_store::CallOptions {
        finalize_grace: config.finalize_grace,
        idle_timeout: config.call_idle_timeout,
        fold_capacity: config.active_call_cache,
        max_db_pages: config.max_db_pages,
        max_events_per_call: config.max_events_per_call,
    };
    metrics::install();
    let store = match &config.store {
        Some(url) => Store::Postgres(
            switchboard_store::PgStore::connect(url, calls)
                .await?
                .with_lease(config.delivery_lease)
                .as_node(&node_name(&config)?)
                .await?,
        ),
        None => Store::open_with(&config.data_dir, calls)?,
    };
    tracing::info!(store = %store.place(), shared = store.is_shared(), "store open");
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let delivery =
        switchboard_delivery::spawn(store.clone(), config.delivery(), cancel.clone(), &tracker);
    tracker.spawn(finalize_calls(
        store.clone(),
        delivery.clone(),
        cancel.clone(),
    ));
    tracker.spawn(prune(
        store.clone(),
        config.prune_every,
        config.retention(),
        cancel.clone(),
    ));
    let ready = Arc::new(AtomicBool::new(true));
    let grace = config.shutdown_grace;
    let state = AppState {
        store: store.clone(),
        delivery,
        config: Arc::new(config),
        ready: ready.clone(),
        stopping: CancellationToken::new(),
    };
    let streams = state.stopping.clone();
    let limits = serve::Limits {
        head_timeout: state.config.header_timeout,
        max_connections: state.config.max_connections,
    };
    let router = app(state);
    let stopping = ready.clone();
    let served = serve::serve(listener, router, limits, async move {
        shutdown.await;
        // /readyz answers 503 from here on, while in-flight requests drain.
        stopping.store(false, Ordering::SeqCst);
        streams.cancel();
        tracing::info!("shutting down: finishing requests in flight");
    })
    .await;
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            "deliveries still in flight at shutdown will be sent again after the next start"
        );
    }
    store.close();
    tracing::info!("stopped");
    served?;
    Ok(())
}

/// The node's name on a shared store: `node_id`, or else the name kept in
/// `data_dir/node-id`, made at the first start.
fn node_name(config: &Config) -> Result<String, RunError> {
    if let Some(name) = &config.node_id {
        return Ok(name.trim().to_string());
    }
    let path = config.data_dir.join("node-id");
    let unusable = |e: std::io::Error| {
        RunError::Store(switchboard_store::StoreError::Config(format!(
            "node_id: cannot keep this node's name in {}: {e} (set node_id, or a data_dir it may write)",
            path.display()
        )))
    };
    match std::fs::read_to_string(&path) {
        Ok(name) => return Ok(name.trim().to_string()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(unusable(e)),
        Err(_) => {}
    }
    let name = uuid::Uuid::now_v7().to_string();
    let fresh = config.data_dir.join("node-id.new");
    std::fs::create_dir_all(&config.data_dir)
        .and_then(|()| std::fs::write(&fresh, format!("{name}\n")))
        .and_then(|()| std::fs::rename(&fresh, &path))
        .map_err(unusable)?;
    tracing::info!(node = %name, file = %path.display(), "named this node");
    Ok(name)
}

/// Prunes what is past its retention, every `prune_every`: batch after batch while any goes,
/// each a writer job of its own, giving the freed pages back after each.
async fn prune(
    store: Store,
    every: std::time::Duration,
    keep: switchboard_store::Retention,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let mut total = switchboard_store::Pruned::default();
        while !cancel.is_cancelled() {
            let started = std::time::Instant::now();
            let now = jiff::Timestamp::now().as_millisecond();
            match store.prune_batch(now, keep, PRUNE_BATCH).await {
                Ok(done) if done.any() => {
                    total.events += done.events;
                    total.calls += done.calls;
                    total.deliveries += done.deliveries;
                    if let Err(e) = store.reclaim_space(RECLAIM_PAGES).await {
                        tracing::warn!(error = %e, "could not give pruned space back");
                    }
                    // Ingest goes first: the pruner waits at least twice as long as its
                    // jobs took (with the writer's queue ahead of them), so it never holds
                    // the writer for more than a third of the time however slow its jobs
                    // get on a large database or under load.
                    let pause = PRUNE_PAUSE.max(started.elapsed() * PRUNE_YIELD);
                    tokio::time::sleep(pause).await;
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "pruning failed");
                    break;
                }
            }
        }
        if total.any() {
            tracing::info!(
                events = total.events,
                calls = total.calls,
                deliveries = total.deliveries,
                "pruned what is past its retention"
            );
        }
    }
}

/// Rows of each kind one pruning job takes: a job of a few milliseconds, so the writer's
/// other jobs wait no longer for it than for one ingest batch.
const PRUNE_BATCH: usize = 250;
/// Pages given back after each pruning job (4 KiB each).
const RECLAIM_PAGES: u32 = 500;
/// How many times as long as a pruning job took the pruner waits before the next.
const PRUNE_YIELD: u32 = 2;
/// The least pause between pruning jobs: ingest goes first.
const PRUNE_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Finalizes ended calls once their grace window is over (and closes quiet ones), a few times
/// a second; their call logs go out like any other event.
async fn finalize_calls(store: Store, delivery: DeliveryHandle, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Stops with shutdown; a call due meanwhile is finalized after the next start.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        loop {
            match store.finalize_due(jiff::Timestamp::now()).await {
                Ok(done) => {
                    if done.events > 0 {
                        ::metrics::counter!("switchboard_call_logs_emitted_total")
                            .increment(done.events as u64);
                        delivery.wake();
                    }
                    if done.more && !cancel.is_cancelled() {
                        continue;
                    }
                }
                Err(e) => tracing::error!(error = %e, "finalizing calls failed"),
            }
            break;
        }
    }
}
