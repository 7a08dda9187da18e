//! Every dialect in, every dialect out: through the running hub.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// One listener per output dialect, all subscribed to `tags`.
async fn listeners_in_every_dialect(
    hub: &Hub,
    acct: &Account,
    tags: &[&str],
) -> Vec<(&'static str, Receiver)> {
    let mut out = Vec::new();
    for version in [
        "2.0.0",
        "tel4vn",
        "callable",
        "welljoint",
        "workonflow",
        "canonical",
    ] {
        let rx = Receiver::start().await;
        let (status, item) = hub
            .call(
                "POST",
                &events_api(acct, "/overview"),
                Some(&acct.token),
                Some(json!({":callback": {"config": {"url": rx.url}}, ":subscriptions": [{":tags": tags}], "version": version})),
            )
            .await;
        assert_eq!(status, 200, "{item}");
        assert_eq!(item["version"], version);
        out.push((version, rx));
    }
    out
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A welljoint local time for now in a zone.
fn local_now(tz: &str) -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get(tz).unwrap())
        .strftime("%Y.%m.%d %H:%M:%S")
        .to_string()
}

/// An answered leg in each input dialect, as its vendor would send it.
fn answered_in(dialect: &str) -> (String, &'static str) {
    match dialect {
        "phonecom" => (leg_event("pc-1", "pc-call", "pc-leg", "connected", None, did("+15550000001"), device(7, 500), 1_700_000_000).to_string(), "application/json"),
        "tel4vn" => (json!({"call_id": "t4-leg", "sip_call_id": "t4-sip", "domain": "x.tel4vn.com", "direction": "inbound", "from_number": "0912345678", "to_number": "101", "hotline": "19001919", "state": "answered"}).to_string(), "application/json"),
        "callable" => (json!({"accountId": "a", "parentCallSid": "cb-call", "callSid": "cb-leg", "childSid": null, "type": "voice", "event": "call", "status": "in-progress", "from": "441234567890", "to": "441234567891", "meta": {"k": "v"}, "timestamp": now_ms()}).to_string(), "application/json"),
        "welljoint" => (json!({"eventName": "established", "eventTime": local_now("UTC"), "eventType": "csta", "serial": 1, "namespace": "wj.cc", "srcDeviceId": "8002@wj.cc", "callId": "wj-call", "deviceId": "8002@wj.cc", "answeringDevice": "8002@wj.cc", "callingDevice": "8001@wj.cc", "calledDevice": "8002@wj.cc"}).to_string(), "application/json"),
        // As the vendor documents it: a JavaScript object literal.
        "workonflow" => ("{\n  teamId: 'team',\n  eventType: 'Call.Member.Invite.ended',\n  streamId: 'wf-stream',\n  threadId: 'wf-stream',\n  userId: 'u1',\n  phone: '89536052307',\n  answered: true,\n}".to_string(), "application/json"),
        _ => unreachable!(),
    }
}

fn well_formed(version: &str, body: &Value) -> bool {
    match version {
        "2.0.0" => body["data_type"] == "call" && body["data"]["event_leg"]["state"] == "connected",
        "tel4vn" => body["state"] == "answered" && body["call_id"].is_string(),
        "callable" => {
            body["status"] == "in-progress"
                && body["parentCallSid"].is_string()
                && body["timestamp"].is_i64()
        }
        "welljoint" => {
            body["eventName"] == "established"
                && body["eventTime"].as_str().is_some_and(|t| t.len() == 19)
                && body["callId"].is_string()
        }
        "workonflow" => body["eventType"] == "Call.Member.Invite.ended" && body["answered"] == true,
        "canonical" => {
            body["specversion"] == "1.0"
                && body["type"] == "switchboard.call.leg.answered"
                && body["data"]["event"]["id"] == body["id"]
        }
        _ => false,
    }
}

#[tokio::test]
async fn an_answered_leg_in_any_dialect_reaches_listeners_in_every_dialect() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let listeners = listeners_in_every_dialect(&hub, &acct, &["connected-call"]).await;
    let inputs = ["phonecom", "tel4vn", "callable", "welljoint", "workonflow"];
    for dialect in inputs {
        let (body, ct) = answered_in(dialect);
        let (status, out) = hub.ingest_raw(dialect, &acct.token, ct, body).await;
        assert_eq!(status, 202, "{dialect}: {out}");
        assert_eq!(out["accepted"], 1, "{dialect}: {out}");
    }
    for (version, rx) in &listeners {
        let got = rx.settle(inputs.len()).await;
        for r in &got {
            assert!(well_formed(version, &r.body), "{version} got {}", r.body);
        }
    }
    // The canonical form goes back in, losslessly, as another account's event.
    let canonical = &listeners.iter().find(|(v, _)| *v == "canonical").unwrap().1;
    let other = hub.account().await;
    let again = listeners_in_every_dialect(&hub, &other, &["connected-call"]).await;
    for r in canonical.events() {
        let (status, out) = hub
            .ingest_raw(
                "canonical",
                &other.token,
                "application/cloudevents+json",
                r.body.to_string(),
            )
            .await;
        assert_eq!(status, 202, "{out}");
    }
    let phonecom = &again.iter().find(|(v, _)| *v == "2.0.0").unwrap().1;
    assert_eq!(phonecom.settle(inputs.len()).await.len(), inputs.len());
}

