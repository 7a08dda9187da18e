//! The fault suite: the hub under the faults an operator meets — killed with SIGKILL under
//! load, thousands of idle connections, receivers that reset connections or answer slowly.
//! (A full disk, a receiver that hangs and a tenant flooding one call are in the hub suite:
//! `hardening::a_full_store_…`, `trust::a_hanging_receiver_…`, `hardening::a_call_takes_…`;
//! `scripts/faults` runs them all.)
//!
//! Small by default, so it runs with every `cargo test`; `FAULT_SCALE=full` (as
//! `scripts/faults` sets it) runs the sizes the issue names: 40 kill cycles, 2 000 idle
//! connections.

#[path = "../../../store/tests/support/pg.rs"]
mod pg;
#[path = "../hub/support.rs"]
#[allow(dead_code)]
mod support;

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

fn full() -> bool {
    std::env::var("FAULT_SCALE").is_ok_and(|s| s == "full")
}

/// One call's four events, in order.
fn call_events(call: &str) -> Vec<Value> {
    ["new", "connecting", "connected", "completed"]
        .iter()
        .enumerate()
        .map(|(i, state)| {
            leg_event(
                &format!("{call}-e{i}"),
                call,
                call,
                state,
                (*state == "completed").then_some("success"),
                did("+15550000001"),
                did("+15550000002"),
                1_700_000_000 + i as i64,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_event_and_keeps_each_calls_order() {
    let cycles = if full() { 40 } else { 3 };
    let mut hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    // What the hub acknowledged, per call, in the order it was sent.
    let acked: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let mut next_call = 0usize;
    for cycle in 0..cycles {
        let base = hub.base.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut senders = Vec::new();
        for sender in 0..4 {
            let (acked, stop, base, token) = (
                acked.clone(),
                stop.clone(),
                base.clone(),
                acct.token.clone(),
            );
            let first = next_call + sender * 1000;
            senders.push(tokio::spawn(async move {
                #[allow(clippy::disallowed_methods)]
                let http = reqwest::Client::new();
                let mut n = first;
                // Each call's events one request at a time, each after the last was
                // acknowledged; a call the kill interrupts is left as it is.
                'calls: while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let call = format!("k{n}");
                    n += 1;
                    for event in call_events(&call) {
                        let sent = http
                            .post(format!("{base}/ingest/phonecom"))
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .body(event.to_string())
                            .send()
                            .await;
                        match sent {
                            Ok(r) if r.status() == 202 => {
                                acked
                                    .lock()
                                    .unwrap()
                                    .entry(call.clone())
                                    .or_default()
                                    .push(event["uuid"].as_str().unwrap().to_string());
                            }
                            _ => break 'calls,
                        }
                    }
                }
            }));
        }
        next_call += 4 * 1000;
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 37) % 200)).await;
        hub.kill();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in senders {
            s.await.unwrap();
        }
        hub.restart().await;
    }
    let acked = acked.lock().unwrap().clone();
    let total: usize = acked.values().map(Vec::len).sum();
    assert!(total > 0, "nothing was acknowledged");
    // Everything acknowledged arrives; wait for it.
    let wanted: HashSet<&String> = acked.values().flatten().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = rx.events();
        let seen: HashSet<&str> = got.iter().filter_map(|r| r.body["uuid"].as_str()).collect();
        let missing = wanted.iter().filter(|u| !seen.contains(u.as_str())).count();
        if missing == 0 {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} of {total} acknowledged events never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each call's events arrived in the order they were sent (by first arrival; a resend
    // after a crash may repeat one, which its webhook-id lets the receiver drop).
    let mut first_seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for r in &got {
        let (Some(uuid), Some(call)) = (r.body["uuid"].as_str(), r.body["data"]["uuid"].as_str())
        else {
            continue;
        };
        let count = copies.entry(uuid.to_string()).or_default();
        *count += 1;
        if *count == 1 {
            first_seen
                .entry(call.to_string())
                .or_default()
                .push(uuid.to_string());
        }
    }
    for (call, sent) in &acked {
        let arrived: Vec<&String> = first_seen
            .get(call)
            .map(|v| v.iter().filter(|u| sent.contains(u)).collect())
            .unwrap_or_default();
        let sent: Vec<&String> = sent.iter().collect();
        assert_eq!(arrived, sent, "call {call} arrived out of order");
    }
    let duplicates: usize = copies.values().map(|c| c - 1).sum();
    eprintln!(
        "{cycles} SIGKILL cycles: {total} events acknowledged, all delivered in each call's \
         order; {duplicates} delivered more than once (resent after a crash, same webhook-id)"
    );
}

