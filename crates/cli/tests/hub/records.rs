//! What the hub concludes about calls, seen through HTTP: history accepted as history and
//! imports that deliver nothing, one call log per call whatever the sources sent, the PBX's own
//! ids and figures in the tel4vn hooks, a missed call that says so everywhere.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const GRACE: &[(&str, &str)] = &[("SWITCHBOARD_FINALIZE_GRACE", "300ms")];

async fn finalized(hub: &Hub, acct: &Account, id: &str) -> Value {
    wait_call(hub, acct, id, |c| c["state"] == "finalized").await
}

async fn ingest_as(hub: &Hub, dialect: &str, token: &str, query: &str, events: &[Value]) -> Value {
    let (status, out) = hub
        .ingest_raw(
            &format!("{dialect}{query}"),
            token,
            "application/json",
            Value::Array(events.to_vec()).to_string(),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    out
}

async fn tel4vn_hook(hub: &Hub, acct: &Account, url: &str, event: &str) {
    let (status, body) = hub
        .call(
            "POST",
            "/v1/event",
            Some(&acct.token),
            Some(json!({"callback_url": url, "event": event})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn tel4vn(call_id: &str, sip: &str, state: &str, to: &str, extra: Value) -> Value {
    let mut hook = json!({"call_id": call_id, "sip_call_id": sip, "domain": "test.tel4vn.com",
        "direction": "inbound", "from_number": "0912345678", "to_number": to, "hotline": "19001919",
        "state": state});
    hook.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    hook
}

#[tokio::test]
async fn history_is_accepted_at_its_own_time_and_absurd_times_are_refused() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    // events-format.md's example, from June 2020, as written.
    let reference = json!({"uuid": "00000000-0000-0000-0000-000000000000", "version": "2.0.0", "listener_id": 1000,
        "context": {"type": "account", "id": 1000002, "voip_id": 1000002},
        "timestamp": 1593029665, "timestamp_ns": 1593029665343497000u64,
        "tags": ["call", "completed-call", "not-first-leg", "inbound", "from-did", "to-extension"],
        "data_type": "call", "data_object_uuid": "11111111-1111-1111-1111-111111111111",
        "data": {"uuid": "1111-1111-1111-1111-111111111111", "direction": "inbound",
            "event_leg": {"uuid": "22222222-2222-2222-2222-222222222222", "from": {"type": "did", "id": "+15550000001"},
                "to": {"type": "device", "id": 777777, "line": 1, "domain": "sip.phone.com", "extension_id": 555555, "extension": 500},
                "is_first": false, "state": "completed", "completion_status": "cancelled"},
            "first_leg": {"uuid": "1111-1111-1111-1111-111111111111", "from": {"type": "did", "id": "+15550000001"},
                "to": {"type": "did", "id": "+15550000002"}, "is_first": true, "state": null, "completion_status": null}}});
    let out = hub.ingest(&acct.token, &[reference]).await;
    assert_eq!(out["accepted"], 1);
    let events = get(&hub, &acct, "/events").await;
    assert_eq!(
        events["items"][0]["fact"]["occurred_at"], "2020-06-24T20:14:25.343497Z",
        "{events}"
    );

    // Seconds read as milliseconds land in 1970: no phone system means that.
    let (status, err) = hub
        .ingest_raw(
            "callable",
            &acct.token,
            "application/json",
            json!({"parentCallSid": "p", "callSid": "p", "event": "call", "status": "ringing", "timestamp": 1_600_000_000})
                .to_string(),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["@error"]["@path"], "timestamp");
    // Milliseconds read as seconds are far in the future.
    let (status, err) = hub
        .ingest_raw(
            "phonecom",
            &acct.token,
            "application/json",
            json!({"uuid": "future", "timestamp": 4_102_444_800i64, "data_type": "call",
                "data": {"uuid": "c", "event_leg": {"uuid": "c", "state": "new"}}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["@error"]["@path"], "timestamp");
    assert!(err["@error"]["@message"]
        .as_str()
        .unwrap()
        .contains("ahead"));
}

#[tokio::test]
async fn an_import_is_stored_and_joined_into_calls_but_delivered_to_no_one() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"], &["call-log"]]).await;
    // Last month's call, with its real times, imported.
    let events = inbound_call("imported-1", "+15550000031", "+15550000002")
        .into_iter()
        .map(|mut e| {
            let t = e["timestamp"].as_i64().unwrap() - 30 * 86_400;
            e["timestamp"] = json!(t);
            e.as_object_mut().unwrap().remove("timestamp_ns");
            e
        })
        .collect::<Vec<_>>();
    // Its first event alone first: an import's call is not closed as gone quiet because its
    // events' own times are a month old.
    ingest_as(
        &hub,
        "phonecom",
        &acct.token,
        "?deliver=false",
        &events[..1],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, open) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls/imported-1", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_ne!(open["state"], "finalized", "{open}");
    ingest_as(
        &hub,
        "phonecom",
        &acct.token,
        "?deliver=false",
        &events[1..],
    )
    .await;
    let call = finalized(&hub, &acct, "imported-1").await;
    assert_eq!(call["disposition"], "answered");
    assert_eq!(call["inferred_end"], false);
    assert_eq!(call["missed"], false);
    assert_eq!(call["talk_ms"], 61_000);
    // Nothing of it was sent: not its events, not its call log. A call ingested normally is.
    hub.ingest(
        &acct.token,
        &inbound_call("live-1", "+15550000032", "+15550000002"),
    )
    .await;
    finalized(&hub, &acct, "live-1").await;
    let got = rx.settle(12).await;
    assert!(
        got.iter().all(|r| r.body["data"]["uuid"] == "live-1"
            || r.body["data"]["call"]["from"]["number"] == "+15550000032"),
        "{:#?}",
        got.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    // The imported call's log is kept, as the hub's own event.
    let log: Vec<Value> = get(&hub, &acct, "/events?limit=100").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fact"]["kind"] == "call.log" && e["fact"]["call_id"] == call["id"])
        .cloned()
        .collect();
    assert_eq!(log.len(), 1);
    // A bad value is refused with its name.
    let (status, err) = hub
        .ingest_raw(
            "phonecom?deliver=maybe",
            &acct.token,
            "application/json",
            events[0].to_string(),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("deliver"))
    );
}

#[tokio::test]
async fn the_tel4vn_cdr_and_missed_hooks_get_one_payload_per_call_with_the_pbxs_ids_and_figures() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let cdr = Receiver::start().await;
    let missed = Receiver::start().await;
    tel4vn_hook(&hub, &acct, &cdr.url, "cdr").await;
    tel4vn_hook(&hub, &acct, &missed.url, "missed").await;
    // A ring group answered by 102: per-extension call_ids, the flow's own in the cdr.
    ingest_as(
        &hub,
        "tel4vn",
        &acct.token,
        "",
        &[
            tel4vn("x1", "sip-a", "ringing", "101", json!({})),
            tel4vn("x2", "sip-a", "ringing", "102", json!({})),
            tel4vn("x2", "sip-a", "answered", "102", json!({})),
            tel4vn("x1", "sip-a", "hangup", "101", json!({"duration": 6, "billsec": 0})),
            tel4vn("x2", "sip-a", "hangup", "102", json!({"duration": 95, "billsec": 80})),
            tel4vn(
                "flow-a",
                "sip-a",
                "cdr",
                "102",
                json!({"duration": 95, "billsec": 80, "recording_url": "https://recording.demo/a.wav"}),
            ),
        ],
    )
    .await;
    // A call nobody answered, with the PBX's own missed hook and cdr.
    ingest_as(
        &hub,
        "tel4vn",
        &acct.token,
        "",
        &[
            tel4vn("y1", "sip-b", "ringing", "101", json!({})),
            tel4vn(
                "y1",
                "sip-b",
                "hangup",
                "101",
                json!({"duration": 20, "billsec": 0}),
            ),
            tel4vn("flow-b", "sip-b", "missed", "101", json!({})),
            tel4vn(
                "flow-b",
                "sip-b",
                "cdr",
                "101",
                json!({"duration": 20, "billsec": 0}),
            ),
        ],
    )
    .await;
    let answered = finalized(&hub, &acct, "flow-a").await;
    // Sent in one flush, the hooks' times are the hub's: the PBX's figures stand.
    assert_eq!(answered["duration_ms"], 95_000, "{answered}");
    assert_eq!(answered["talk_ms"], 80_000);
    assert!(answered["estimated"]
        .as_array()
        .unwrap()
        .contains(&json!("answered_at")));
    assert_eq!(answered["recordings"].as_array().unwrap().len(), 1);
    let x1 = answered["legs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "x1")
        .unwrap();
    assert_eq!(x1["result"], "answered_elsewhere");
    finalized(&hub, &acct, "flow-b").await;

    let got = cdr.settle(2).await;
    let of = |call: &str| {
        got.iter()
            .find(|r| r.body["call_id"] == call)
            .unwrap_or_else(|| {
                panic!(
                    "no cdr for {call}: {:#?}",
                    got.iter().map(|r| &r.body).collect::<Vec<_>>()
                )
            })
            .body
            .clone()
    };
    let a = of("flow-a");
    assert_eq!(a["state"], "cdr");
    assert_eq!(a["sip_call_id"], "sip-a");
    assert_eq!(a["duration"], 95);
    assert_eq!(a["billsec"], 80);
    assert_eq!(a["recording_url"], "https://recording.demo/a.wav");
    let b = of("flow-b");
    assert_eq!(
        (b["duration"].clone(), b["billsec"].clone()),
        (json!(20), json!(0))
    );
    let got = missed.settle(1).await;
    assert_eq!(got[0].body["state"], "missed");
    assert_eq!(got[0].body["call_id"], "flow-b");
    assert_eq!(got[0].body["sip_call_id"], "sip-b");
}

#[tokio::test]
async fn a_missed_calls_log_and_its_alert_say_the_same() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call-log"], &["missed-call"]]).await;
    let t0 = 1_700_000_000;
    hub.ingest(
        &acct.token,
        &[
            leg_event(
                "mm1",
                "mm",
                "mm",
                "new",
                None,
                did("+15550000041"),
                did("+15550000002"),
                t0,
            ),
            leg_event(
                "mm2",
                "mm",
                "mm-2",
                "connecting",
                None,
                did("+15550000041"),
                device(7, 500),
                t0 + 1,
            ),
            leg_event(
                "mm3",
                "mm",
                "mm-2",
                "completed",
                Some("cancelled"),
                did("+15550000041"),
                device(7, 500),
                t0 + 15,
            ),
            leg_event(
                "mm4",
                "mm",
                "mm",
                "completed",
                Some("cancelled"),
                did("+15550000041"),
                did("+15550000002"),
                t0 + 15,
            ),
        ],
    )
    .await;
    let got = rx.settle(2).await;
    assert!(
        got.iter().all(|r| r.body["data_type"] == "call-log"
            && r.body["data"]["missed"] == true
            && r.body["data"]["call"]["missed"] == true),
        "{:#?}",
        got.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn tomorrows_vendor_values_are_kept_as_not_understood_and_the_call_stays_right() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    let mut events = inbound_call("tomorrow-1", "+15550000051", "+15550000002");
    // A leg state Phone.com may add later, in the middle of the call.
    let mut new_state = events[7].clone();
    new_state["uuid"] = json!("tomorrow-1-new-state");
    new_state["data"]["event_leg"]["state"] = json!("transferring");
    events.insert(8, new_state);
    // And an event of a data type it may add, naming the call.
    events.push(
        json!({"uuid": "tomorrow-1-fax", "version": "2.0.0", "data_type": "fax",
        "data": {"uuid": "tomorrow-1", "pages": 3}}),
    );
    let out = hub.ingest(&acct.token, &events).await;
    assert_eq!(out["accepted"], 13, "{out}");
    let call = finalized(&hub, &acct, "tomorrow-1").await;
    assert_eq!(call["not_understood"], 2, "{call}");
    assert_eq!(call["disposition"], "answered");
    assert_eq!(call["talk_ms"], 61_000);
    let kept: Vec<&Value> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "not_understood")
        .collect();
    assert_eq!(kept.len(), 2, "{call}");
    let state = kept
        .iter()
        .find(|e| e["raw"]["uuid"] == "tomorrow-1-new-state")
        .unwrap();
    assert_eq!(state["not_understood"]["path"], "data.event_leg.state");
    assert_eq!(state["raw"]["data"]["event_leg"]["state"], "transferring");
    // Delivered: the eleven events understood, not the two.
    let got = rx.settle(11).await;
    assert!(got
        .iter()
        .all(|r| r.body["data_type"] == "call"
            && r.body["data"]["event_leg"]["state"] != "transferring"));
}

#[tokio::test]
async fn workonflows_documented_examples_posted_as_javascript_make_one_call() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../corpus/workonflow/documented-examples-one-thread-call/events.js"
    ))
    .unwrap();
    let (status, out) = hub
        .ingest_raw("workonflow", &acct.token, "application/javascript", body)
        .await;
    assert_eq!(status, 202, "{out}");
    assert_eq!(out["accepted"], 8);
    // Call.created names the thread; the others carry thread and stream: one call, which
    // Call.ended closes.
    let call = finalized(&hub, &acct, "595b405b81d3f8001497603d").await;
    assert_eq!(call["timeline"].as_array().unwrap().len(), 8, "{call}");
    assert_eq!(call["inferred_end"], false);
    let listed = get(&hub, &acct, "/calls").await;
    assert_eq!(listed["total"], 1, "{listed}");
    // Only Workonflow's literals may come as JavaScript.
    let (status, _) = hub
        .ingest_raw("tel4vn", &acct.token, "application/javascript", "{}")
        .await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn a_source_declares_its_own_numbers_and_the_direction_follows() {
    let hub = Hub::start_with(GRACE).await;
    let acct = hub.account().await;
    // Callable's parties are numbers of any length: nothing tells whose they are...
    let at = jiff::Timestamp::now().as_millisecond();
    let leg = |sid: &str, status: &str, dt: i64| {
        json!({"parentCallSid": "dir-a", "callSid": sid, "event": "call", "status": status,
            "from": "441234567890", "to": "442070000001", "timestamp": at + dt})
    };
    let call = [
        leg("dir-a", "trying", 0),
        leg("dir-b", "ringing", 100),
        leg("dir-b", "in-progress", 3_000),
        leg("dir-a", "in-progress", 3_000),
        leg("dir-b", "completed", 9_000),
        leg("dir-a", "completed", 9_000),
    ];
    // ...unless the source says which are its own.
    ingest_as(&hub, "callable", &acct.token, "?internal=44207*", &call).await;
    let rec = finalized(&hub, &acct, "dir-a").await;
    assert_eq!(rec["direction"], "inbound", "{rec}");
    assert_eq!(rec["direction_inferred"], true);
    assert_eq!(rec["to"]["internal"], true);
    let (status, err) = hub
        .ingest_raw(
            "callable?internal=sales",
            &acct.token,
            "application/json",
            call[0].to_string(),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("internal"))
    );
}

