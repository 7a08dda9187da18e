//! Delivery you can trust: signatures, isolation, order, Retry-After, 410, auto-disable,
//! fallback, rate limits, e-mail, SSRF, retry and replay, and a crash mid-load.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn event(uuid: &str, call: &str, state: &str) -> Value {
    leg_event(
        uuid,
        call,
        call,
        state,
        None,
        did("+15550000001"),
        did("+15550000002"),
        1_700_000_000,
    )
}

/// A callback with `config` and a listener subscribed to `tags`; returns (callback, listener).
async fn subscribe(hub: &Hub, acct: &Account, callback: Value, tags: &[&str]) -> (Value, i64) {
    let (status, item) = hub
        .call(
            "POST",
            &events_api(acct, "/overview"),
            Some(&acct.token),
            Some(json!({":callback": callback, ":subscriptions": [{":tags": tags}]})),
        )
        .await;
    assert_eq!(status, 200, "{item}");
    (item[":callback"].clone(), item["id"].as_i64().unwrap())
}

async fn deliveries(hub: &Hub, acct: &Account, callback: &Value) -> Vec<Value> {
    let path = events_api(
        acct,
        &format!("/callbacks/{}/deliveries?limit=500", callback["id"]),
    );
    let (status, body) = hub.call("GET", &path, Some(&acct.token), None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn callback_enabled(hub: &Hub, acct: &Account, callback: &Value) -> bool {
    let (_, cb) = hub
        .call(
            "GET",
            &events_api(acct, &format!("/callbacks/{}", callback["id"])),
            Some(&acct.token),
            None,
        )
        .await;
    cb["enabled"].as_bool().unwrap()
}

#[tokio::test]
async fn signatures_verify_with_standard_webhooks_also_across_a_rotation() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, _) = subscribe(&hub, &acct, json!({"config": {"url": rx.url}}), &["call"]).await;
    let old = cb["secret"].as_str().unwrap().to_string();
    hub.ingest(&acct.token, &[event("s1", "c1", "new")]).await;
    let got = rx.wait_events(1, 10).await;
    assert!(verified_by_standard_webhooks(&old, &got[0]));
    assert!(
        !verified_by_standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &got[0]),
        "a wrong secret must not verify"
    );

    let (status, rotated) = hub
        .call(
            "POST",
            &events_api(&acct, &format!("/callbacks/{}/rotate-secret", cb["id"])),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    hub.ingest(&acct.token, &[event("s2", "c1", "connecting")])
        .await;
    let got = rx.wait_events(2, 10).await;
    // During the overlap both secrets sign: receivers on either verify.
    assert_eq!(got[1].headers["webhook-signature"].split(' ').count(), 2);
    assert!(verified_by_standard_webhooks(&new, &got[1]));
    assert!(verified_by_standard_webhooks(&old, &got[1]));
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another_listener() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    subscribe(
        &hub,
        &acct,
        json!({"config": {"url": slow.url, "timeout": 60}}),
        &["call"],
    )
    .await;
    subscribe(&hub, &acct, json!({"config": {"url": fast.url}}), &["call"]).await;
    slow.behave(Behaviour {
        delay: Duration::from_secs(10),
        ..Behaviour::default()
    });
    let events: Vec<Value> = (0..40)
        .map(|i| event(&format!("iso{i}"), &format!("call-{i}"), "new"))
        .collect();
    let sent = Instant::now();
    hub.ingest(&acct.token, &events).await;
    let got = fast.wait_events(40, 5).await;
    let last = got.iter().map(|r| r.at).max().unwrap();
    assert!(
        last.duration_since(sent) < Duration::from_secs(1),
        "the fast listener waited {:?}",
        last.duration_since(sent)
    );
    assert!(!slow.all().is_empty(), "the slow receiver is being tried");
}

