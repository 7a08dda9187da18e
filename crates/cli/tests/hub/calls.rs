//! Calls, not just events: the records, the call log and missed calls, the query API, the
//! live stream.

use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const GRACE: &[(&str, &str)] = &[("SWITCHBOARD_FINALIZE_GRACE", "300ms")];

#[tokio::test]
async fn the_reference_call_becomes_one_record_and_one_call_log() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let logs = Receiver::start().await;
    let missed = Receiver::start().await;
    listen(&hub, &acct, &logs.url, &[&["call-log"]]).await;
    listen(&hub, &acct, &missed.url, &[&["missed-call"]]).await;
    let events = inbound_call("ref-call", "+15550000001", "+15550000002");
    // Scrambled, one request each.
    for i in [1, 0, 3, 2, 5, 4, 7, 6, 10, 8, 9] {
        hub.ingest(&acct.token, std::slice::from_ref(&events[i]))
            .await;
    }
    let call = wait_call(&hub, &acct, "ref-call", |c| c["state"] == "finalized").await;
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["disposition"], "answered");
    assert_eq!(call["missed"], false);
    assert_eq!(call["answered_by"]["extension"], "501");
    assert_eq!(call["from"]["number"], "+15550000001");
    assert_eq!(call["to"]["number"], "+15550000002");
    assert_eq!(call["duration_ms"], 86_000);
    assert_eq!(call["talk_ms"], 61_000);
    let legs = call["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 3);
    let result = |id: &str| legs.iter().find(|l| l["id"] == id).unwrap()["result"].clone();
    // A rollover: the first device gave up ringing before the second answered.
    assert_eq!(result("ref-call-leg2"), "no_answer");
    assert_eq!(result("ref-call-leg3"), "answered");
    assert!(call["aliases"]
        .as_array()
        .unwrap()
        .contains(&json!("phonecom:ref-call")));
    // The timeline is in occurrence order, not arrival order.
    let times: Vec<String> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert_eq!(times.len(), 11);
    // By the hub's id too.
    let by_id = get(
        &hub,
        &acct,
        &format!("/calls/{}", call["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(by_id["id"], call["id"]);

    // Exactly one call log, nothing late: no second revision, and no missed call.
    let got = logs.settle(1).await;
    assert_eq!(got[0].body["data_type"], "call-log");
    assert!(got[0].body["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("call-log")));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(logs.events().len(), 1);
    assert!(missed.events().is_empty());
}

#[tokio::test]
async fn a_missed_call_is_logged_and_announced_once() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let missed = Receiver::start().await;
    let cdr = Receiver::start().await;
    listen(&hub, &acct, &missed.url, &[&["missed-call"]]).await;
    // A tel4vn listener on call logs gets a cdr of the hub's own making.
    hub.call(
        "POST",
        &events_api(&acct, "/overview"),
        Some(&acct.token),
        Some(json!({":callback": {"config": {"url": cdr.url}}, ":subscriptions": [{":tags": ["call-log"]}], "version": "tel4vn"})),
    )
    .await;
    hub.ingest(
        &acct.token,
        &[
            leg_event(
                "m1",
                "missed-1",
                "missed-1",
                "new",
                None,
                did("+15550000001"),
                did("+15550000002"),
                1_700_000_000,
            ),
            leg_event(
                "m2",
                "missed-1",
                "m-leg",
                "connecting",
                None,
                did("+15550000001"),
                device(7, 500),
                1_700_000_001,
            ),
            leg_event(
                "m3",
                "missed-1",
                "m-leg",
                "completed",
                Some("cancelled"),
                did("+15550000001"),
                device(7, 500),
                1_700_000_020,
            ),
            leg_event(
                "m4",
                "missed-1",
                "missed-1",
                "completed",
                Some("cancelled"),
                did("+15550000001"),
                did("+15550000002"),
                1_700_000_021,
            ),
        ],
    )
    .await;
    let call = wait_call(&hub, &acct, "missed-1", |c| c["state"] == "finalized").await;
    assert_eq!(call["missed"], true);
    assert_eq!(call["disposition"], "cancelled");
    let got = missed.settle(1).await;
    assert!(got[0].body["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("missed-call")));
    let got = cdr.settle(1).await;
    assert_eq!(got[0].body["state"], "cdr");
    assert_eq!(got[0].body["direction"], "inbound");
    assert_eq!(got[0].body["duration"], 21);
    let listed = get(&hub, &acct, "/calls?missed=true").await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], call["id"]);
}

#[tokio::test]
async fn a_late_fact_that_changes_the_call_emits_a_new_revision() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let logs = Receiver::start().await;
    listen(&hub, &acct, &logs.url, &[&["call-log"]]).await;
    // The first leg ends; the call is finalized as unanswered...
    hub.ingest(
        &acct.token,
        &[
            leg_event(
                "r1",
                "late",
                "late",
                "new",
                None,
                did("+15550000001"),
                did("+15550000002"),
                1_700_000_000,
            ),
            leg_event(
                "r2",
                "late",
                "late",
                "completed",
                Some("success"),
                did("+15550000001"),
                did("+15550000002"),
                1_700_000_060,
            ),
        ],
    )
    .await;
    wait_call(&hub, &acct, "late", |c| {
        c["state"] == "finalized" && c["revision"] == 1
    })
    .await;
    // ...then the device leg that answered arrives late.
    hub.ingest(
        &acct.token,
        &[
            leg_event(
                "r3",
                "late",
                "late-2",
                "connected",
                None,
                did("+15550000001"),
                device(9, 502),
                1_700_000_005,
            ),
            leg_event(
                "r4",
                "late",
                "late-2",
                "completed",
                Some("success"),
                did("+15550000001"),
                device(9, 502),
                1_700_000_059,
            ),
        ],
    )
    .await;
    let call = wait_call(&hub, &acct, "late", |c| {
        c["state"] == "finalized" && c["revision"] == 2
    })
    .await;
    assert_eq!(call["disposition"], "answered");
    let got = logs.settle(2).await;
    let revisions: Vec<i64> = got
        .iter()
        .map(|r| r.body["data"]["revision"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(
        revisions,
        [1, 2],
        "{:?}",
        got.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn calls_are_listed_newest_first_with_filters_and_cursors() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    for i in 0..5 {
        let caller = if i % 2 == 0 {
            "+15551110000"
        } else {
            "+15552220000"
        };
        let mut e = leg_event(
            &format!("l{i}"),
            &format!("list-{i}"),
            &format!("list-{i}"),
            "new",
            None,
            did(caller),
            did("+15550000002"),
            1_700_000_000 + i,
        );
        if i == 4 {
            e["data"]["direction"] = json!("outbound");
        }
        hub.ingest(&acct.token, &[e]).await;
    }
    let page = get(&hub, &acct, "/calls?limit=2").await;
    assert_eq!(page["total"], 5);
    let ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["aliases"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["phonecom:list-4", "phonecom:list-3"]);
    // Open calls are listed with their records as their events say so far.
    let newest = &page["items"][0];
    assert_eq!(newest["from"]["number"], "+15551110000");
    assert_eq!(newest["direction"], "outbound");
    assert_eq!(newest["legs"].as_array().map(Vec::len), Some(1));
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = get(&hub, &acct, &format!("/calls?limit=2&cursor={cursor}")).await;
    assert_eq!(next["items"][0]["aliases"][0], "phonecom:list-2");
    let by_number = get(&hub, &acct, "/calls?number=%2B15551110000").await;
    assert_eq!(by_number["total"], 3);
    let outbound = get(&hub, &acct, "/calls?direction=outbound").await;
    assert_eq!(outbound["total"], 1);
    let (status, err) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls?direction=sideways", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("direction"))
    );
    let (status, _) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls/nope", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // Another account sees none of it.
    let other = hub.account().await;
    let (status, _) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls", acct.id),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(get(&hub, &other, "/calls").await["total"], 0);
}

#[tokio::test]
async fn the_event_log_can_be_pulled_with_a_cursor() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            leg_event(
                &format!("p{i}"),
                "pull",
                "pull",
                "new",
                None,
                did("+1555"),
                did("+1556"),
                1_700_000_000 + i,
            )
        })
        .collect();
    hub.ingest(&acct.token, &batch).await;
    let first = get(&hub, &acct, "/events?limit=3").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let rest = get(&hub, &acct, &format!("/events?after={cursor}")).await;
    let keys: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|e| e["fact"]["source_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["p0", "p1", "p2", "p3", "p4"]);
    let end = get(
        &hub,
        &acct,
        &format!("/events?after={}", rest["next_cursor"].as_str().unwrap()),
    )
    .await;
    assert!(end["items"].as_array().unwrap().is_empty());
}

/// Reads SSE frames from a response until `n` data frames came; returns (id, data).
async fn sse_frames(resp: &mut reqwest::Response, n: usize) -> Vec<(String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let chunk = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            resp.chunk(),
        )
        .await
        .expect("frames in time")
        .unwrap()
        .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let id = frame
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .map(|s| s.trim().to_string());
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(|s| s.trim().to_string());
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_stream_filters_by_tags_and_resumes_without_gaps() {
    let mut hub = Hub::start().await;
    let acct = hub.account().await;
    let open = |last: Option<String>| {
        let mut req = hub
            .http
            .get(format!(
                "{}/v4/accounts/{}/stream?tags=call,inbound",
                hub.base, acct.id
            ))
            .bearer_auth(&acct.token);
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id);
        }
        req.send()
    };
    let mut resp = open(None).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let inbound = |k: &str, t: i64| {
        leg_event(
            k,
            "s-call",
            "s-call",
            "new",
            None,
            did("+1555"),
            did("+1556"),
            t,
        )
    };
    let mut outbound = leg_event(
        "out",
        "o-call",
        "o-call",
        "new",
        None,
        did("+1555"),
        did("+1556"),
        1_700_000_000,
    );
    outbound["data"]["direction"] = json!("outbound");
    hub.ingest(
        &acct.token,
        &[
            inbound("s1", 1_700_000_000),
            outbound,
            inbound("s2", 1_700_000_001),
        ],
    )
    .await;
    let frames = sse_frames(&mut resp, 2).await;
    let keys: Vec<&str> = frames
        .iter()
        .map(|(_, e)| e["fact"]["source_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["s1", "s2"], "the outbound call is filtered out");
    let last = frames[1].0.clone();
    drop(resp);
    // Disconnected: events keep coming; a reconnect from the last id misses none.
    hub.ingest(
        &acct.token,
        &[inbound("s3", 1_700_000_002), inbound("s4", 1_700_000_003)],
    )
    .await;
    let mut resp = open(Some(last)).await.unwrap();
    let frames = sse_frames(&mut resp, 2).await;
    let keys: Vec<&str> = frames
        .iter()
        .map(|(_, e)| e["fact"]["source_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["s3", "s4"]);
    let (status, err) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/stream?tags=calls", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("tags"))
    );
    // An open stream does not keep the hub from stopping.
    assert_eq!(hub.terminate(), Some(0), "{}", hub.log());
    drop(resp);
}

#[tokio::test]
async fn agents_states_and_calls_survive_a_restart() {
    let mut hub = Hub::start().await;
    let acct = hub.account().await;
    let now = |dt: i64| {
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(dt))
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y.%m.%d %H:%M:%S")
            .to_string()
    };
    let agent = |name: &str, dt: i64, serial: i64| json!({"eventName": name, "eventTime": now(dt), "eventType": "agent", "serial": serial, "namespace": "wj.cc", "deviceId": "8002@wj.cc", "agentId": "5002@wj.cc", "agentMode": "Ready"});
    // Out of order: the later state wins.
    for body in [
        agent("agentNotReady", -5, 2),
        agent("agentLoggedOn", -60, 1),
    ] {
        let (status, out) = hub
            .ingest_raw(
                "welljoint",
                &acct.token,
                "application/json",
                body.to_string(),
            )
            .await;
        assert_eq!(status, 202, "{out}");
    }
    let agents = get(&hub, &acct, "/agents").await;
    assert_eq!(agents["items"][0]["agent_id"], "5002@wj.cc");
    assert_eq!(agents["items"][0]["state"], "not_ready");
    hub.ingest(
        &acct.token,
        &[leg_event(
            "keep-1",
            "kept",
            "kept",
            "connecting",
            None,
            did("+1555"),
            did("+1556"),
            1_700_000_000,
        )],
    )
    .await;
    assert_eq!(hub.terminate(), Some(0));
    hub.restart().await;
    let call = get(&hub, &acct, "/calls/kept").await;
    assert_eq!(call["state"], "ringing");
    hub.ingest(
        &acct.token,
        &[leg_event(
            "keep-2",
            "kept",
            "kept",
            "connected",
            None,
            did("+1555"),
            did("+1556"),
            1_700_000_003,
        )],
    )
    .await;
    let call = get(&hub, &acct, "/calls/kept").await;
    assert_eq!(call["state"], "active");
    assert_eq!(call["timeline"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(&hub, &acct, "/agents").await["items"][0]["state"],
        "not_ready"
    );
}

#[tokio::test]
async fn a_call_that_ended_before_a_restart_is_logged_after_it_from_its_events() {
    let mut hub = Hub::start_with(&[("SWITCHBOARD_FINALIZE_GRACE", "2s")]).await;
    let acct = hub.account().await;
    let logs = Receiver::start().await;
    listen(&hub, &acct, &logs.url, &[&["call-log"]]).await;
    hub.ingest(
        &acct.token,
        &inbound_call("restarted", "+15550000001", "+15550000002"),
    )
    .await;
    // Stopped inside the grace window: the new process holds nothing of the call in memory.
    assert_eq!(hub.terminate(), Some(0));
    hub.restart().await;
    let call = wait_call(&hub, &acct, "restarted", |c| c["state"] == "finalized").await;
    assert_eq!(call["disposition"], "answered");
    assert_eq!(call["answered_by"]["extension"], "501");
    assert_eq!(call["duration_ms"], 86_000);
    assert_eq!(call["legs"].as_array().map(Vec::len), Some(3));
    let log = &logs.settle(1).await[0].body["data"]["call"];
    assert_eq!(log["disposition"], "answered");
    assert_eq!(log["talk_ms"], 61_000);
}

#[tokio::test]
async fn a_call_that_goes_quiet_is_closed_with_an_inferred_end() {
    let hub = Hub::start_with(&[
        ("SWITCHBOARD_CALL_IDLE_TIMEOUT", "1s"),
        ("SWITCHBOARD_FINALIZE_GRACE", "100ms"),
    ])
    .await;
    let acct = hub.account().await;
    let logs = Receiver::start().await;
    listen(&hub, &acct, &logs.url, &[&["call-log"]]).await;
    // Times are "now": the call's last event is now, and nothing follows.
    hub.ingest(
        &acct.token,
        &[leg_event(
            "q1",
            "quiet",
            "quiet",
            "connecting",
            None,
            did("+1555"),
            did("+1556"),
            1_700_000_000,
        )],
    )
    .await;
    let call = wait_call(&hub, &acct, "quiet", |c| c["state"] == "finalized").await;
    assert_eq!(call["inferred_end"], true);
    assert_eq!(call["missed"], true, "inbound and never answered");
    assert_eq!(
        logs.settle(1).await[0].body["data"]["call"]["inferred_end"],
        true
    );
}

#[tokio::test]
async fn ids_of_every_dialect_join_their_calls_through_the_hub() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    // tel4vn: two extension legs ring; the flow's cdr comes under another call_id.
    let t = |id: &str, ext: &str, state: &str| json!({"call_id": id, "sip_call_id": "sip-77", "direction": "inbound", "from_number": "0912345678", "to_number": ext, "state": state});
    let batch = json!([
        t("x1", "101", "ringing"),
        t("x2", "102", "ringing"),
        t("x2", "102", "answered"),
        t("x1", "101", "hangup"),
        t("x2", "102", "hangup"),
        t("flow-77", "102", "cdr")
    ]);
    let (status, out) = hub
        .ingest_raw("tel4vn", &acct.token, "application/json", batch.to_string())
        .await;
    assert_eq!(status, 202, "{out}");
    let by_cdr = get(&hub, &acct, "/calls/flow-77").await;
    let by_leg = get(&hub, &acct, "/calls/x1").await;
    assert_eq!(by_cdr["id"], by_leg["id"]);
    assert_eq!(by_cdr["answered_by"]["extension"], "102");
    assert!(by_cdr["aliases"]
        .as_array()
        .unwrap()
        .contains(&json!("tel4vn-sip:sip-77")));
    // The call by any id it is known by: an id as listed, a bare id of any kind, its own.
    let hub_id = by_cdr["id"].as_str().unwrap();
    for id in ["tel4vn-sip:sip-77", "sip-77", "tel4vn:x2", hub_id] {
        assert_eq!(
            get(&hub, &acct, &format!("/calls/{id}")).await["id"],
            hub_id
        );
    }
    // welljoint: a consult call merged into the call it was made from.
    let at = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y.%m.%d %H:%M:%S")
        .to_string();
    let w = |serial: i64, v: Value| {
        let mut v = v;
        v["eventTime"] = json!(at);
        v["namespace"] = json!("wj.cc");
        v["serial"] = json!(serial);
        v
    };
    let batch = json!([
        w(
            1,
            json!({"eventName": "established", "callId": "A", "answeringDevice": "8001@wj.cc", "callingDevice": "5551234@wj.cc", "calledDevice": "8001@wj.cc"})
        ),
        w(
            2,
            json!({"eventName": "established", "callId": "B", "answeringDevice": "8002@wj.cc", "callingDevice": "8001@wj.cc", "calledDevice": "8002@wj.cc"})
        ),
        w(
            3,
            json!({"eventName": "transferred", "callId": "B", "primaryOldCall": "A", "secondaryOldCall": "B", "newCall": "B", "transferringDevice": "8001@wj.cc", "transferredToDevice": "8002@wj.cc"})
        ),
    ]);
    let (status, out) = hub
        .ingest_raw(
            "welljoint",
            &acct.token,
            "application/json",
            batch.to_string(),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let a = get(&hub, &acct, "/calls/A").await;
    let b = get(&hub, &acct, "/calls/B").await;
    assert_eq!(a["id"], b["id"]);
    assert_eq!(a["transferred"], true);
    assert_eq!(a["legs"].as_array().unwrap().len(), 2);
    // And the lists find calls by extension and time.
    let by_ext = get(&hub, &acct, "/calls?extension=102").await;
    assert_eq!(by_ext["total"], 1);
    let later = get(
        &hub,
        &acct,
        &format!(
            "/calls?started_after={}",
            jiff::Timestamp::now().as_second() + 3600
        ),
    )
    .await;
    assert_eq!(later["total"], 0);
    let (status, err) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls?started_after=soon", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("started_after"))
    );
}

#[tokio::test]
async fn many_calls_ending_at_once_are_all_finalized_once() {
    // More calls than one finalizer job takes (32): finalized over several jobs, none lost and
    // none logged twice.
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let logs = Receiver::start().await;
    listen(&hub, &acct, &logs.url, &[&["call-log"]]).await;
    let calls: Vec<String> = (0..75).map(|i| format!("burst-{i}")).collect();
    let events: Vec<Value> = calls
        .iter()
        .flat_map(|c| inbound_call(c, "+15550000001", "+15550000002"))
        .collect();
    hub.ingest(&acct.token, &events).await;
    for id in &calls {
        let call = wait_call(&hub, &acct, id, |c| c["state"] == "finalized").await;
        assert_eq!(call["revision"], 1, "{id}: {call}");
    }
    let got = logs.settle(calls.len()).await;
    let logged = distinct_uuids(&got);
    assert_eq!(logged.len(), calls.len(), "one call log per call");
}

#[tokio::test]
async fn an_open_call_is_found_by_a_party_that_joined_it_later() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let t = |id: &str, ext: &str, state: &str| json!({"call_id": id, "sip_call_id": "sip-88", "direction": "inbound", "from_number": "0987654321", "to_number": ext, "state": state});
    let send = |event: Value| {
        let hub = &hub;
        let token = acct.token.clone();
        async move {
            let (status, out) = hub
                .ingest_raw("tel4vn", &token, "application/json", event.to_string())
                .await;
            assert_eq!(status, 202, "{out}");
        }
    };
    send(t("y1", "201", "ringing")).await;
    assert_eq!(get(&hub, &acct, "/calls?extension=201").await["total"], 1);
    assert_eq!(get(&hub, &acct, "/calls?extension=202").await["total"], 0);
    // A second extension rings in the same call, then answers: the call is found by it too.
    send(t("y2", "202", "ringing")).await;
    assert_eq!(get(&hub, &acct, "/calls?extension=202").await["total"], 1);
    send(t("y2", "202", "answered")).await;
    for ext in ["201", "202"] {
        let found = get(&hub, &acct, &format!("/calls?extension={ext}")).await;
        assert_eq!(found["total"], 1, "extension {ext}");
        assert_eq!(found["items"][0]["state"], "active", "{found}");
    }
    assert_eq!(
        get(&hub, &acct, "/calls?number=0987654321").await["total"],
        1
    );
}
