//! The dispatcher: claims due outbox rows and sends each in a task of its own.
//!
//! Concurrency is bounded in all (`max_in_flight` requests open) and per callback
//! (`per_callback`), so a callback that hangs holds at most its own share of senders while
//! every other callback goes on. Sending never runs further ahead of recording than
//! `UNRECORDED_PER_SENDER` times `max_in_flight` deliveries. A callback already at its limit
//! is left out of the next claim instead of being waited on.

use crate::application::GoogleAnalytics;
use crate::email::{self, EmailConfig, SmtpSettings};
use crate::http::{self, HttpConfig, SendResult};
use crate::schedule::RetrySchedule;
use crate::signing;
use crate::target::TargetGuard;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_dialects::Recipient;
use switchboard_model::{Details, Dialect, EventKind, Fact, NoticeFacts, Source};
use switchboard_store::{
    AttemptOutcome, CallbackSlots, ClaimedDelivery, Deactivation, InFlight, Kind, Next, Owner,
    Store,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How delivery behaves; every field has a documented default in the config file.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub schedule: RetrySchedule,
    /// Used when a callback sets no `timeout`.
    pub default_timeout: Duration,
    pub per_callback: usize,
    pub max_in_flight: usize,
    pub guard: TargetGuard,
    /// A callback whose every delivery failed for this long is switched off.
    pub disable_after: Duration,
    /// Attempts older than this are forgotten.
    pub attempt_retention: Duration,
    /// A delivery that waited this long for its callback to be switched on expires.
    pub wait_limit: Duration,
    /// Where `google-analytics` applications send their hits (Measurement Protocol v1).
    pub google_analytics_url: String,
    /// Mail server for `EMAIL` callbacks and notifications; `None`: no mail.
    pub smtp: Option<SmtpSettings>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            schedule: RetrySchedule::default(),
            default_timeout: Duration::from_secs(10),
            per_callback: 32,
            max_in_flight: 512,
            guard: TargetGuard::default(),
            disable_after: Duration::from_secs(5 * 86_400),
            attempt_retention: Duration::from_secs(30 * 86_400),
            wait_limit: Duration::from_secs(30 * 86_400),
            google_analytics_url: "https://www.google-analytics.com/collect".into(),
            smtp: None,
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
    /// Places for deliveries claimed and not yet recorded (`UNRECORDED_PER_SENDER` ×
    /// `max_in_flight`).
    in_flight: Arc<Semaphore>,
    /// Requests open in all (`max_in_flight`).
    sending: Arc<Semaphore>,
    per_callback: Mutex<HashMap<i64, Arc<Semaphore>>>,
    /// Claimed deliveries waiting for one of their callback's senders (up to
    /// [`State::queue_room`] of them per callback), each with its place in flight: a send
    /// that finishes takes the next of its callback at once, with no claim in between.
    /// (Between a finished send and the next claim, a callback's senders sat idle: one
    /// listener got ~6 500 webhooks/s from 16 senders whose requests took a tenth of the
    /// time.)
    waiting: Mutex<HashMap<i64, VecDeque<(ClaimedDelivery, OwnedSemaphorePermit)>>>,
    /// Outbox rows claimed and not yet recorded: left out of further claims. Kept in memory
    /// only; after a crash, what was in flight is simply due again.
    claimed: Mutex<InFlight>,
    /// The hub is stopping: outcomes that cannot be recorded are left for the next start.
    stopping: CancellationToken,
    /// Finished attempts on their way to the store, written in batches by the recorder. Each
    /// holds its place in `in_flight` until it is recorded, so sends cannot run ahead of the
    /// recording: unrecorded rows stay in flight (left out of claims, widening every claim's
    /// window), and without the bound they piled up by the ten thousand when sends outran the
    /// writer.
    outcomes: tokio::sync::mpsc::UnboundedSender<(AttemptOutcome, OwnedSemaphorePermit)>,
}