#[tokio::test]
async fn bad_input_in_each_dialect_is_refused_by_path_and_stores_nothing() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    let cases = [
        // A state the PBX may add later is kept (as not understood), but not with nothing to
        // join it by.
        ("tel4vn", json!({"state": "exploded"}).to_string(), "state"),
        ("tel4vn", json!({"state": "hangup"}).to_string(), "call_id"),
        ("callable", json!({"parentCallSid": "p", "callSid": "p", "event": "call", "status": "ringing", "timestamp": "noon"}).to_string(), "timestamp"),
        // Seconds where milliseconds belong: a time in 1970, refused as absurd.
        ("callable", json!({"parentCallSid": "p", "callSid": "p", "event": "call", "status": "ringing", "timestamp": now_ms() / 1000}).to_string(), "timestamp"),
        ("welljoint", json!({"eventName": "delivered", "eventTime": "yesterday"}).to_string(), "eventTime"),
        ("welljoint", json!({"eventName": "beamed", "eventTime": local_now("UTC")}).to_string(), "eventName"),
        ("workonflow", "{eventType: 'Call.Member.dtmf', streamId: 's', userId: 'u'}".to_string(), "dtmfNumber"),
        ("canonical", json!({"specversion": "1.0", "id": "1", "source": "s", "type": "other.thing", "data": {}}).to_string(), "type"),
    ];
    for (dialect, body, path) in cases {
        let (status, out) = hub
            .ingest_raw(dialect, &acct.token, "application/json", body.clone())
            .await;
        assert_eq!(status, 422, "{dialect} {body}: {out}");
        assert_eq!(out["@error"]["@path"], path, "{dialect} {body}: {out}");
    }
    // A batch whose second element is bad stores nothing of the first.
    let good = json!({"call_id": "ok", "state": "ringing", "direction": "inbound", "from_number": "0912", "to_number": "101"});
    let batch = json!([good, {"call_id": "bad", "state": "hangup", "billsec": "five"}]).to_string();
    let (status, out) = hub
        .ingest_raw("tel4vn", &acct.token, "application/json", batch)
        .await;
    assert_eq!(
        (status, out["@error"]["@path"].as_str()),
        (422, Some("[1].billsec"))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.events().is_empty());
}