#[tokio::test]
async fn per_call_order_holds_when_every_first_attempt_fails() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    subscribe(&hub, &acct, json!({"config": {"url": rx.url}}), &["call"]).await;
    rx.behave(Behaviour {
        fail_first: true,
        ..Behaviour::default()
    });
    let states = ["new", "connecting", "connected", "completed"];
    let mut batch = Vec::new();
    for call in ["a", "b"] {
        for (i, s) in states.iter().enumerate() {
            batch.push(event(&format!("{call}{i}"), call, s));
        }
    }
    hub.ingest(&acct.token, &batch).await;
    let got = rx.wait_events(16, 15).await;
    for call in ["a", "b"] {
        let seen: Vec<&str> = got
            .iter()
            .filter(|r| r.body["data"]["uuid"] == call)
            .map(|r| r.body["data"]["event_leg"]["state"].as_str().unwrap())
            .collect();
        // Each event twice (failed, then delivered) and never one before the previous succeeded.
        let want: Vec<&str> = states.iter().flat_map(|s| [*s, *s]).collect();
        assert_eq!(seen, want, "call {call}");
    }
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_twice_the_step() {
    let hub = Hub::start_with(&[
        ("SWITCHBOARD_RETRY_SCHEDULE", "0s,1s,1s"),
        ("SWITCHBOARD_RETRY_JITTER", "0"),
    ])
    .await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    subscribe(&hub, &acct, json!({"config": {"url": rx.url}}), &["call"]).await;
    rx.behave(Behaviour {
        status: 503,
        headers: vec![("Retry-After".into(), "100".into())],
        ..Behaviour::default()
    });
    hub.ingest(&acct.token, &[event("ra", "c", "new")]).await;
    rx.wait_events(1, 5).await;
    rx.answer(200);
    let got = rx.wait_events(2, 10).await;
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(1900) && gap < Duration::from_millis(3500),
        "asked 100 s, step 1 s: waited {gap:?}"
    );
}

#[tokio::test]
async fn gone_switches_the_callback_off_and_says_so() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let gone = Receiver::start().await;
    let watcher = Receiver::start().await;
    let (cb, _) = subscribe(&hub, &acct, json!({"config": {"url": gone.url}}), &["call"]).await;
    subscribe(
        &hub,
        &acct,
        json!({"config": {"url": watcher.url}}),
        &["deactivated-listener-callback"],
    )
    .await;
    gone.answer(410);
    hub.ingest(&acct.token, &[event("g1", "c", "new")]).await;
    let note = watcher.wait_events(1, 10).await;
    assert_eq!(note[0].body["data"]["callback_id"], cb["id"]);
    assert!(note[0].body["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("deactivated-listener-callback")));
    assert!(!callback_enabled(&hub, &acct, &cb).await);
    let d = deliveries(&hub, &acct, &cb).await;
    assert_eq!(d[0]["status"], "dead");
    assert_eq!(d[0]["attempts"], 1, "410 is not retried");
    // A switched-off callback gets nothing more.
    gone.answer(200);
    hub.ingest(&acct.token, &[event("g2", "c", "connecting")])
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gone.events().len(), 1);
}

#[tokio::test]
async fn a_callback_failing_too_long_is_switched_off_and_its_profile_told() {
    let smtp = SmtpSink::start();
    let port = smtp.port.to_string();
    let hub = Hub::start_with(&[
        (
            "SWITCHBOARD_RETRY_SCHEDULE",
            "0s,300ms,300ms,300ms,300ms,300ms,300ms",
        ),
        ("SWITCHBOARD_DISABLE_AFTER", "1s"),
        ("SWITCHBOARD_SMTP_HOST", "127.0.0.1"),
        ("SWITCHBOARD_SMTP_PORT", &port),
    ])
    .await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let watcher = Receiver::start().await;
    let (cb, _) = subscribe(
        &hub,
        &acct,
        json!({"config": {"url": rx.url}, ":profile": {"name": "ops", "support_email": "ops@example.org"}}),
        &["call"],
    )
    .await;
    subscribe(
        &hub,
        &acct,
        json!({"config": {"url": watcher.url}}),
        &["deactivated-listener-callback"],
    )
    .await;
    rx.answer(500);
    hub.ingest(&acct.token, &[event("f1", "c", "new")]).await;
    watcher.wait_events(1, 15).await;
    assert!(!callback_enabled(&hub, &acct, &cb).await);
    let mail = smtp.wait_messages(1, 10).await;
    assert!(
        mail[0].contains("X-Rcpt-To: ops@example.org"),
        "{}",
        mail[0]
    );
    assert!(
        mail[0].contains(&format!("callback {}", cb["id"])),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("failed"), "{}", mail[0]);
}

