//! Events for a callback that is switched off wait for it (docs/delivery.md, 6): they are
//! kept, listed as waiting, sent in order when it is switched on again, go to its fallback
//! while that is on, are replayed like any other, and expire after the wait limit.

use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn leg(uuid: &str, call: &str, state: &str, at: i64) -> Value {
    let completion = (state == "completed").then_some("success");
    leg_event(
        uuid,
        call,
        call,
        state,
        completion,
        did("+15550000061"),
        did("+15550000002"),
        1_700_000_000 + at,
    )
}

/// A call's four events.
fn call(id: &str) -> Vec<Value> {
    ["new", "connecting", "connected", "completed"]
        .iter()
        .enumerate()
        .map(|(i, state)| leg(&format!("{id}-{i}"), id, state, i as i64))
        .collect()
}

async fn subscribe(hub: &Hub, acct: &Account, callback: Value) -> (Value, i64) {
    let (status, item) = hub
        .call(
            "POST",
            &events_api(acct, "/overview"),
            Some(&acct.token),
            Some(json!({":callback": callback, ":subscriptions": [{":tags": ["call"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{item}");
    (item[":callback"].clone(), item["id"].as_i64().unwrap())
}

async fn switch(hub: &Hub, acct: &Account, callback: &Value, on: bool) {
    let (status, body) = hub
        .call(
            "PATCH",
            &events_api(acct, &format!("/callbacks/{}", callback["id"])),
            Some(&acct.token),
            Some(json!({"enabled": on})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The callback's deliveries page: (waiting count, each delivery's status, oldest first).
async fn deliveries(hub: &Hub, acct: &Account, callback: &Value) -> (i64, Vec<String>) {
    let path = events_api(
        acct,
        &format!("/callbacks/{}/deliveries?limit=500", callback["id"]),
    );
    let (status, body) = hub.call("GET", &path, Some(&acct.token), None).await;
    assert_eq!(status, 200, "{body}");
    let mut statuses: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap().to_string())
        .collect();
    statuses.reverse();
    (body["waiting"].as_i64().unwrap(), statuses)
}

/// The call's leg states in the order a receiver got them.
fn states(rx: &Receiver) -> Vec<String> {
    rx.events()
        .iter()
        .map(|r| {
            r.body["data"]["event_leg"]["state"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

const IN_ORDER: [&str; 4] = ["new", "connecting", "connected", "completed"];

#[tokio::test]
async fn events_for_a_switched_off_callback_wait_and_arrive_in_order_when_it_is_on() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, _) = subscribe(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    switch(&hub, &acct, &cb, false).await;
    hub.ingest(&acct.token, &call("w1")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(rx.events().is_empty(), "nothing is sent while it is off");
    let (waiting, statuses) = deliveries(&hub, &acct, &cb).await;
    assert_eq!(waiting, 4);
    assert_eq!(statuses, ["waiting"; 4]);
    switch(&hub, &acct, &cb, true).await;
    rx.wait_events(4, 10).await;
    assert_eq!(states(&rx), IN_ORDER);
    // (The last outcome is recorded just after the receiver answered.)
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (waiting, statuses) = deliveries(&hub, &acct, &cb).await;
        if statuses == ["succeeded"; 4] {
            assert_eq!(waiting, 0);
            break;
        }
        assert!(Instant::now() < deadline, "{statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_callback_the_hub_switched_off_after_410_keeps_what_comes_until_it_is_on() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, _) = subscribe(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    rx.answer(410);
    hub.ingest(&acct.token, &[leg("g-0", "other", "new", 0)])
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = hub
            .call(
                "GET",
                &events_api(&acct, &format!("/callbacks/{}", cb["id"])),
                Some(&acct.token),
                None,
            )
            .await;
        if body["enabled"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "the 410 switched nothing off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The receiver is back, but its callback is off: a whole call waits.
    rx.answer(200);
    hub.ingest(&acct.token, &call("w2")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.events().len(), 1, "only the event answered 410");
    assert_eq!(deliveries(&hub, &acct, &cb).await.0, 4);
    switch(&hub, &acct, &cb, true).await;
    rx.wait_events(5, 10).await;
    assert_eq!(&states(&rx)[1..], IN_ORDER);
}

#[tokio::test]
async fn the_fallback_takes_them_while_it_is_on_and_they_wait_when_it_is_off_too() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let (primary, backup) = (Receiver::start().await, Receiver::start().await);
    let (status, fb) = callback(&hub, &acct, json!({"config": {"url": backup.url}})).await;
    assert_eq!(status, 200, "{fb}");
    let (cb, _) = subscribe(
        &hub,
        &acct,
        json!({"config": {"url": primary.url}, "fallback_callback_id": fb["id"]}),
    )
    .await;
    switch(&hub, &acct, &cb, false).await;
    hub.ingest(&acct.token, &call("f1")).await;
    backup.wait_events(4, 10).await;
    assert_eq!(states(&backup), IN_ORDER);
    // Both off: the next call waits, for the primary.
    switch(&hub, &acct, &fb, false).await;
    hub.ingest(&acct.token, &call("f2")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(backup.events().len(), 4);
    assert!(primary.events().is_empty());
    assert_eq!(deliveries(&hub, &acct, &cb).await.0, 4);
    // The fallback back on takes them.
    switch(&hub, &acct, &fb, true).await;
    backup.wait_events(8, 10).await;
    assert_eq!(&states(&backup)[4..], IN_ORDER);
    assert!(primary.events().is_empty());
}

#[tokio::test]
async fn a_replay_over_the_time_it_was_off_resends_everything() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, listener) = subscribe(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    let from = jiff::Timestamp::now().as_second() - 1;
    hub.ingest(&acct.token, &call("r1")).await;
    rx.wait_events(4, 10).await;
    switch(&hub, &acct, &cb, false).await;
    hub.ingest(&acct.token, &call("r2")).await;
    switch(&hub, &acct, &cb, true).await;
    rx.wait_events(8, 10).await;
    let to = jiff::Timestamp::now().as_second() + 1;
    let (status, out) = hub
        .call(
            "POST",
            &events_api(&acct, &format!("/listeners/{listener}/replay")),
            Some(&acct.token),
            Some(json!({"from": from, "to": to})),
        )
        .await;
    assert_eq!((status, out["replayed"].as_i64()), (200, Some(8)), "{out}");
    rx.wait_events(16, 10).await;
    let calls: Vec<String> = rx.events()[8..]
        .iter()
        .map(|r| r.body["data"]["uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(calls.iter().filter(|c| *c == "r1").count(), 4);
    assert_eq!(calls.iter().filter(|c| *c == "r2").count(), 4);
}

#[tokio::test]
async fn what_waited_longer_than_the_limit_expires_and_is_never_sent() {
    let hub = Hub::start_with(&[("SWITCHBOARD_DELIVERY_WAIT_LIMIT", "1s")]).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, _) = subscribe(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    switch(&hub, &acct, &cb, false).await;
    hub.ingest(&acct.token, &call("x1")).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (waiting, statuses) = deliveries(&hub, &acct, &cb).await;
        if statuses == ["expired"; 4] {
            assert_eq!(waiting, 0);
            break;
        }
        assert!(Instant::now() < deadline, "never expired: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Switched on again: what expired stays unsent; what comes now is sent.
    switch(&hub, &acct, &cb, true).await;
    hub.ingest(&acct.token, &call("x2")).await;
    rx.settle(4).await;
    assert!(rx.events().iter().all(|r| r.body["data"]["uuid"] == "x2"));
}