/// Lets this process open as many files as its hard limit allows.
fn raise_open_files() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[tokio::test]
async fn thousands_of_idle_connections_leave_the_hub_serving_and_are_closed() {
    let wanted: u64 = if full() { 2000 } else { 500 };
    let room = raise_open_files();
    let count = wanted.min(room.saturating_sub(100)) as usize;
    let hub = Hub::start_with(&[("SWITCHBOARD_HEADER_TIMEOUT", "2s")]).await;
    let acct = hub.account().await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::with_capacity(count);
    for _ in 0..count {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Meanwhile the hub takes events and answers at once.
    let started = std::time::Instant::now();
    hub.ingest(&acct.token, &call_events("beside-the-idle"))
        .await;
    let (status, _) = hub.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // And it closes them once they have idled past header_timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut closed = 0;
    for stream in &mut idle {
        if closed_within(stream, Duration::from_millis(50)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, count, "idle connections left open");
    eprintln!("{count} idle connections: the hub served beside them and closed them all");
}

/// A receiver that answers the hub's test request, then resets every connection it takes;
/// returns its URL and how many connections it reset.
async fn resetting_receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let resets = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = resets.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            if first {
                first = false;
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                continue;
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    });
    (url, resets)
}

/// The callback a listener sends to.
async fn callback_of(hub: &Hub, acct: &Account, listener: i64) -> i64 {
    let (status, l) = hub
        .call(
            "GET",
            &events_api(acct, &format!("/listeners/{listener}")),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{l}");
    l["callback_id"].as_i64().unwrap()
}

#[tokio::test]
async fn receivers_that_reset_or_answer_slowly_are_retried_and_delay_no_one_else() {
    let hub = Hub::start_with(&[("SWITCHBOARD_RETRY_SCHEDULE", "0s,300ms,300ms,300ms")]).await;
    let acct = hub.account().await;
    let healthy = Receiver::start().await;
    let slow = Receiver::start().await;
    listen(&hub, &acct, &healthy.url, &[&["call"]]).await;
    // The slow one answers in 2 s, beyond its callback's 1 s timeout.
    let slow_listener = listen_with(
        &hub,
        &acct,
        json!({"config": {"url": slow.url, "timeout": 1}}),
        &[&["call"]],
    )
    .await;
    slow.behave(Behaviour {
        delay: Duration::from_secs(2),
        ..Behaviour::default()
    });
    let (resetting_url, resets) = resetting_receiver().await;
    let resetting_listener = listen(&hub, &acct, &resetting_url, &[&["call"]]).await;
    let sent = std::time::Instant::now();
    hub.ingest(&acct.token, &call_events("faulty-receivers"))
        .await;
    // The healthy listener gets all four within a second, whatever the others do.
    let got = healthy.wait_events(4, 5).await;
    assert_eq!(got.len(), 4);
    let last = got.iter().map(|r| r.at).max().unwrap();
    assert!(
        last.duration_since(sent) < Duration::from_secs(1),
        "{:?}",
        last.duration_since(sent)
    );
    // The others' attempts fail (a reset; a timeout) and are retried, until each event of
    // theirs is dead after the schedule's four attempts; the hub says why, attempt by attempt.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        resets.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "resets: {resets:?}"
    );
    assert!(slow.events().len() >= 2, "the slow receiver is tried again");
    for (listener, why) in [
        (resetting_listener, "reset by peer"),
        (slow_listener, "timed out"),
    ] {
        let cb = callback_of(&hub, &acct, listener).await;
        let (status, log) = hub
            .call(
                "GET",
                &events_api(&acct, &format!("/callbacks/{cb}/deliveries")),
                Some(&acct.token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{log}");
        let errors: Vec<&str> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["attempt_log"].as_array().unwrap())
            .filter_map(|a| a["error"].as_str())
            .collect();
        assert!(
            errors.len() >= 2 && errors.iter().all(|e| e.contains(why)),
            "{why}: {errors:?}"
        );
    }
}