#[tokio::test]
async fn the_fallback_gets_what_died_on_the_primary_and_what_comes_while_it_is_off() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let primary = Receiver::start().await;
    let backup = Receiver::start().await;
    let t = Some(acct.token.as_str());
    let (_, fb) = hub
        .call(
            "POST",
            &events_api(&acct, "/callbacks"),
            t,
            Some(json!({"config": {"url": backup.url}})),
        )
        .await;
    let (cb, _) = subscribe(
        &hub,
        &acct,
        json!({"config": {"url": primary.url}, "fallback_callback_id": fb["id"]}),
        &["call"],
    )
    .await;
    primary.answer(500);
    hub.ingest(&acct.token, &[event("fb1", "c1", "new")]).await;
    let got = backup.wait_events(1, 10).await;
    assert_eq!(got[0].body["data"]["uuid"], "c1");
    assert_eq!(
        primary.events().len(),
        3,
        "the primary had its whole schedule first"
    );
    // Switched off by hand: new events go straight to the fallback.
    let (status, _) = hub
        .call(
            "PATCH",
            &events_api(&acct, &format!("/callbacks/{}", cb["id"])),
            t,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    hub.ingest(&acct.token, &[event("fb2", "c2", "new")]).await;
    let got = backup.wait_events(2, 10).await;
    assert_eq!(got[1].body["data"]["uuid"], "c2");
    assert_eq!(primary.events().len(), 3);
}

#[tokio::test]
async fn a_rate_limit_suppresses_what_exceeds_it() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, _) = subscribe(
        &hub,
        &acct,
        json!({"config": {"url": rx.url, "rate-limit": {"number": 5, "period": 60}}}),
        &["call"],
    )
    .await;
    let burst: Vec<Value> = (0..20)
        .map(|i| event(&format!("rl{i}"), &format!("call-{i}"), "new"))
        .collect();
    hub.ingest(&acct.token, &burst).await;
    rx.settle(5).await;
    let d = deliveries(&hub, &acct, &cb).await;
    let count = |s: &str| d.iter().filter(|x| x["status"] == s).count();
    assert_eq!(
        (count("succeeded"), count("suppressed"), d.len()),
        (5, 15, 20)
    );
}

