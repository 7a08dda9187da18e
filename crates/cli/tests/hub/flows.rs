//! Events in, webhooks out: the reference's inbound call, tag logic, filters, expiry, dedupe.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;

fn leg_and_state(v: &Value) -> (String, String) {
    (
        v["data"]["event_leg"]["uuid"].as_str().unwrap().to_string(),
        v["data"]["event_leg"]["state"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[tokio::test]
async fn the_reference_inbound_call_arrives_whole_when_sent_out_of_order() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let listener = listen(&hub, &acct, &rx.url, &[&["call"]]).await;

    let mut events = inbound_call("call-a", "+15550000001", "+15550000002");
    // The reference warns: connecting may come before new, and the first leg's completion
    // before the second's. Send them in a scrambled order, one request each.
    let order = [1, 0, 3, 2, 5, 4, 7, 6, 10, 8, 9];
    let scrambled: Vec<Value> = order.iter().map(|&i| events[i].clone()).collect();
    let mut ids = Vec::new();
    for e in &scrambled {
        let out = hub.ingest(&acct.token, std::slice::from_ref(e)).await;
        assert_eq!(out["accepted"], 1);
        ids.push(out["events"][0].as_str().unwrap().to_string());
    }
    let got = rx.settle(11).await;
    let sent: HashSet<_> = events.iter_mut().map(|e| leg_and_state(e)).collect();
    let received: HashSet<_> = got.iter().map(|r| leg_and_state(&r.body)).collect();
    assert_eq!(sent, received);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.body["listener_id"], listener);
        assert_eq!(r.body["version"], "2.0.0");
        assert_eq!(r.body["context"]["voip_id"], acct.id);
        // The hub's event id is the webhook-id and the payload's `switchboard_event_id`; the
        // payload's `uuid` is the sender's own.
        assert_eq!(
            r.headers["webhook-id"],
            r.body["switchboard_event_id"].as_str().unwrap()
        );
        assert!(ids.contains(&r.body["switchboard_event_id"].as_str().unwrap().to_string()));
        assert!(
            r.body["uuid"].as_str().unwrap().starts_with("call-a-e"),
            "{}",
            r.body
        );
        assert!(r.headers["webhook-signature"].starts_with("v1,"));
        // Tags are derived by the hub, never copied from the sender.
        let tags: Vec<&str> = r.body["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(!tags.contains(&"whatever"));
        assert!(tags.contains(&"call") && tags.contains(&"inbound") && tags.contains(&"from-did"));
        let first = r.body["data"]["event_leg"]["is_first"].as_bool().unwrap();
        assert_eq!(tags.contains(&"first-leg"), first);
        assert_eq!(tags.contains(&"to-extension"), !first, "{tags:?}");
        let state = r.body["data"]["event_leg"]["state"].as_str().unwrap();
        let want = format!(
            "{}-call",
            if state == "completed" {
                "completed"
            } else if state == "new" {
                "new"
            } else {
                state
            }
        );
        assert!(tags.contains(&want.as_str()), "{state}: {tags:?}");
    }
    // Payload data is the sender's, untouched.
    let cancelled = got
        .iter()
        .find(|r| r.body["data"]["event_leg"]["completion_status"] == "cancelled")
        .unwrap();
    assert_eq!(cancelled.body["data"]["event_leg"]["to"]["extension"], 500);
    assert_eq!(
        cancelled.body["data"]["event_leg"]["to"]["domain"],
        "sip.phone.com"
    );
}

#[tokio::test]
async fn subscriptions_and_their_tags_are_anded_listeners_or_them() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let inbound_calls = Receiver::start().await;
    let connected_or_messages = Receiver::start().await;
    let impossible = Receiver::start().await;
    listen(&hub, &acct, &inbound_calls.url, &[&["call", "inbound"]]).await;
    listen(
        &hub,
        &acct,
        &connected_or_messages.url,
        &[&["connected-call"], &["message"]],
    )
    .await;
    listen(&hub, &acct, &impossible.url, &[&["call", "message"]]).await;

    let mut outbound = leg_event(
        "o1",
        "out-1",
        "out-1",
        "connected",
        None,
        did("+15550000009"),
        did("+15550000001"),
        1_700_000_000,
    );
    outbound["data"]["direction"] = json!("outbound");
    let batch = vec![
        leg_event(
            "i1",
            "in-1",
            "in-1",
            "new",
            None,
            did("+15550000001"),
            did("+15550000002"),
            1_700_000_000,
        ),
        leg_event(
            "i2",
            "in-1",
            "in-1",
            "connected",
            None,
            did("+15550000001"),
            did("+15550000002"),
            1_700_000_001,
        ),
        outbound,
        json!({"uuid": "m1", "data_type": "message",
               "data": {"uuid": "msg", "direction": "inbound", "type": "sms", "from": {"type": "did", "id": "+15550000001"},
                        "to": [{"type": "did", "id": "+15550000002"}], "message": "hello"}}),
    ];
    let out = hub.ingest(&acct.token, &batch).await;
    assert_eq!(out["accepted"], 4);

    let got = inbound_calls.settle(2).await;
    assert!(got
        .iter()
        .all(|r| r.body["data"]["direction"] == "inbound" && r.body["data_type"] == "call"));
    let got = connected_or_messages.settle(3).await;
    let kinds: HashSet<String> = got
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.body["data_type"].as_str().unwrap(),
                r.body["data"]["uuid"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        HashSet::from([
            "call:in-1".to_string(),
            "call:out-1".to_string(),
            "message:msg".to_string()
        ])
    );
    let sms = got
        .iter()
        .find(|r| r.body["data_type"] == "message")
        .unwrap();
    let tags: Vec<&str> = sms.body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tags, ["message", "sms-message", "*ms-message", "inbound"]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(impossible.events().is_empty());
}