#[tokio::test]
async fn welljoint_local_times_are_read_in_the_declared_zone() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    hub.call(
        "POST",
        &events_api(&acct, "/overview"),
        Some(&acct.token),
        Some(json!({":callback": {"config": {"url": rx.url}}, ":subscriptions": [{":tags": ["call"]}], "version": "canonical"})),
    )
    .await;
    let shanghai = local_now("Asia/Shanghai");
    let held = |serial: i64| {
        json!({"eventName": "held", "eventTime": shanghai, "namespace": "wj.cc", "serial": serial, "callId": "c", "holdingDevice": "8002@wj.cc"}).to_string()
    };
    let resp = hub
        .http
        .post(format!("{}/ingest/welljoint?tz=Asia/Shanghai", hub.base))
        .bearer_auth(&acct.token)
        .header("content-type", "application/json")
        .body(held(1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    // The same through a token whose sources are in Shanghai.
    let (_, tok) = hub
        .call(
            "POST",
            &format!("/admin/accounts/{}/tokens", acct.id),
            Some(ADMIN),
            Some(json!({"scope": "ingest", "tz": "Asia/Shanghai"})),
        )
        .await;
    let (status, out) = hub
        .ingest_raw(
            "welljoint",
            tok["token"].as_str().unwrap(),
            "application/json",
            held(2),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let got = rx.wait_events(2, 10).await;
    for r in got {
        let at: jiff::Timestamp = r.body["data"]["event"]["fact"]["occurred_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let off = (jiff::Timestamp::now().as_second() - at.as_second()).abs();
        assert!(
            off < 60,
            "read as Shanghai time, the event is now: {off} s off"
        );
    }
}

#[tokio::test]
async fn the_tel4vn_hook_api_creates_lists_delivers_and_deletes() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let t = Some(acct.token.as_str());
    // tel4vn's own example names an event tel4vn does not send: the hook is made, as tel4vn
    // makes it, and is never called.
    let never = Receiver::start().await;
    let (status, odd) = hub
        .call(
            "POST",
            "/v1/event",
            t,
            Some(json!({"callback_url": never.url, "callback_apikey": "foo", "event": "create"})),
        )
        .await;
    assert_eq!((status, &odd["created"]), (200, &json!(true)), "{odd}");
    let (status, err) = hub
        .call(
            "POST",
            "/v1/event",
            t,
            Some(json!({"callback_url": rx.url})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("event")),
        "{err}"
    );
    let (status, created) = hub
        .call(
            "POST",
            "/v1/event",
            t,
            Some(json!({"callback_url": rx.url, "callback_apikey": "foo", "event": "hangup"})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["created"], true);
    let (_, list) = hub.call("GET", "/v1/event", t, None).await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["data"][1]["event"], "create");
    assert_eq!(list["data"][1]["id"], odd["id"]);
    assert_eq!(list["data"][0]["event"], "hangup");
    assert_eq!(list["data"][0]["callback_url"], rx.url.as_str());
    // As tel4vn shows them: the hook's id a UUID string, its key shown to its owner.
    assert_eq!(list["data"][0]["id"], created["id"]);
    assert!(
        uuid::Uuid::parse_str(created["id"].as_str().unwrap()).is_ok(),
        "{created}"
    );
    assert_eq!(list["data"][0]["callback_apikey"], "foo");
    // Another account's token sees none of it.
    let other = hub.account().await;
    let (_, theirs) = hub.call("GET", "/v1/event", Some(&other.token), None).await;
    assert_eq!(theirs["total"], 0);

    // A whole call arrives; the hook gets only its hangup, as tel4vn sends it, with the key.
    for (i, state) in ["new", "connecting", "connected", "completed"]
        .iter()
        .enumerate()
    {
        hub.ingest(
            &acct.token,
            &[leg_event(
                &format!("h{i}"),
                "hook-call",
                "hook-call",
                state,
                (*state == "completed").then_some("success"),
                did("+15550000001"),
                did("+15550000002"),
                1_700_000_000 + i as i64,
            )],
        )
        .await;
    }
    let got = rx.settle(1).await;
    assert_eq!(got[0].body["state"], "hangup");
    assert_eq!(got[0].body["call_id"], "hook-call");
    assert_eq!(got[0].headers["x-api-key"], "foo");
    assert!(never.events().is_empty());
    let (status, _) = hub
        .call(
            "DELETE",
            &format!("/v1/event/{}", odd["id"].as_str().unwrap()),
            t,
            None,
        )
        .await;
    assert_eq!(status, 200);

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        hub.call(
            "DELETE",
            &format!("/v1/event/{id}"),
            Some(&other.token),
            None
        )
        .await
        .0,
        404
    );
    let (status, out) = hub
        .call("DELETE", &format!("/v1/event/{id}"), t, None)
        .await;
    assert_eq!((status, out), (200, json!({"deleted": true})));
    let (_, list) = hub.call("GET", "/v1/event", t, None).await;
    assert_eq!(list["total"], 0);
    assert_eq!(
        hub.call("DELETE", &format!("/v1/event/{id}"), t, None)
            .await
            .0,
        404
    );
    assert_eq!(hub.call("GET", "/v1/event", None, None).await.0, 401);
}

#[tokio::test]
async fn the_cli_decodes_and_translates_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hooks.ndjson");
    std::fs::write(&file, format!("{}\n{}\n", answered_in("tel4vn").0, json!({"call_id": "t4-leg", "state": "cdr", "direction": "inbound", "recording_url": "https://r/x.wav"}))).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["decode", "--dialect", "tel4vn", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kinds: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["fact"]["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["call.leg.answered", "call.cdr", "recording.ready"]);
    let out = run(&[
        "translate",
        "--from",
        "tel4vn",
        "--to",
        "welljoint",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let first: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["eventName"], "established");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no welljoint counterpart"));
    let out = run(&["decode", "--dialect", "asterisk", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dialect"));
    // A pretty-printed document translated into its own dialect is NDJSON too: one event a
    // line, as the vendor wrote it.
    let reference = dir.path().join("reference.json");
    let pretty = serde_json::to_string_pretty(&json!([
        {"uuid": "p1", "timestamp": 1593029665, "data_type": "call",
         "data": {"uuid": "c", "direction": "inbound", "event_leg": {"uuid": "c", "is_first": true, "state": "new"}}},
        {"uuid": "p2", "timestamp": 1593029666, "data_type": "call",
         "data": {"uuid": "c", "direction": "inbound", "event_leg": {"uuid": "c", "is_first": true, "state": "connecting"}}}
    ]))
    .unwrap();
    std::fs::write(&reference, pretty).unwrap();
    // (A tel4vn cdr is the PBX's own record of a call, which the hub's call log says: it has
    // no line of its own.)
    for (from, to, events) in [("phonecom", "phonecom", 2), ("tel4vn", "tel4vn", 1)] {
        let input = if from == "phonecom" {
            &reference
        } else {
            &file
        };
        let out = run(&[
            "translate",
            "--from",
            from,
            "--to",
            to,
            input.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), events, "{from}: {text}");
    }
}