#[tokio::test]
async fn email_callbacks_in_json_and_text_with_a_working_unsubscribe_link() {
    let smtp = SmtpSink::start();
    let port = smtp.port.to_string();
    let hub = Hub::start_with(&[
        ("SWITCHBOARD_SMTP_HOST", "127.0.0.1"),
        ("SWITCHBOARD_SMTP_PORT", &port),
    ])
    .await;
    let acct = hub.account().await;
    let (json_cb, _) = subscribe(
        &hub,
        &acct,
        json!({"mode": "EMAIL", "config": {"email": "crm@example.org"}}),
        &["call"],
    )
    .await;
    assert_eq!(json_cb["mode"], "EMAIL");
    subscribe(
        &hub,
        &acct,
        json!({"mode": "EMAIL", "config": {"email": "people@example.org", "mode": "text"}}),
        &["call"],
    )
    .await;
    hub.ingest(&acct.token, &[event("em1", "mail-call", "new")])
        .await;
    let mail = smtp.wait_messages(2, 10).await;
    let json_mail = mail
        .iter()
        .find(|m| m.contains("X-Rcpt-To: crm@example.org"))
        .unwrap();
    let text_mail = mail
        .iter()
        .find(|m| m.contains("X-Rcpt-To: people@example.org"))
        .unwrap();
    let body = json_mail.split("\r\n\r\n").nth(1).unwrap();
    let payload: Value =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(payload["data"]["uuid"], "mail-call");
    let link = payload["unsubscribe_link"].as_str().unwrap().to_string();
    assert!(
        text_mail.contains("Data / Event leg / State: new"),
        "{text_mail}"
    );
    assert!(text_mail.contains("Unsubscribe: http"), "{text_mail}");

    // Follow the link: that callback is off, and no more mail goes to it.
    let link = link.replace(&link[..link.find("/unsubscribe/").unwrap()], &hub.base);
    let resp = hub.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!callback_enabled(&hub, &acct, &json_cb).await);
    hub.ingest(&acct.token, &[event("em2", "mail-call", "connecting")])
        .await;
    let mail = smtp.wait_messages(3, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_crm = smtp
        .messages()
        .iter()
        .filter(|m| m.contains("X-Rcpt-To: crm@example.org"))
        .count();
    assert_eq!((to_crm, mail.len()), (1, 3));
    assert_eq!(
        hub.http
            .get(format!("{}/unsubscribe/notatokenatallreally", hub.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn email_callbacks_need_an_smtp_server_and_an_address() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let t = Some(acct.token.as_str());
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/callbacks"),
            t,
            Some(json!({"mode": "EMAIL", "config": {"email": "a@example.org"}})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("mode")),
        "{err}"
    );
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/callbacks"),
            t,
            Some(json!({"mode": "EMAIL", "config": {"email": "nobody"}})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("config.email")),
        "{err}"
    );
}

#[tokio::test]
async fn private_and_special_addresses_are_refused_by_name() {
    let hub = Hub::start_with(&[("SWITCHBOARD_ALLOW_PRIVATE_TARGETS", "0")]).await;
    let acct = hub.account().await;
    let t = Some(acct.token.as_str());
    for (url, rule) in [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://localhost:9/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::1]/", "loopback"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd00::1]/", "unique local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        // IPv6 forms that carry an IPv4 address are judged by it.
        ("http://[::127.0.0.1]/", "loopback"),
        ("http://[::ffff:0:7f00:1]/", "loopback"),
        ("http://[2002:7f00:1::1]/", "loopback"),
        ("http://[2002:a9fe:a9fe::1]/", "metadata"),
        ("http://[64:ff9b::a00:1]/", "private"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[100::1]/", "discard-only"),
    ] {
        let (status, err) = hub
            .call(
                "POST",
                &events_api(&acct, "/callbacks"),
                t,
                Some(json!({"config": {"url": url}})),
            )
            .await;
        assert_eq!(status, 422, "{url}: {err}");
        assert_eq!(err["@error"]["@path"], "config.url");
        let message = err["@error"]["@message"].as_str().unwrap();
        assert!(message.contains(rule), "{url}: {message}");
    }
}

#[tokio::test]
async fn an_allowed_cidr_opens_one_network_and_the_check_is_made_again_at_send_time() {
    let mut hub = Hub::start_with(&[
        ("SWITCHBOARD_ALLOW_PRIVATE_TARGETS", "0"),
        ("SWITCHBOARD_ALLOWED_CIDRS", "127.0.0.0/8"),
    ])
    .await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, _) = subscribe(&hub, &acct, json!({"config": {"url": rx.url}}), &["call"]).await;
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/callbacks"),
            Some(&acct.token),
            Some(json!({"config": {"url": "http://10.0.0.1/"}})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    hub.ingest(&acct.token, &[event("cidr1", "c", "new")]).await;
    rx.wait_events(1, 10).await;
    // Started again without the allowance, the hub refuses to send to the same callback.
    hub.terminate();
    hub.set_env("SWITCHBOARD_ALLOWED_CIDRS", "");
    hub.restart().await;
    hub.ingest(&acct.token, &[event("cidr2", "c", "connecting")])
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = deliveries(&hub, &acct, &cb).await;
        if d[0]["status"] == "dead" {
            assert!(
                d[0]["last_error"].as_str().unwrap().contains("loopback"),
                "{}",
                d[0]
            );
            break;
        }
        assert!(Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rx.events().len(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    let (cb, _) = subscribe(&hub, &acct, json!({"config": {"url": rx.url}}), &["call"]).await;
    rx.behave(Behaviour {
        status: 302,
        headers: vec![("Location".into(), elsewhere.url.clone())],
        ..Behaviour::default()
    });
    hub.ingest(&acct.token, &[event("redir", "c", "new")]).await;
    rx.wait_events(3, 10).await;
    let d = deliveries(&hub, &acct, &cb).await;
    assert_eq!(d[0]["attempt_log"][0]["status_code"], 302);
    assert!(elsewhere.all().is_empty());
}

#[tokio::test]
async fn a_dead_delivery_can_be_retried_and_a_listener_replayed() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let other = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, listener) =
        subscribe(&hub, &acct, json!({"config": {"url": rx.url}}), &["call"]).await;
    rx.answer(500);
    let from = jiff::Timestamp::now().as_second() - 1;
    let first = hub.ingest(&acct.token, &[event("rr1", "c", "new")]).await;
    rx.wait_events(3, 10).await;
    let mut d = deliveries(&hub, &acct, &cb).await;
    for _ in 0..50 {
        if d[0]["status"] == "dead" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        d = deliveries(&hub, &acct, &cb).await;
    }
    assert_eq!(d[0]["status"], "dead");
    rx.answer(200);
    let retry = format!("/callbacks/{}/deliveries/{}/retry", cb["id"], d[0]["id"]);
    // Another account cannot trigger it.
    let (status, _) = hub
        .call(
            "POST",
            &events_api(&other, &retry),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, out) = hub
        .call("POST", &events_api(&acct, &retry), Some(&acct.token), None)
        .await;
    assert_eq!(status, 200, "{out}");
    let got = rx.wait_events(4, 10).await;
    assert_eq!(
        got[3].headers["webhook-id"],
        first["events"][0].as_str().unwrap()
    );

    let to = jiff::Timestamp::now().as_second() + 1;
    let (status, out) = hub
        .call(
            "POST",
            &events_api(&acct, &format!("/listeners/{listener}/replay")),
            Some(&acct.token),
            Some(json!({"from": from, "to": to})),
        )
        .await;
    assert_eq!((status, out["replayed"].as_i64()), (200, Some(1)), "{out}");
    let got = rx.wait_events(5, 10).await;
    assert_eq!(
        got[4].headers["webhook-id"],
        first["events"][0].as_str().unwrap(),
        "same event id"
    );
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, &format!("/listeners/{listener}/replay")),
            Some(&acct.token),
            Some(json!({"from": to, "to": from})),
        )
        .await;
    assert_eq!((status, err["@error"]["@path"].as_str()), (422, Some("to")));
}

