//! The dispatcher: claims due outbox rows and sends each in a task of its own.
//!
//! Concurrency is bounded twice: in all (`max_in_flight`) and per callback
//! (`per_callback`), so a callback that hangs holds at most its own share of senders while
//! every other callback goes on. A callback already at its limit is left out of the next
//! claim instead of being waited on.

use crate::http::{self, HttpConfig};
use crate::schedule::RetrySchedule;
use crate::signing;
use crate::target::TargetGuard;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_dialects::Recipient;
use switchboard_store::{AttemptOutcome, ClaimedDelivery, Next, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How delivery behaves; every field has a documented default in the config file.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub schedule: RetrySchedule,
    /// Used when a callback sets no `timeout`.
    pub default_timeout: Duration,
    pub per_callback: usize,
    pub max_in_flight: usize,
    pub guard: TargetGuard,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            schedule: RetrySchedule::default(),
            default_timeout: Duration::from_secs(10),
            per_callback: 16,
            max_in_flight: 512,
            guard: TargetGuard::default(),
        }
    }
}

/// What the rest of the hub holds of delivery: a way to wake it and to verify callbacks.
#[derive(Clone)]
pub struct DeliveryHandle {
    state: Arc<State>,
}

struct State {
    store: Store,
    settings: DeliverySettings,
    guard: Arc<TargetGuard>,
    client: reqwest::Client,
    wake: Notify,
    in_flight: Arc<Semaphore>,
    per_callback: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

/// Claims at most this many rows at a time.
const CLAIM_BATCH: usize = 256;
/// How long a callback that is switched off holds its deliveries before they are looked at again.
const DISABLED_HOLD: Duration = Duration::from_secs(30);

impl DeliveryHandle {
    /// Tells the dispatcher that new rows may be due.
    pub fn wake(&self) {
        self.state.wake.notify_one();
    }

    /// Checks a callback URL with the `{"test": 1}` request.
    pub async fn verify(&self, cfg: &HttpConfig) -> Result<(), String> {
        http::verify_callback(
            &self.state.client,
            &self.state.guard,
            cfg,
            self.state.settings.default_timeout,
        )
        .await
    }