/// How many deliveries may be sent and not yet recorded, per request allowed open: while
/// ingest keeps the writer busy an outcome waits ~100 ms to be written, and with only one
/// place per request delivery to one listener was held to ~5 000/s.
const UNRECORDED_PER_SENDER: usize = 4;

/// Requests open in all (at least one).
fn requests_open(settings: &DeliverySettings) -> usize {
    settings.max_in_flight.max(1)
}

fn unrecorded_places(settings: &DeliverySettings) -> usize {
    requests_open(settings) * UNRECORDED_PER_SENDER
}

/// On a store shared by several nodes, how many times `per_callback` deliveries a callback
/// may have claimed and waiting for its senders. Eight (with the default 32 senders, a
/// queue of 256, what one claim takes at most): one listener on PostgreSQL, one node,
/// alternating, same minutes: ×1 4 993, 5 195 → ×4 6 100, 6 384 webhooks/s; ×4 7 211,
/// 6 997 → ×8 8 198, 8 405; ×8 7 594, 7 143 → ×16 8 120, 8 262 (beyond one claim's worth,
/// little more). On SQLite, where a claim is cheap, ×4 made no difference beyond the noise,
/// so SQLite keeps one.
const SHARED_CLAIM_AHEAD: usize = 8;
/// Claims at most this many rows at a time.
const CLAIM_BATCH: usize = 256;
/// The first and the longest wait before writing again outcomes the store refused.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);
/// How often old attempts are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

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

    /// Checks only that a callback's target is allowed (no request is made).
    pub async fn check_target(&self, cfg: &HttpConfig) -> Result<(), String> {
        self.state
            .guard
            .check_url(&cfg.url)
            .await
            .map_err(|e| e.to_string())
    }

    /// Whether e-mail can be sent at all (an SMTP server is configured).
    pub fn can_email(&self) -> bool {
        self.state.settings.smtp.is_some()
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
    let (outcomes, finished) = tokio::sync::mpsc::unbounded_channel();
    let state = Arc::new(State {
        outcomes,
        client: http::client(&guard, requests_open(&settings)),
        guard,
        in_flight: Arc::new(Semaphore::new(unrecorded_places(&settings))),
        sending: Arc::new(Semaphore::new(requests_open(&settings))),
        settings,
        store,
        wake: Notify::new(),
        per_callback: Mutex::new(HashMap::new()),
        waiting: Mutex::new(HashMap::new()),
        claimed: Mutex::new(InFlight::default()),
        stopping: cancel.clone(),
    });
    tracker.spawn(dispatch(state.clone(), cancel.clone(), tracker.clone()));
    tracker.spawn(recorder(state.clone(), finished, cancel));
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

    /// How many claimed deliveries may wait for each callback's senders: `per_callback`, or
    /// `SHARED_CLAIM_AHEAD` times that on a store shared by several nodes, where a claim
    /// costs round trips and a row written per delivery: claiming further ahead makes fewer,
    /// larger claims. The requests open to a callback stay `per_callback` either way.
    fn queue_room(&self) -> usize {
        let per_callback = self.settings.per_callback.max(1);
        if self.store.is_shared() {
            per_callback * SHARED_CLAIM_AHEAD
        } else {
            per_callback
        }
    }

    /// How many more deliveries each callback may be given: its free senders, and room in
    /// its queue of waiting deliveries.
    fn free_slots(&self) -> CallbackSlots {
        let per_callback = self.settings.per_callback.max(1);
        let room = self.queue_room();
        let waiting = self.waiting.lock().expect("waiting deliveries");
        let free = self
            .per_callback
            .lock()
            .expect("callback slots")
            .iter()
            .map(|(id, s)| {
                let queued = waiting.get(id).map_or(0, VecDeque::len);
                (*id, s.available_permits() + room.saturating_sub(queued))
            })
            .collect();
        CallbackSlots {
            free,
            default: per_callback + room,
        }
    }

    /// The next delivery waiting for `callback`'s senders.
    fn next_waiting(&self, callback: i64) -> Option<(ClaimedDelivery, OwnedSemaphorePermit)> {
        let mut waiting = self.waiting.lock().expect("waiting deliveries");
        let queue = waiting.get_mut(&callback)?;
        let next = queue.pop_front();
        if queue.is_empty() {
            waiting.remove(&callback);
        }
        next
    }

    /// Starts what waits for callbacks whose senders are free again (a send that found no
    /// next delivery waiting may have let its sender go just as one was queued).
    fn start_waiting(self: &Arc<Self>, tracker: &TaskTracker) {
        let callbacks: Vec<i64> = self
            .waiting
            .lock()
            .expect("waiting deliveries")
            .keys()
            .copied()
            .collect();
        for callback in callbacks {
            while let Some(senders) = self.senders_for(callback) {
                let Some((delivery, place)) = self.next_waiting(callback) else {
                    break;
                };
                spawn_sender(self, delivery, place, senders, tracker);
            }
        }
    }

    /// A sender of `callback`'s and one of the hub's, if both are free.
    fn senders_for(&self, callback: i64) -> Option<Senders> {
        let slot = self.callback_slots(callback).try_acquire_owned().ok()?;
        let sender = self.sending.clone().try_acquire_owned().ok()?;
        Some((slot, sender))
    }

    /// The rows in flight now, for a claim to leave out.
    fn claimed_now(&self) -> Arc<InFlight> {
        Arc::new(self.claimed.lock().expect("claimed rows").clone())
    }

    /// Records outcomes, then tells whoever must know about callbacks switched off.
    async fn record(&self, outcomes: Vec<AttemptOutcome>) {
        let disable_after = self.settings.disable_after.as_millis() as i64;
        let ids: Vec<i64> = outcomes.iter().map(|o| o.outbox_id).collect();
        // An outcome that cannot be written (a full disk) is written again, not sent again:
        // its rows stay in flight, out of every claim, and the recorder backs off (which holds
        // every send behind it, as unrecorded outcomes hold their places), until the store
        // takes it — or the hub stops, after which the rows are due again at the next start.
        let mut wait = RECORD_RETRY_FIRST;
        let mut failing = false;
        let recorded = loop {
            match self
                .store
                .record_attempts(outcomes.clone(), disable_after)
                .await
            {
                Ok(deactivated) => break Ok(deactivated),
                // Only a storage failure is waited out; a fault of the work itself would
                // fail the same way for ever (its rows are due again, as they were).
                Err(e) if self.stopping.is_cancelled() || !e.is_storage() => break Err(e),
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, deliveries = ids.len(), "could not record delivery attempts; retrying the record, not the sends");
                        failing = true;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RECORD_RETRY_MAX);
                }
            }
        };
        if failing && recorded.is_ok() {
            tracing::info!(deliveries = ids.len(), "delivery attempts recorded again");
        }
        // Only once the outcome is committed may the row be claimed again (if it is still due).
        {
            let mut claimed = self.claimed.lock().expect("claimed rows");
            for id in ids {
                claimed.remove(id);
            }
        }
        match recorded {
            Ok(deactivated) => {
                Self::count_outcomes(&outcomes);
                if !deactivated.is_empty() {
                    metrics::counter!("switchboard_callbacks_disabled_total")
                        .increment(deactivated.len() as u64);
                }
                for d in deactivated {
                    self.announce(d).await;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record delivery attempts; their deliveries are due again")
            }
        }
    }

    /// Counts recorded attempts by how they ended and the class of the receiver's answer.
    fn count_outcomes(outcomes: &[AttemptOutcome]) {
        for o in outcomes {
            let outcome = match o.next {
                Next::Succeeded => "succeeded",
                Next::Dead => "dead",
                Next::RetryAt(_) => "failed_attempt",
                // Not sent: held, rerouted to a fallback, or waiting for the callback.
                _ => continue,
            };
            let class = match o.status_code {
                Some(200..=299) => "2xx",
                Some(300..=399) => "3xx",
                Some(400..=499) => "4xx",
                Some(500..=599) => "5xx",
                Some(_) => "other",
                None => "none",
            };
            metrics::counter!("switchboard_deliveries_total", "outcome" => outcome, "status_class" => class)
            .increment(1);
        }
    }

    /// A callback was switched off: raise a `deactivated-listener-callback` event and mail
    /// its profile's support address.
    async fn announce(&self, d: Deactivation) {
        tracing::warn!(account = %d.account, callback_id = d.callback_id, reason = %d.reason, "callback switched off");
        let now = jiff::Timestamp::now();
        let raw =
            json!({ "callback_id": d.callback_id, "reason": d.reason, "at": now.to_string() });
        let fact = Fact {
            time_estimated: false,
            source_key: format!(
                "callback-deactivated:{}:{}",
                d.callback_id,
                now.as_millisecond()
            ),
            kind: EventKind::CallbackDeactivated,
            occurred_at: now,
            call_id: None,
            leg_id: None,
            agent_id: None,
            details: Details::Notice(NoticeFacts {
                callback_id: d.callback_id,
                reason: d.reason.clone(),
            }),
            vendor: Default::default(),
            raw: serde_json::value::to_raw_value(&raw).expect("JSON"),
        };
        let source = Source {
            dialect: Dialect::Canonical,
            name: Some("switchboard".into()),
        };
        let events =
            switchboard_engine::stamp(d.account, &source, now, vec![fact], uuid::Uuid::now_v7);
        match self.store.ingest(d.account, events, now).await {
            Ok(_) => self.wake.notify_one(),
            Err(e) => tracing::error!(error = %e, "could not raise the deactivation event"),
        }
        let owner = Owner {
            account: d.account,
            extension_id: None,
        };
        let Ok(Some(callback)) = self
            .store
            .get_resource(Kind::Callback, owner, None, d.callback_id)
            .await
        else {
            return;
        };
        let Some(profile_id) = callback.body.get("profile_id").and_then(Value::as_i64) else {
            return;
        };
        let Ok(Some(profile)) = self
            .store
            .get_resource(Kind::Profile, owner, None, profile_id)
            .await
        else {
            return;
        };
        let Some(to) = profile.body.get("support_email").and_then(Value::as_str) else {
            return;
        };
        let Some(smtp) = &self.settings.smtp else {
            tracing::warn!(
                callback_id = d.callback_id,
                "no SMTP server configured: the profile's support e-mail was not sent"
            );
            return;
        };
        let url = callback
            .body
            .get("config")
            .and_then(|c| c.get("url").or_else(|| c.get("email")))
            .and_then(Value::as_str)
            .unwrap_or("");
        let body = format!(
            "Switchboard switched off callback {} of account {} ({url}).\n\nReason: {}.\n\nEvents for it now go to its fallback callback if it has one; otherwise they wait.\nSwitch it on again with PATCH .../callbacks/{} {{\"enabled\": true}}.\n",
            d.callback_id, d.account, d.reason, d.callback_id
        );
        if let Err(e) = email::send_mail(
            smtp,
            to,
            &format!("Switchboard: callback {} was switched off", d.callback_id),
            &body,
            self.settings.default_timeout,
        )
        .await
        {
            tracing::error!(error = %e, "could not mail the profile's support address");
        }
    }
}

