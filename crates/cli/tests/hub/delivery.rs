//! Delivery: retries, dead deliveries, restarts with deliveries pending, methods.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

fn event(uuid: &str, call: &str, state: &str, ts: i64) -> Value {
    leg_event(
        uuid,
        call,
        call,
        state,
        None,
        did("+15550000001"),
        did("+15550000002"),
        ts,
    )
}

async fn deliveries(hub: &Hub, acct: &Account, callback: i64) -> Value {
    let (status, body) = hub
        .call(
            "GET",
            &events_api(acct, &format!("/callbacks/{callback}/deliveries")),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn callback_of(hub: &Hub, acct: &Account, listener: i64) -> i64 {
    let (_, l) = hub
        .call(
            "GET",
            &events_api(acct, &format!("/listeners/{listener}")),
            Some(&acct.token),
            None,
        )
        .await;
    l["callback_id"].as_i64().unwrap()
}

/// The leg states a receiver saw, in order.
fn leg_states(rx: &Receiver) -> Vec<String> {
    rx.events()
        .iter()
        .map(|r| {
            r.body["data"]["event_leg"]["state"]
                .as_str()
                .expect("a leg state")
                .to_string()
        })
        .collect()
}

/// The leg states a receiver saw, in order, with repeats (retries) folded into one.
fn states_seen(rx: &Receiver) -> Vec<String> {
    let mut seen = leg_states(rx);
    seen.dedup();
    seen
}

/// Waits until the last leg state a receiver saw is `state` (or panics after `secs`, saying
/// what it saw); returns the states seen.
async fn wait_for_last_state(rx: &Receiver, state: &str, secs: u64) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = leg_states(rx);
        if seen.last().map(String::as_str) == Some(state) {
            return seen;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_attempt_is_retried_and_the_attempts_are_visible() {
    let hub = Hub::start_with(&[("SWITCHBOARD_RETRY_SCHEDULE", "0s,1s,1s")]).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let listener = listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    rx.answer(503);
    hub.ingest(&acct.token, &[event("r1", "c1", "new", 1_700_000_000)])
        .await;
    rx.wait_events(1, 10).await;
    rx.answer(200);
    let got = rx.wait_events(2, 10).await;
    // The same event id on every attempt.
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    assert_eq!(got[0].body, got[1].body);
    let cb = callback_of(&hub, &acct, listener).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = deliveries(&hub, &acct, cb).await;
    let item = &d["items"][0];
    assert_eq!(item["status"], "succeeded", "{d}");
    assert_eq!(item["attempts"], 2);
    assert_eq!(item["attempt_log"][0]["status_code"], 503);
    assert_eq!(item["attempt_log"][1]["status_code"], 200);
}

#[tokio::test]
async fn a_delivery_that_never_succeeds_ends_dead_and_visible() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let listener = listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    rx.answer(500);
    hub.ingest(&acct.token, &[event("d1", "c1", "new", 1_700_000_000)])
        .await;
    // The test schedule allows three attempts.
    rx.wait_events(3, 10).await;
    let cb = callback_of(&hub, &acct, listener).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = deliveries(&hub, &acct, cb).await;
        if d["items"][0]["status"] == "dead" {
            assert_eq!(d["items"][0]["attempts"], 3);
            assert!(d["items"][0]["last_error"]
                .as_str()
                .unwrap()
                .contains("500"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never dead: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rx.events().len(),
        3,
        "no attempt after the schedule ran out"
    );
}

#[tokio::test]
async fn deliveries_pending_at_a_crash_are_made_after_restart() {
    // A long second step keeps the failed deliveries waiting while the hub is killed.
    let mut hub = Hub::start_with(&[("SWITCHBOARD_RETRY_SCHEDULE", "0s,1s,1s")]).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    rx.answer(503);
    let events: Vec<Value> = (0..5)
        .map(|i| event(&format!("p{i}"), &format!("call-{i}"), "new", 1_700_000_000))
        .collect();
    hub.ingest(&acct.token, &events).await;
    rx.wait_events(5, 10).await;
    hub.kill();
    rx.answer(200);
    hub.restart().await;
    let got = rx.wait_events(10, 20).await;
    let mut delivered: Vec<String> = got[5..]
        .iter()
        .map(|r| r.body["data"]["uuid"].as_str().unwrap().to_string())
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        (0..5).map(|i| format!("call-{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_callback_has_at_most_its_share_of_requests_open_and_gets_every_delivery() {
    let hub = Hub::start_with(&[("SWITCHBOARD_DELIVERY_PER_CALLBACK", "3")]).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    rx.behave(Behaviour {
        delay: Duration::from_millis(300),
        ..Behaviour::default()
    });
    // Twelve calls: nothing orders them, so only the callback's limit holds them back.
    let events: Vec<Value> = (0..12)
        .map(|i| {
            event(
                &format!("share{i}"),
                &format!("call-{i}"),
                "new",
                1_700_000_000,
            )
        })
        .collect();
    hub.ingest(&acct.token, &events).await;
    let got = rx.wait_events(12, 20).await;
    let calls = distinct_uuids(&got);
    assert_eq!(
        calls.len(),
        12,
        "every call's event arrived once: {calls:?}"
    );
    assert_eq!(rx.most_open(), 3, "requests open at once");
}

#[tokio::test]
async fn events_of_one_call_reach_a_listener_in_order() {
    let hub = Hub::start_with(&[("SWITCHBOARD_RETRY_SCHEDULE", "0s,1s,1s,1s")]).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    rx.answer(503);
    let states = ["new", "connecting", "connected", "completed"];
    let events: Vec<Value> = states
        .iter()
        .enumerate()
        .map(|(i, s)| event(&format!("o{i}"), "ordered", s, 1_700_000_000 + i as i64))
        .collect();
    hub.ingest(&acct.token, &events).await;
    // While the first fails, nothing behind it is sent.
    rx.wait_events(1, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx
        .events()
        .iter()
        .all(|r| r.body["data"]["event_leg"]["state"] == "new"));
    rx.answer(200);
    let seen = wait_for_last_state(&rx, "completed", 10).await;
    let after_first: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s == "new")
        .collect();
    assert_eq!(
        after_first,
        ["connecting", "connected", "completed"],
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_fallback_delivery_keeps_its_calls_queue_in_order() {
    // Every delivery dies on the primary (two attempts) and goes to the fallback, which takes
    // its place at the head of the call's queue. An event that arrives while the fallback
    // delivery is still trying queues behind the ones already waiting, and nothing is left
    // behind.
    let hub = Hub::start_with(&[("SWITCHBOARD_RETRY_SCHEDULE", "0s,1s")]).await;
    let acct = hub.account().await;
    let (primary_rx, fallback_rx) = (Receiver::start().await, Receiver::start().await);
    let (status, fallback) =
        callback(&hub, &acct, json!({"config": {"url": fallback_rx.url}})).await;
    assert_eq!(status, 200, "{fallback}");
    listen_with(
        &hub,
        &acct,
        json!({"config": {"url": primary_rx.url}, "fallback_callback_id": fallback["id"]}),
        &[&["call"]],
    )
    .await;
    // Both answered the hub's test request when they were made; now they fail.
    primary_rx.answer(503);
    fallback_rx.answer(503);
    let states = ["new", "connecting", "connected", "completed"];
    let events: Vec<Value> = states
        .iter()
        .enumerate()
        .map(|(i, s)| event(&format!("f{i}"), "fell-back", s, 1_700_000_000 + i as i64))
        .collect();
    hub.ingest(&acct.token, &events[..3]).await;
    // The first event reached the fallback, which fails it for now: the next two wait.
    fallback_rx.wait_events(1, 10).await;
    hub.ingest(&acct.token, &events[3..]).await;
    fallback_rx.answer(200);
    wait_for_last_state(&fallback_rx, "completed", 20).await;
    assert_eq!(states_seen(&fallback_rx), states);
    assert_eq!(states_seen(&primary_rx), states);
}

#[tokio::test]
async fn a_get_callback_receives_the_event_as_a_query_parameter() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (status, item) = hub
        .call(
            "POST",
            &events_api(&acct, "/overview"),
            Some(&acct.token),
            Some(json!({":callback": {"config": {"url": rx.url, "method": "GET"}}, ":subscriptions": [{":tags": ["call"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item[":callback"]["config"]["method"], "GET");
    hub.ingest(&acct.token, &[event("g1", "c", "new", 1_700_000_000)])
        .await;
    let got = rx.wait_events(1, 10).await;
    assert_eq!(got[0].method, "GET");
    let query = got[0].query.clone().unwrap();
    let encoded = query.strip_prefix("event=").unwrap();
    let decoded: String = url_decode(encoded);
    let payload: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(payload["data"]["uuid"], "c");
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
