//! Three nodes on one PostgreSQL database (whatever store the rest of the suite runs on):
//! one call's events spread over them, a node killed under load, a change made through one
//! node seen by the others.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A fixed shuffle of `0..n` (a small LCG, seeded): tests repeat exactly.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    order
}

async fn three_nodes(env: &[(&str, &str)]) -> [Hub; 3] {
    let a = Hub::start_postgres(env).await;
    let b = a.another_node().await;
    let c = a.another_node().await;
    [a, b, c]
}

/// Posts one event to a node; returns the hub's id of it.
async fn send(http: &reqwest::Client, base: &str, token: &str, event: &Value) -> String {
    let resp = http
        .post(format!("{base}/ingest/phonecom"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    body["events"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn one_calls_events_spread_over_three_nodes_make_one_call_one_log_and_ordered_deliveries() {
    let nodes = three_nodes(&[]).await;
    let acct = nodes[0].account().await;
    let (rx, logs) = (Receiver::start().await, Receiver::start().await);
    // Each delivery takes the receiver 30 ms: a call's next delivery may only start after.
    let delay = Duration::from_millis(30);
    rx.behave(Behaviour {
        delay,
        ..Behaviour::default()
    });
    listen(&nodes[1], &acct, &rx.url, &[&["call"]]).await;
    listen(&nodes[2], &acct, &logs.url, &[&["call-log"]]).await;

    // Three calls, each in its own shuffled order, every event its own request, dealt to the
    // nodes in turn and all sent at once.
    let calls = ["spread-a", "spread-b", "spread-c"];
    let mut sends = Vec::new();
    let mut turn = 0;
    for (c, call) in calls.iter().enumerate() {
        let events = inbound_call(call, &format!("+1555000010{c}"), "+15550000002");
        for i in shuffled(events.len(), c as u64 + 7) {
            let node = &nodes[turn % 3];
            turn += 1;
            let (http, base, token, event) = (
                node.http.clone(),
                node.base.clone(),
                acct.token.clone(),
                events[i].clone(),
            );
            sends.push(tokio::spawn(async move {
                send(&http, &base, &token, &event).await
            }));
        }
    }
    let mut accepted = HashSet::new();
    for s in sends {
        accepted.insert(s.await.unwrap());
    }

    // One call each, one call log each.
    let got_logs = logs.wait_events(3, 30).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(logs.events().len(), 3, "one call log a call: {got_logs:#?}");
    let logged: HashSet<String> = logs
        .events()
        .iter()
        .map(|r| r.body["data"]["uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(logged.len(), 3);
    let listed = get(&nodes[1], &acct, "/calls").await;
    assert_eq!(listed["total"], 3, "{listed}");

    // Every event delivered once; each call's deliveries one at a time, in the log's order.
    let got = rx.wait_events(accepted.len(), 30).await;
    let ids: Vec<String> = got
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "sent twice"
    );
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), accepted);
    let log = get(&nodes[2], &acct, "/events?limit=500").await;
    let log_order: Vec<String> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let mut by_call: HashMap<String, Vec<&Received>> = HashMap::new();
    for r in &got {
        let call = r.body["data"]["uuid"].as_str().unwrap().to_string();
        by_call.entry(call).or_default().push(r);
    }
    assert_eq!(by_call.len(), 3);
    for (call, received) in by_call {
        let order: Vec<&String> = received.iter().map(|r| &r.headers["webhook-id"]).collect();
        let expected: Vec<&String> = log_order.iter().filter(|id| order.contains(id)).collect();
        assert_eq!(order, expected, "{call}: delivered out of the log's order");
        for pair in received.windows(2) {
            assert!(
                pair[1].at.duration_since(pair[0].at) >= delay,
                "{call}: a delivery began before the one ahead of it ended"
            );
        }
    }
}

#[tokio::test]
async fn a_node_killed_under_load_loses_nothing_and_the_others_take_its_deliveries() {
    // Short leases, so the survivors take the dead node's claims within seconds.
    let mut nodes = three_nodes(&[("SWITCHBOARD_DELIVERY_LEASE", "2s")]).await;
    let acct = nodes[0].account().await;
    let rx = Receiver::start().await;
    // A slow receiver: every node holds claims in flight when one is killed.
    rx.behave(Behaviour {
        delay: Duration::from_millis(50),
        ..Behaviour::default()
    });
    let logs = Receiver::start().await;
    listen(&nodes[0], &acct, &rx.url, &[&["call"]]).await;
    listen(&nodes[0], &acct, &logs.url, &[&["call-log"]]).await;

    // Three senders, one a node, post whole short calls for as long as their node answers.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let (http, base, token, stop) = (
            node.http.clone(),
            node.base.clone(),
            acct.token.clone(),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut accepted: Vec<(String, String)> = Vec::new();
            for c in 0..10_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let call = format!("load-{n}-{c}");
                let events = inbound_call(&call, "+15550000201", "+15550000002");
                let resp = http
                    .post(format!("{base}/ingest/phonecom"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(Value::Array(events).to_string())
                    .send()
                    .await;
                let Ok(resp) = resp else { break };
                if resp.status() != 202 {
                    break;
                }
                let Ok(text) = resp.text().await else { break };
                let Ok(body) = serde_json::from_str::<Value>(&text) else {
                    break;
                };
                for id in body["events"].as_array().unwrap() {
                    accepted.push((call.clone(), id.as_str().unwrap().to_string()));
                }
            }
            accepted
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nodes[1].kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut accepted: HashSet<String> = HashSet::new();
    let mut calls: HashSet<String> = HashSet::new();
    for s in senders {
        for (call, id) in s.await.unwrap() {
            calls.insert(call);
            accepted.insert(id);
        }
    }
    assert!(accepted.len() > 50, "the load ran: {}", accepted.len());

    // Everything acknowledged, by any node, is delivered (at least once).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let delivered: HashSet<String> = rx
            .events()
            .iter()
            .filter_map(|r| r.headers.get("webhook-id").cloned())
            .collect();
        let missing = accepted.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged events never delivered",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Among them, what the dead node had claimed and not finished: the survivors took its
    // leases when they ran out (with leases of an hour, ~160 of ~2 000 stay undelivered).
    // No call got two call logs.
    let wanted = calls.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = logs.events();
        let mut per_call: HashMap<String, HashSet<String>> = HashMap::new();
        for r in &got {
            per_call
                .entry(r.body["data"]["uuid"].as_str().unwrap().to_string())
                .or_default()
                .insert(r.headers["webhook-id"].clone());
        }
        if let Some((call, logs)) = per_call.iter().find(|(_, l)| l.len() > 1) {
            panic!("{call} got {} call logs", logs.len());
        }
        if per_call.len() >= wanted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {wanted} calls logged",
            per_call.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_change_made_through_one_node_is_seen_by_the_others_at_once() {
    let nodes = three_nodes(&[]).await;
    let acct = nodes[0].account().await;
    let rx = Receiver::start().await;
    // A listener made through node A hears an event sent through node B.
    let listener = listen(&nodes[0], &acct, &rx.url, &[&["call"]]).await;
    nodes[1]
        .ingest(
            &acct.token,
            &[leg_event(
                "n1",
                "n1",
                "n1",
                "new",
                None,
                did("+15550000301"),
                did("+15550000002"),
                1_700_000_000,
            )],
        )
        .await;
    rx.wait_events(1, 10).await;
    // Deleted through node C: the next event through node B goes nowhere.
    let (status, body) = nodes[2]
        .call(
            "DELETE",
            &events_api(&acct, &format!("/listeners/{listener}")),
            Some(&acct.token),
            None,
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    nodes[1]
        .ingest(
            &acct.token,
            &[leg_event(
                "n2",
                "n2",
                "n2",
                "new",
                None,
                did("+15550000302"),
                did("+15550000002"),
                1_700_000_001,
            )],
        )
        .await;
    rx.settle(1).await;
    // A token made through one node works on the others.
    let (status, made) = nodes[2]
        .call(
            "POST",
            &format!("/admin/accounts/{}/tokens", acct.id),
            Some(ADMIN),
            Some(json!({"scope": "api"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().unwrap();
    let (status, _) = nodes[0]
        .call("GET", &events_api(&acct, "/listeners"), Some(token), None)
        .await;
    assert_eq!(status, 200);
}