async fn filtered(hub: &Hub, acct: &Account, filters: &[Value]) -> Receiver {
    let rx = Receiver::start().await;
    let listener = listen(hub, acct, &rx.url, &[&["call"]]).await;
    for f in filters {
        let (status, body) = hub
            .call(
                "POST",
                &events_api(acct, &format!("/listeners/{listener}/filters")),
                Some(&acct.token),
                Some(f.clone()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["listener_id"], listener);
    }
    rx
}

#[tokio::test]
async fn number_filters_eq_in_match_not_and_all_must_pass() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let eq = filtered(
        &hub,
        &acct,
        &[json!({"filter_type": "number", "filter_value": {"eq": "+15551110001"}})],
    )
    .await;
    let within = filtered(&hub, &acct, &[json!({"filter_type": "number", "filter_value": {"in": ["+15551110002", "+15551110003"]}})]).await;
    let pattern = filtered(
        &hub,
        &acct,
        &[json!({"filter_type": "number", "filter_value": {"match": "+1555111%"}})],
    )
    .await;
    let negated = filtered(&hub, &acct, &[json!({"filter_type": "number", "filter_value": {"eq": "+15551110001"}, "not_logic": true})]).await;
    let both = filtered(
        &hub,
        &acct,
        &[
            json!({"filter_type": "number", "filter_value": {"match": "%0003"}}),
            json!({"filter_type": "number", "filter_value": {"match": "+1555111%"}}),
        ],
    )
    .await;
    // Callers 0001, 0002, 0003 and one from elsewhere, each calling the same DID.
    let callers = [
        "+15551110001",
        "+15551110002",
        "+15551110003",
        "+14440000000",
    ];
    let events: Vec<Value> = callers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            leg_event(
                &format!("f{i}"),
                &format!("fc{i}"),
                &format!("fc{i}"),
                "new",
                None,
                did(c),
                did("+15550009999"),
                1_700_000_000,
            )
        })
        .collect();
    hub.ingest(&acct.token, &events).await;
    let callers_of = |got: Vec<Received>| -> HashSet<String> {
        got.iter()
            .map(|r| {
                r.body["data"]["event_leg"]["from"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        callers_of(eq.settle(1).await),
        HashSet::from(["+15551110001".to_string()])
    );
    assert_eq!(
        callers_of(within.settle(2).await),
        HashSet::from(["+15551110002".to_string(), "+15551110003".to_string()])
    );
    assert_eq!(callers_of(pattern.settle(3).await).len(), 3);
    assert!(!callers_of(negated.settle(3).await).contains("+15551110001"));
    assert_eq!(
        callers_of(both.settle(1).await),
        HashSet::from(["+15551110003".to_string()])
    );
}

/// A leg event at a fixed instant, as a caller from `from` would send it.
fn event_at(uuid: &str, from: &str, at: &str) -> Value {
    let mut e = leg_event(
        uuid,
        uuid,
        uuid,
        "new",
        None,
        did(from),
        did("+15550009999"),
        1_700_000_000,
    );
    let at: jiff::Timestamp = at.parse().unwrap();
    e["timestamp"] = json!(at.as_second());
    e["timestamp_ns"] = json!(at.as_nanosecond());
    e
}

#[tokio::test]
async fn schedule_filters_pass_events_by_the_hours_of_a_time_zone() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let t = Some(acct.token.as_str());
    let (status, schedule) = hub
        .call(
            "POST",
            &events_api(&acct, "/schedules"),
            t,
            Some(json!({
                "name": "New York office",
                "timezone": "America/New_York",
                "rules": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}]
            })),
        )
        .await;
    assert_eq!(status, 200, "{schedule}");
    assert_eq!(schedule["timezone"], "America/New_York");
    let id = schedule["id"].as_i64().unwrap();
    let open = filtered(
        &hub,
        &acct,
        &[json!({"filter_type": "schedule", "filter_value": {"id": id}})],
    )
    .await;
    let closed = filtered(
        &hub,
        &acct,
        &[json!({"filter_type": "schedule", "filter_value": {"id": id}, "not_logic": true})],
    )
    .await;
    // Monday 2026-11-30: 10:00 UTC is 05:00 in New York, 18:00 UTC is 13:00; Saturday is shut.
    hub.ingest(
        &acct.token,
        &[
            event_at("early", "+15551110001", "2026-11-30T10:00:00Z"),
            event_at("midday", "+15551110002", "2026-11-30T18:00:00Z"),
            event_at("saturday", "+15551110003", "2026-12-05T18:00:00Z"),
        ],
    )
    .await;
    let calls_of = |got: Vec<Received>| -> HashSet<String> {
        got.iter()
            .map(|r| r.body["data"]["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        calls_of(open.settle(1).await),
        HashSet::from(["midday".to_string()])
    );
    assert_eq!(
        calls_of(closed.settle(2).await),
        HashSet::from(["early".to_string(), "saturday".to_string()])
    );

    // A schedule in use cannot be deleted; a change applies to the next event at once.
    let path = events_api(&acct, &format!("/schedules/{id}"));
    let (status, err) = hub.call("DELETE", &path, t, None).await;
    assert_eq!(status, 409, "{err}");
    let (status, changed) = hub
        .call(
            "PATCH",
            &path,
            t,
            Some(json!({"rules": [{"days": ["mon"], "from": "00:00", "to": "24:00"}]})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "New York office");
    hub.ingest(
        &acct.token,
        &[event_at("dawn", "+15551110004", "2026-11-30T10:00:00Z")],
    )
    .await;
    assert!(calls_of(open.settle(2).await).contains("dawn"));

    // Faults name the field; a filter naming no schedule of the account is refused.
    for (body, field) in [
        (json!({"timezone": "Mars/Olympus", "rules": []}), "timezone"),
        (
            json!({"timezone": "UTC", "rules": [{"days": ["mon"], "from": "9am", "to": "17:00"}]}),
            "rules[0].from",
        ),
        (json!({"timezone": "UTC"}), "rules"),
    ] {
        let (status, err) = hub
            .call(
                "POST",
                &events_api(&acct, "/schedules"),
                t,
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, err["@error"]["@path"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    let other = hub.account().await;
    let (status, foreign) = hub
        .call(
            "POST",
            &events_api(&other, "/schedules"),
            Some(&other.token),
            Some(json!({"timezone": "UTC", "rules": [{"days": ["sun"], "from": "00:00", "to": "24:00"}]})),
        )
        .await;
    assert_eq!(status, 200, "{foreign}");
    let listener = listen(&hub, &acct, &open.url, &[&["call"]]).await;
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, &format!("/listeners/{listener}/filters")),
            t,
            Some(json!({"filter_type": "schedule", "filter_value": {"id": foreign["id"]}})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("filter_value.id")),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_listener_receives_nothing() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let expired = Receiver::start().await;
    let current = Receiver::start().await;
    for (rx, at) in [(&expired, 1_000_000_000_i64), (&current, 4_000_000_000)] {
        let (status, cb) = hub
            .call(
                "POST",
                &events_api(&acct, "/callbacks"),
                Some(&acct.token),
                Some(json!({"config": {"url": rx.url}})),
            )
            .await;
        assert_eq!(status, 200, "{cb}");
        let (status, l) = hub
            .call(
                "POST",
                &events_api(&acct, "/listeners"),
                Some(&acct.token),
                Some(json!({"callback_id": cb["id"], "expires_at": at})),
            )
            .await;
        assert_eq!(status, 200, "{l}");
        assert_eq!(l["expires_at"], at);
        let (status, _) = hub
            .call(
                "POST",
                &events_api(&acct, &format!("/listeners/{}/subscriptions", l["id"])),
                Some(&acct.token),
                Some(json!({":tags": ["call"]})),
            )
            .await;
        assert_eq!(status, 200);
    }
    hub.ingest(
        &acct.token,
        &[leg_event(
            "x1",
            "c",
            "c",
            "new",
            None,
            did("+15550000001"),
            did("+15550000002"),
            1_700_000_000,
        )],
    )
    .await;
    current.settle(1).await;
    assert!(expired.events().is_empty());
}

#[tokio::test]
async fn a_duplicate_uuid_is_stored_and_delivered_once() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    let e = leg_event(
        "dup-1",
        "c1",
        "c1",
        "new",
        None,
        did("+15550000001"),
        did("+15550000002"),
        1_700_000_000,
    );
    let first = hub.ingest(&acct.token, std::slice::from_ref(&e)).await;
    assert_eq!(
        (first["accepted"].as_i64(), first["duplicates"].as_i64()),
        (Some(1), Some(0))
    );
    let again = hub.ingest(&acct.token, std::slice::from_ref(&e)).await;
    assert_eq!(
        (again["accepted"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(1))
    );
    // The duplicate is known by the first copy's id.
    assert_eq!(again["events"][0], first["events"][0]);
    // Within one batch too.
    let e2 = leg_event(
        "dup-2",
        "c1",
        "c1",
        "connecting",
        None,
        did("+15550000001"),
        did("+15550000002"),
        1_700_000_001,
    );
    let batch = hub.ingest(&acct.token, &[e2.clone(), e2]).await;
    assert_eq!(
        (batch["accepted"].as_i64(), batch["duplicates"].as_i64()),
        (Some(1), Some(1))
    );
    rx.settle(2).await;
    // Another account's identical uuid is not a duplicate.
    let other = hub.account().await;
    let out = hub
        .ingest(
            &other.token,
            std::slice::from_ref(&leg_event(
                "dup-1",
                "c1",
                "c1",
                "new",
                None,
                did("+1"),
                did("+2"),
                1_700_000_000,
            )),
        )
        .await;
    assert_eq!(out["accepted"], 1);
}