    /// Checks only that the target is allowed (no request is made).
    pub async fn check_target(&self, cfg: &HttpConfig) -> Result<(), String> {
        self.state
            .guard
            .check_url(&cfg.url)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Starts the dispatcher; it stops claiming when `cancel` fires, and its send tasks are
/// tracked by `tracker` so shutdown can wait for them.
pub fn spawn(
    store: Store,
    settings: DeliverySettings,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> DeliveryHandle {
    let guard = Arc::new(settings.guard.clone());
    let state = Arc::new(State {
        client: http::client(&guard),
        guard,
        in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        settings,
        store,
        wake: Notify::new(),
        per_callback: Mutex::new(HashMap::new()),
    });
    tracker.spawn(dispatch(state.clone(), cancel, tracker.clone()));
    DeliveryHandle { state }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl State {
    fn callback_slots(&self, callback_id: i64) -> Arc<Semaphore> {
        self.per_callback
            .lock()
            .expect("callback slots")
            .entry(callback_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_callback.max(1))))
            .clone()
    }

    fn saturated_callbacks(&self) -> Vec<i64> {
        self.per_callback
            .lock()
            .expect("callback slots")
            .iter()
            .filter(|(_, s)| s.available_permits() == 0)
            .map(|(id, _)| *id)
            .collect()
    }

    fn lease_ms(&self) -> i64 {
        // Long enough for the slowest allowed send, so a live send is never claimed twice.
        (Duration::from_secs(300).max(self.settings.default_timeout) + Duration::from_secs(30))
            .as_millis() as i64
    }
}

async fn dispatch(state: Arc<State>, cancel: CancellationToken, tracker: TaskTracker) {
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let free = state.in_flight.available_permits().min(CLAIM_BATCH);
        let mut full = false;
        if free > 0 {
            let now = now_ms();
            match state
                .store
                .claim_due(
                    now,
                    free as i64,
                    now + state.lease_ms(),
                    state.saturated_callbacks(),
                )
                .await
            {
                Ok(claimed) => {
                    full = claimed.len() == free;
                    for delivery in claimed {
                        start_send(&state, delivery, &tracker).await;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        if full {
            continue;
        }
        let wait = match state.store.next_due_ms().await {
            Ok(Some(at)) => Duration::from_millis((at - now_ms()).clamp(0, 1000) as u64),
            _ => Duration::from_secs(1),
        };
        // Wake on whichever comes first: new rows, a finished send, the next due time, or
        // shutdown (which ends the loop; sends already started finish on their own).
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::debug!("delivery dispatcher stopped");
}

async fn start_send(state: &Arc<State>, delivery: ClaimedDelivery, tracker: &TaskTracker) {
    let callback_id = delivery.callback.as_ref().map(|c| c.id).unwrap_or(0);
    let slot = state.callback_slots(callback_id).try_acquire_owned();
    let overall = state.in_flight.clone().try_acquire_owned();
    let (Ok(slot), Ok(overall)) = (slot, overall) else {
        // This callback (or the hub) is at its limit: hand the row back untouched.
        let outcome = AttemptOutcome {
            outbox_id: delivery.outbox_id,
            at_ms: now_ms(),
            status_code: None,
            latency_ms: 0,
            error: None,
            response_prefix: None,
            next: Next::HoldUntil(now_ms()),
        };
        if let Err(e) = state.store.record_attempts(vec![outcome]).await {
            tracing::error!(error = %e, "could not hand back a delivery");
        }
        return;
    };
    let state = state.clone();
    tracker.spawn(async move {
        let outcome = deliver(&state, delivery, (slot, overall)).await;
        if let Err(e) = state.store.record_attempts(vec![outcome]).await {
            tracing::error!(error = %e, "could not record a delivery attempt");
        }
        state.wake.notify_one();
    });
}

fn finished(outbox_id: i64, next: Next, error: impl Into<String>) -> AttemptOutcome {
    AttemptOutcome {
        outbox_id,
        at_ms: now_ms(),
        status_code: None,
        latency_ms: 0,
        error: Some(error.into()),
        response_prefix: None,
        next,
    }
}

async fn deliver(
    state: &State,
    d: ClaimedDelivery,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
) -> AttemptOutcome {
    let id = d.outbox_id;
    let (Some(dialect), Some(callback)) = (d.dialect, d.callback.as_ref()) else {
        return finished(id, Next::Dead, "the listener or its callback was deleted");
    };
    let body = &callback.body;
    if body.get("enabled").and_then(|e| e.as_bool()) == Some(false) {
        return AttemptOutcome {
            error: None,
            ..finished(
                id,
                Next::HoldUntil(now_ms() + DISABLED_HOLD.as_millis() as i64),
                "",
            )
        };
    }
    let mode = body.get("mode").and_then(|m| m.as_str()).unwrap_or("HTTPS");
    if !matches!(mode, "HTTP" | "HTTPS") {
        return finished(
            id,
            Next::Dead,
            format!("callback mode {mode} cannot deliver yet"),
        );
    }
    let cfg = match HttpConfig::from_json(body.get("config").unwrap_or(&serde_json::Value::Null)) {
        Ok(cfg) => cfg,
        Err(e) => return finished(id, Next::Dead, format!("callback config is unusable: {e}")),
    };
    let recipient = Recipient {
        listener_id: d.listener_id,
        account: d.event.account,
        extension_id: d.listener_extension_id,
    };
    let Some(payload) = switchboard_dialects::encode(dialect, &d.event, &recipient) else {
        return AttemptOutcome {
            next: Next::Succeeded,
            ..finished(
                id,
                Next::Succeeded,
                format!(
                    "skipped: the {dialect} dialect has no counterpart for {}",
                    d.event.fact.kind.as_str()
                ),
            )
        };
    };
    let msg_id = d.event.id.to_string();
    let timestamp = jiff::Timestamp::now().as_second();
    let mut headers = vec![
        ("webhook-id".to_string(), msg_id.clone()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
    ];
    let signatures: Vec<String> = ["secret", "previous_secret"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(|s| s.as_str()))
        .filter_map(|secret| signing::sign(secret, &msg_id, timestamp, &payload))
        .collect();
    if !signatures.is_empty() {
        headers.push(("webhook-signature".to_string(), signatures.join(" ")));
    }
    let result = http::send(
        &state.client,
        &state.guard,
        &cfg,
        payload,
        &headers,
        state.settings.default_timeout,
    )
    .await;
    let attempts_made = d.attempts + 1;
    let next = if result.succeeded() {
        Next::Succeeded
    } else {
        match state.settings.schedule.wait_after(attempts_made) {
            Some(wait) => Next::RetryAt(now_ms() + wait.as_millis() as i64),
            None => Next::Dead,
        }
    };
    if !result.succeeded() {
        tracing::info!(outbox_id = id, callback_id = callback.id, attempt = attempts_made, error = ?result.error, "delivery attempt failed");
    }
    AttemptOutcome {
        outbox_id: id,
        at_ms: now_ms(),
        status_code: result.status,
        latency_ms: result.latency.as_millis() as i64,
        error: result.error,
        response_prefix: result.body_prefix,
        next,
    }
}