#[tokio::test]
async fn a_google_analytics_application_reports_each_call_event() {
    let ga = Receiver::start().await;
    let hub = Hub::start_with(&[("SWITCHBOARD_GOOGLE_ANALYTICS_URL", &ga.url)]).await;
    let acct = hub.account().await;
    // The reference's own example.
    let (status, body) = hub
        .call(
            "POST",
            &events_api(&acct, "/overview"),
            Some(&acct.token),
            Some(json!({":callback": {"name": "My Google Analytics integration", "mode": "APPLICATION",
                "config": {"application": "google-analytics", "parameters": {
                    "tracking_id": "UA-00000000-1", "static": {"ec": "Phone call"},
                    "dynamic": {"ea": "direction_text", "el": "phone_number", "cd1": "other_phone_number"}}}},
                ":subscriptions": [{":tags": ["call", "new-call", "first-leg"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[":callback"]["mode"], "APPLICATION");
    hub.ingest(
        &acct.token,
        &inbound_call("ga-1", "+15550000071", "+15550000002")[..1],
    )
    .await;
    let got = ga.wait_events(1, 10).await;
    let hit = String::from_utf8(got[0].raw.clone()).unwrap();
    assert_eq!(got[0].method, "POST");
    assert_eq!(
        got[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    for part in [
        "v=1",
        "tid=UA-00000000-1",
        "t=event",
        "ec=Phone+call",
        "ea=inbound",
        "el=%2B15550000002",
        "cd1=%2B15550000071",
    ] {
        assert!(hit.split('&').any(|p| p == part), "{part} in {hit}");
    }
    // What no self-hosted hub can do is refused, saying why.
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/callbacks"),
            Some(&acct.token),
            Some(
                json!({"mode": "APPLICATION", "config": {"application": "sms-autoresponder",
                "parameters": {"message": "Please, call us instead of sending SMS"}}}),
            ),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("config.application")),
        "{err}"
    );
}

#[tokio::test]
async fn errors_of_the_hubs_own_api_are_raised_as_api_error_events() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["api-error"]]).await;
    // A management request with a wrong field, and an ingest of an event with a wrong type.
    let (status, _) = hub
        .call(
            "POST",
            &events_api(&acct, "/callbacks"),
            Some(&acct.token),
            Some(json!({"config": {"url": rx.url, "timeout": "soon"}})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = hub
        .ingest_raw(
            "tel4vn",
            &acct.token,
            "application/json",
            json!({"call_id": "e", "state": "hangup", "billsec": "five"}).to_string(),
        )
        .await;
    assert_eq!(status, 422);
    // Nobody's token: nothing is raised anywhere.
    hub.call(
        "GET",
        &events_api(&acct, "/callbacks"),
        Some("sb_api_1_nope"),
        None,
    )
    .await;
    for r in rx.settle(2).await {
        assert_eq!(r.body["data_type"], "api-error", "{}", r.body);
        assert_eq!(r.body["data"]["status"], 422);
        assert!(r.body["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        let tags = r.body["tags"].as_array().unwrap();
        assert!(tags.contains(&json!("api-error")) && tags.contains(&json!("api-error-trusted")));
    }
}

#[tokio::test]
async fn a_translation_states_the_direction_the_hub_concluded_for_the_call() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["completed-call"]]).await;
    // An agent's device calls out. The hang-up names no parties: alone it could not tell the
    // call's direction, which the hub inferred from the call's first event.
    let t = "2026.11.02 17:00:00";
    let cti = |name: &str, serial: i64, extra: Value| {
        let mut e = json!({"eventName": name, "eventTime": t, "eventType": "csta", "serial": serial,
            "namespace": "zhen04.cc", "srcDeviceId": "8003@zhen04.cc", "deviceId": "8003@zhen04.cc",
            "callId": "dir-out-1"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let (status, out) = hub
        .ingest_raw(
            "welljoint?tz=Asia/Shanghai",
            &acct.token,
            "application/json",
            json!([
                cti("delivered", 1, json!({"alertingDevice": "8003@zhen04.cc", "callingDevice": "8003@zhen04.cc", "calledDevice": "917600000099@zhen04.cc"})),
                cti("connectionCleared", 2, json!({"releasingDevice": "8003@zhen04.cc", "cause": "NORMAL_CLEARING"})),
            ])
            .to_string(),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let got = rx.settle(1).await;
    assert_eq!(
        got[0].body["data"]["direction"], "outbound",
        "{}",
        got[0].body
    );
}