#[tokio::test]
async fn nothing_accepted_is_lost_when_the_hub_is_killed_mid_load() {
    // Leases of an hour: what the killed process had claimed is sent within the wait below
    // only because the restarted hub takes its claims back at start (SQLite's are in memory;
    // on PostgreSQL the node keeps its name in its data dir and frees its own leases).
    let mut hub = Hub::start_with(&[("SWITCHBOARD_DELIVERY_LEASE", "1h")]).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    // A slow receiver, so the hub has sends in flight when it is killed.
    rx.behave(Behaviour {
        delay: Duration::from_millis(20),
        ..Behaviour::default()
    });
    subscribe(&hub, &acct, json!({"config": {"url": rx.url}}), &["call"]).await;
    let base = hub.base.clone();
    let token = acct.token.clone();
    let http = hub.http.clone();
    // Four senders post batches of 10 as fast as they can and keep the ids of every 202.
    let mut senders = Vec::new();
    for s in 0..4 {
        let (base, token, http) = (base.clone(), token.clone(), http.clone());
        senders.push(tokio::spawn(async move {
            let mut accepted: Vec<String> = Vec::new();
            for b in 0..10_000 {
                let batch: Vec<Value> = (0..10)
                    .map(|i| {
                        event(
                            &format!("k{s}-{b}-{i}"),
                            &format!("call-{s}-{b}-{i}"),
                            "new",
                        )
                    })
                    .collect();
                let resp = http
                    .post(format!("{base}/ingest/phonecom"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(Value::Array(batch).to_string())
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
                accepted.extend(
                    body["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string()),
                );
            }
            accepted
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hub.kill();
    let mut accepted = HashSet::new();
    for s in senders {
        accepted.extend(s.await.unwrap());
    }
    assert!(
        accepted.len() > 100,
        "the load ran: {} accepted",
        accepted.len()
    );
    hub.restart().await;
    let deadline = Instant::now() + Duration::from_secs(60);
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
            "{missing} of {} accepted events never delivered",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_callback_timeout_ends_an_attempt_and_old_attempts_are_pruned() {
    let mut hub = Hub::start_with(&[
        ("SWITCHBOARD_RETRY_SCHEDULE", "0s"),
        ("SWITCHBOARD_ATTEMPT_RETENTION", "2s"),
    ])
    .await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (cb, _) = subscribe(
        &hub,
        &acct,
        json!({"config": {"url": rx.url, "timeout": 1}}),
        &["call"],
    )
    .await;
    rx.behave(Behaviour {
        delay: Duration::from_secs(3),
        ..Behaviour::default()
    });
    let started = Instant::now();
    hub.ingest(&acct.token, &[event("slow", "c", "new")]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        let d = deliveries(&hub, &acct, &cb).await;
        if d[0]["status"] == "dead" {
            break d;
        }
        assert!(Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "the 1 s timeout, not the 3 s answer, ended it"
    );
    assert!(
        d[0]["attempt_log"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{}",
        d[0]
    );
    // Attempts older than the retention are pruned (at start-up and every ten minutes).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(hub.terminate(), Some(0));
    hub.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = deliveries(&hub, &acct, &cb).await;
        if d[0]["attempt_log"].as_array().unwrap().is_empty() {
            assert_eq!(d[0]["status"], "dead", "the delivery itself stays");
            break;
        }
        assert!(Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