/// Writes finished attempts in batches: one store job for all that finished meanwhile.
async fn recorder(
    state: Arc<State>,
    mut finished: tokio::sync::mpsc::UnboundedReceiver<(AttemptOutcome, OwnedSemaphorePermit)>,
    cancel: CancellationToken,
) {
    let all = unrecorded_places(&state.settings);
    loop {
        let first = tokio::select! {
            got = finished.recv() => got,
            // After shutdown, what is still in flight is recorded as it finishes; the recorder
            // stops once nothing is left to record.
            _ = cancel.cancelled(), if state.in_flight.available_permits() == all && finished.is_empty() => None,
            _ = tokio::time::sleep(Duration::from_millis(100)), if cancel.is_cancelled() => continue,
        };
        let Some((first, permit)) = first else { break };
        let mut batch = vec![first];
        let mut permits = vec![permit];
        while batch.len() < 512 {
            match finished.try_recv() {
                Ok((o, permit)) => {
                    batch.push(o);
                    permits.push(permit);
                }
                Err(_) => break,
            }
        }
        state.record(batch).await;
        // Recorded: their places in flight are free for new claims.
        drop(permits);
        state.wake.notify_one();
    }
}

/// How often deliveries that waited too long for their callback are expired: a quarter of
/// the limit, between a quarter second and a minute.
fn expire_every(settings: &DeliverySettings) -> Duration {
    (settings.wait_limit / 4).clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// How often a dispatcher on a store shared by several nodes looks for deliveries due: rows
/// written through other nodes wake no one here (the database is not asked to notify every
/// commit), so it polls, on top of the wake-ups from this node's own ingest.
const SHARED_POLL: Duration = Duration::from_millis(50);

async fn dispatch(state: Arc<State>, cancel: CancellationToken, tracker: TaskTracker) {
    let mut next_prune = tokio::time::Instant::now();
    let mut next_expiry = tokio::time::Instant::now();
    let poll = if state.store.is_shared() {
        SHARED_POLL
    } else {
        Duration::from_secs(1)
    };
    // Claims on a shared store are leases: those of sends still running are renewed at a
    // third of their length, so no other node takes them while they run.
    let renew_every = state.store.lease().map(|lease| lease / 3);
    let mut next_renewal = tokio::time::Instant::now();
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if let Some(every) = renew_every {
            if tokio::time::Instant::now() >= next_renewal {
                let ids = state.claimed.lock().expect("claimed rows").ids();
                if !ids.is_empty() {
                    if let Err(e) = state.store.extend_leases(&ids, now_ms()).await {
                        tracing::warn!(error = %e, deliveries = ids.len(), "could not renew the leases of deliveries being sent");
                    }
                }
                next_renewal = tokio::time::Instant::now() + every;
            }
        }
        if tokio::time::Instant::now() >= next_expiry {
            let before = now_ms() - state.settings.wait_limit.as_millis() as i64;
            match state.store.expire_waiting(before).await {
                Ok(n) if n > 0 => {
                    tracing::warn!(
                        deliveries = n,
                        "deliveries expired waiting for their callback to be switched on"
                    );
                    state.wake.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "expiring waiting deliveries failed"),
            }
            next_expiry = tokio::time::Instant::now() + expire_every(&state.settings);
        }
        if tokio::time::Instant::now() >= next_prune {
            let before = now_ms() - state.settings.attempt_retention.as_millis() as i64;
            match state.store.prune_attempts(before).await {
                Ok(n) if n > 0 => tracing::info!(attempts = n, "old delivery attempts pruned"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "pruning attempts failed"),
            }
            next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
        }
        state.start_waiting(&tracker);
        let free = state.in_flight.available_permits().min(CLAIM_BATCH);
        let mut full = false;
        // With no place free, only a recorded outcome (which wakes this loop) frees one.
        let mut next_due_ms = None;
        if free > 0 {
            let now = now_ms();
            match state
                .store
                .claim_due(now, free as i64, state.free_slots(), state.claimed_now())
                .await
            {
                Ok(claim) => {
                    next_due_ms = claim.next_due_ms;
                    let mut claimed = claim.deliveries;
                    with_call_directions(&state, &mut claimed).await;
                    {
                        let mut in_flight = state.claimed.lock().expect("claimed rows");
                        for d in &claimed {
                            in_flight.insert(d.outbox_id, d.callback_id);
                        }
                    }
                    full = claimed.len() == free;
                    let mut handed_back = Vec::new();
                    for delivery in claimed {
                        handed_back.extend(start_send(&state, delivery, &tracker));
                    }
                    // Recorded before the next claim, so those rows are not claimed again while
                    // their callback is still at its limit.
                    if !handed_back.is_empty() {
                        state.record(handed_back).await;
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
        let wait = match next_due_ms {
            Some(at) => Duration::from_millis((at - now_ms()).clamp(0, 1000) as u64).min(poll),
            None => poll,
        };
        // Wake on whichever comes first: new rows, a finished send, the next due time, or
        // shutdown (which ends the loop; sends already started finish on their own).
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    // What waits for a sender is not sent: it is due again at the next start.
    state.waiting.lock().expect("waiting deliveries").clear();
    tracing::debug!("delivery dispatcher stopped");
}

/// A translation of an event that states no direction into a dialect that always states one
/// takes the direction the hub concluded for its call (read on a reader, for only those).
async fn with_call_directions(state: &State, claimed: &mut [ClaimedDelivery]) {
    let needs = |d: &ClaimedDelivery| {
        d.dialect.is_some_and(|to| {
            to != d.event.source.dialect && matches!(to, Dialect::Phonecom | Dialect::Tel4vn)
        }) && matches!(&d.event.fact.details, Details::Leg(l) if l.direction.is_none())
    };
    let mut ids: Vec<String> = claimed
        .iter()
        .filter(|d| needs(d))
        .filter_map(|d| d.call_id.clone())
        .collect();
    if ids.is_empty() {
        return;
    }
    ids.sort();
    ids.dedup();
    match state.store.call_directions(ids).await {
        Ok(directions) => {
            for d in claimed.iter_mut().filter(|d| needs(d)) {
                d.call_direction = d.call_id.as_ref().and_then(|c| directions.get(c)).copied();
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the calls' directions"),
    }
}

fn outcome(d: &ClaimedDelivery, next: Next, error: Option<String>) -> AttemptOutcome {
    AttemptOutcome {
        outbox_id: d.outbox_id,
        callback_id: d.callback.as_ref().map_or(0, |c| c.id),
        gone: false,
        at_ms: now_ms(),
        status_code: None,
        latency_ms: 0,
        error,
        response_prefix: None,
        next,
    }
}

/// A request open to a callback: its callback's sender and the hub's.
type Senders = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// Sends a claimed delivery now if its callback has a sender free, or queues it for the
/// callback's next free sender. Returns the outcome of a delivery that cannot be held (the
/// hub has no place in flight left): handed back untouched.
fn start_send(
    state: &Arc<State>,
    delivery: ClaimedDelivery,
    tracker: &TaskTracker,
) -> Option<AttemptOutcome> {
    let Ok(place) = state.in_flight.clone().try_acquire_owned() else {
        return Some(outcome(&delivery, Next::HoldUntil(now_ms()), None));
    };
    let callback_id = delivery.callback_id;
    match state.senders_for(callback_id) {
        Some(senders) => spawn_sender(state, delivery, place, senders, tracker),
        None => state
            .waiting
            .lock()
            .expect("waiting deliveries")
            .entry(callback_id)
            .or_default()
            .push_back((delivery, place)),
    }
    None
}

/// Sends `delivery`, then whatever waits for the same callback, on the same senders.
fn spawn_sender(
    state: &Arc<State>,
    delivery: ClaimedDelivery,
    place: OwnedSemaphorePermit,
    senders: Senders,
    tracker: &TaskTracker,
) {
    let state = state.clone();
    tracker.spawn(async move {
        let callback_id = delivery.callback_id;
        let mut next = Some((delivery, place));
        while let Some((delivery, place)) = next {
            let result = deliver(&state, delivery).await;
            // The place in flight goes with the outcome until it is recorded.
            let _ = state.outcomes.send((result, place));
            next = state.next_waiting(callback_id);
        }
        // The senders are free again.
        drop(senders);
        state.wake.notify_one();
    });
}

fn is_on(callback: &switchboard_store::Resource) -> bool {
    callback.body.get("enabled").and_then(Value::as_bool) != Some(false)
}

/// One attempt, as a span exported as a trace when OTLP is on (nothing listens otherwise).
async fn deliver(state: &State, d: ClaimedDelivery) -> AttemptOutcome {
    let span = tracing::info_span!(
        target: crate::TRACE_TARGET,
        "delivery.attempt",
        event_id = %d.event.id,
        delivery_id = d.outbox_id,
        listener_id = d.listener_id,
        callback_id = d.callback.as_ref().map_or(0, |c| c.id),
        // As signed integers: OTLP has no unsigned ones (an unsigned value goes as text).
        attempt = i64::from(d.attempts) + 1,
        "http.response.status_code" = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let outcome = attempt(state, d).instrument(span.clone()).await;
    if !span.is_disabled() {
        if let Some(status) = outcome.status_code {
            span.record("http.response.status_code", i64::from(status));
        }
        span.record("outcome", outcome.next.name());
    }
    outcome
}

async fn attempt(state: &State, d: ClaimedDelivery) -> AttemptOutcome {
    let (Some(dialect), Some(callback)) = (d.dialect, d.callback.as_ref()) else {
        return outcome(
            &d,
            Next::Dead,
            Some("the listener or its callback was deleted".into()),
        );
    };
    if !is_on(callback) {
        return match d.fallback.as_ref().filter(|f| is_on(f)) {
            Some(fallback) => outcome(&d, Next::Reroute(fallback.id), None),
            // It waits, its retries unspent, until the callback is switched on again.
            None => outcome(&d, Next::Wait, None),
        };
    }
    let body = &callback.body;
    let recipient = Recipient {
        listener_id: d.listener_id,
        account: d.event.account,
        extension_id: d.listener_extension_id,
        only_event: d.only_event.clone(),
        call_direction: d.call_direction,
    };
    let Some(payload) = switchboard_dialects::encode(dialect, &d.event, &recipient) else {
        let why = format!(
            "skipped: the {dialect} dialect has no counterpart for {}",
            d.event.fact.kind.as_str()
        );
        return outcome(&d, Next::Succeeded, Some(why));
    };
    let config = body.get("config").unwrap_or(&Value::Null);
    let result = match body.get("mode").and_then(Value::as_str).unwrap_or("HTTPS") {
        "HTTP" | "HTTPS" => match HttpConfig::from_json(config) {
            Ok(cfg) => send_http(state, &d, body, &cfg, payload).await,
            Err(e) => {
                return outcome(
                    &d,
                    Next::Dead,
                    Some(format!("callback config is unusable: {e}")),
                )
            }
        },
        "EMAIL" => match EmailConfig::from_json(config) {
            Ok(cfg) => send_email(state, body, &cfg, &payload, &d).await,
            Err((path, message)) => {
                return outcome(
                    &d,
                    Next::Dead,
                    Some(format!("callback config is unusable: {path}: {message}")),
                )
            }
        },
        "APPLICATION" => match GoogleAnalytics::from_json(config) {
            Ok(app) => send_application(state, &app, &d).await,
            Err((path, message)) => {
                return outcome(
                    &d,
                    Next::Dead,
                    Some(format!("callback config is unusable: {path}: {message}")),
                )
            }
        },
        other => {
            return outcome(
                &d,
                Next::Dead,
                Some(format!("callback mode {other} cannot deliver")),
            )
        }
    };
    let attempts_made = d.attempts + 1;
    let gone = result.status == Some(410);
    let next = if result.succeeded() {
        Next::Succeeded
    } else if gone {
        Next::Dead
    } else {
        match state.settings.schedule.wait_after(attempts_made) {
            // 429 and 503 may say when to come back: honoured, up to twice the step.
            Some(wait) => {
                let wait = match (result.status, result.retry_after) {
                    (Some(429 | 503), Some(asked)) => asked.min(wait * 2),
                    _ => wait,
                };
                Next::RetryAt(now_ms() + wait.as_millis() as i64)
            }
            None => Next::Dead,
        }
    };
    if result.succeeded() {
        // From the hub's acceptance of the event to its delivery (retries included).
        let since = jiff::Timestamp::now().duration_since(d.event.received_at);
        metrics::histogram!("switchboard_delivery_latency_seconds")
            .record(since.as_secs_f64().max(0.0));
    } else {
        tracing::info!(outbox_id = d.outbox_id, callback_id = callback.id, attempt = attempts_made, error = ?result.error, "delivery attempt failed");
    }
    AttemptOutcome {
        gone,
        status_code: result.status,
        latency_ms: result.latency.as_millis() as i64,
        response_prefix: result.body_prefix,
        ..outcome(&d, next, result.error)
    }
}

async fn send_http(
    state: &State,
    d: &ClaimedDelivery,
    callback: &Value,
    cfg: &HttpConfig,
    payload: Vec<u8>,
) -> SendResult {
    let msg_id = d.event.id.to_string();
    let timestamp = jiff::Timestamp::now().as_second();
    let mut headers = vec![
        ("webhook-id".to_string(), msg_id.clone()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
    ];
    let signatures: Vec<String> = signing::active_secrets(callback, now_ms())
        .into_iter()
        .filter_map(|secret| signing::sign(secret, &msg_id, timestamp, &payload))
        .collect();
    if !signatures.is_empty() {
        headers.push(("webhook-signature".to_string(), signatures.join(" ")));
    }
    http::send(
        &state.client,
        &state.guard,
        cfg,
        payload,
        &headers,
        state.settings.default_timeout,
    )
    .await
}

/// A `google-analytics` application's hit, POSTed form-encoded to the collect endpoint.
async fn send_application(state: &State, app: &GoogleAnalytics, d: &ClaimedDelivery) -> SendResult {
    let cfg = match reqwest::Url::parse(&state.settings.google_analytics_url) {
        Ok(url) => HttpConfig {
            url,
            method: reqwest::Method::POST,
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            timeout: None,
            rate_limit: None,
        },
        Err(e) => {
            return SendResult {
                status: None,
                error: Some(format!("google_analytics_url is not a URL: {e}")),
                latency: Duration::ZERO,
                body_prefix: None,
                retry_after: None,
            }
        }
    };
    http::send(
        &state.client,
        &state.guard,
        &cfg,
        app.hit(&d.event),
        &[],
        state.settings.default_timeout,
    )
    .await
}

async fn send_email(
    state: &State,
    callback: &Value,
    cfg: &EmailConfig,
    payload: &[u8],
    d: &ClaimedDelivery,
) -> SendResult {
    let started = std::time::Instant::now();
    let done = |error: Option<String>| SendResult {
        status: if error.is_none() { Some(250) } else { None },
        error,
        latency: started.elapsed(),
        body_prefix: None,
        retry_after: None,
    };
    let Some(smtp) = &state.settings.smtp else {
        return done(Some("no SMTP server is configured (smtp_host)".into()));
    };
    let mut event: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let token = callback
        .get("unsubscribe_token")
        .and_then(Value::as_str)
        .unwrap_or("");
    let link = format!(
        "{}/unsubscribe/{token}",
        smtp.public_url.trim_end_matches('/')
    );
    let body = if cfg.text {
        format!("{}\n\nUnsubscribe: {link}\n", email::text_form(&event))
    } else {
        if let Some(obj) = event.as_object_mut() {
            obj.insert("unsubscribe_link".into(), json!(link));
        }
        serde_json::to_string_pretty(&event).unwrap_or_default()
    };
    let subject = format!(
        "Switchboard event: {} ({})",
        d.event.fact.kind.as_str(),
        d.event.tags.join(", ")
    );
    done(
        email::send_mail(
            smtp,
            &cfg.email,
            &subject,
            &body,
            state.settings.default_timeout,
        )
        .await
        .err(),
    )
}
