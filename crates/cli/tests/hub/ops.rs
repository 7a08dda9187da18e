//! Health, readiness, graceful shutdown and the CLI.

use crate::support::*;
use serde_json::json;
use std::process::Command;
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn health_and_readiness() {
    let hub = Hub::start().await;
    let (status, body) = hub.call("GET", "/healthz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = hub.call("GET", "/readyz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (status, body) = hub.call("GET", "/no/such/route", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["@error"]["@httpStatusCode"], 404);
}

#[tokio::test]
async fn sigterm_stops_the_hub_cleanly_and_data_survives() {
    let mut hub = Hub::start().await;
    let acct = hub.account().await;
    let e = leg_event(
        "keep",
        "c",
        "c",
        "new",
        None,
        did("+15550000001"),
        did("+15550000002"),
        1_700_000_000,
    );
    hub.ingest(&acct.token, std::slice::from_ref(&e)).await;
    assert_eq!(hub.terminate(), Some(0), "{}", hub.log());
    hub.restart().await;
    let again = hub.ingest(&acct.token, std::slice::from_ref(&e)).await;
    assert_eq!(
        again["duplicates"], 1,
        "the event was kept across the restart"
    );
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_the_cli_wraps_it() {
    let hub = Hub::start().await;
    let (status, _) = hub
        .call(
            "POST",
            "/admin/accounts",
            Some("wrong"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, out) = hub
        .call(
            "POST",
            "/admin/accounts",
            Some(ADMIN),
            Some(json!({"name": "chosen", "id": 4242})),
        )
        .await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["id"], 4242);
    assert!(out["token"].as_str().unwrap().starts_with("sb_api_"));
    let (status, out) = hub
        .call(
            "POST",
            "/admin/accounts",
            Some(ADMIN),
            Some(json!({"name": "again", "id": 4242})),
        )
        .await;
    assert_eq!(status, 409, "{out}");
    let (status, out) = hub
        .call(
            "POST",
            "/admin/accounts",
            Some(ADMIN),
            Some(json!({"id": 5})),
        )
        .await;
    assert_eq!(
        (status, out["@error"]["@path"].as_str()),
        (422, Some("name"))
    );

    let base = hub.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "accounts", "create", "--name", "from-cli", "--id", "777", "--url", &base,
            ])
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["id"], 777);
    let token = created["token"].as_str().unwrap();
    let (status, _) = hub
        .call(
            "GET",
            "/v4/accounts/777/integrations/events/callbacks",
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let base = hub.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "tokens",
                "create",
                "--account",
                "777",
                "--scope",
                "ingest",
                "--url",
                &base,
            ])
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(made["token"].as_str().unwrap().starts_with("sb_ingest_"));
}

#[tokio::test]
async fn a_hub_without_an_admin_token_has_no_admin_api() {
    let hub = Hub::start_with(&[("SWITCHBOARD_ADMIN_TOKEN", "")]).await;
    let (status, out) = hub
        .call(
            "POST",
            "/admin/accounts",
            Some(""),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 404, "{out}");
}

/// Every event of the account, as its sender's `uuid`s.
async fn stored_uuids(hub: &Hub, acct: &Account) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    let mut after = "0".to_string();
    loop {
        let (status, uuids, next) = log_after(hub, acct, &after).await;
        assert_eq!(status, 200);
        if next == after {
            return out;
        }
        out.extend(uuids);
        after = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_every_acknowledged_event_and_pending_delivery() {
    // Deliveries fail, then wait an hour for their next attempt: they stay pending.
    let env = [("SWITCHBOARD_RETRY_SCHEDULE", "0s,1h")];
    // `switchboard backup` copies SQLite's file (PostgreSQL is backed up with pg_dump).
    let hub = Hub::start_sqlite(&env).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    rx.answer(503);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (acked, stop, base, token) = (
            acked.clone(),
            stop.clone(),
            hub.base.clone(),
            acct.token.clone(),
        );
        tokio::spawn(async move {
            #[allow(clippy::disallowed_methods)]
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<serde_json::Value> = (0..10)
                    .map(|i| {
                        leg_event(
                            &format!("b{n}-{i}"),
                            &format!("backup-call-{n}"),
                            &format!("backup-call-{n}"),
                            "new",
                            None,
                            did("+15550000001"),
                            did("+15550000002"),
                            1_700_000_000 + i,
                        )
                    })
                    .collect();
                let r = http
                    .post(format!("{base}/ingest/phonecom"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(serde_json::Value::Array(batch.clone()).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                acked.lock().unwrap().extend(
                    batch
                        .iter()
                        .map(|e| e["uuid"].as_str().unwrap().to_string()),
                );
                n += 1;
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before: Vec<String> = acked.lock().unwrap().clone();
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("switchboard-backup.db");
    let backup = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["backup", "--data-dir"])
            .arg(hub.dir.join("data"))
            .arg("--to")
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = backup();
    let after: Vec<String> = acked.lock().unwrap().clone();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Ingest went on meanwhile, and after.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.await.unwrap();
    assert!(acked.lock().unwrap().len() > after.len(), "ingest stopped");
    // A backup never overwrites a file.
    let again = backup();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // Restored: a hub on the copy has every event acknowledged before the backup began, and
    // nothing it never acknowledged; the deliveries still to make are still to be made.
    let restored_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(restored_dir.path().join("data")).unwrap();
    std::fs::copy(&file, restored_dir.path().join("data/switchboard.db")).unwrap();
    let restored = Hub::start_on(restored_dir, &env).await;
    let there = stored_uuids(&restored, &acct).await;
    let missing = before.iter().filter(|u| !there.contains(*u)).count();
    assert_eq!(
        missing,
        0,
        "of {} acknowledged before, {} there: {said}",
        before.len(),
        there.len()
    );
    let acked_all: std::collections::HashSet<String> =
        acked.lock().unwrap().iter().cloned().collect();
    assert!(there.iter().all(|u| acked_all.contains(u)));
    assert!(there.len() >= before.len() && there.len() <= after.len());
    let pending: i64 = said
        .split(" and ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(pending > 0, "{said}");
    let log = get(&restored, &acct, "/integrations/events/callbacks?limit=1").await;
    let cb = log["items"][0]["id"].as_i64().unwrap();
    let mut waiting = 0;
    let mut offset = 0;
    loop {
        let page = get(
            &restored,
            &acct,
            &format!("/integrations/events/callbacks/{cb}/deliveries?limit=500&offset={offset}"),
        )
        .await;
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        waiting += items
            .iter()
            .filter(|d| {
                !matches!(
                    d["status"].as_str(),
                    Some("succeeded" | "dead" | "suppressed" | "expired")
                )
            })
            .count();
        offset += items.len();
    }
    assert_eq!(waiting as i64, pending, "{said}");
}

/// The value of a metric in Prometheus text: the sum over the series whose labels include
/// every one of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.split(',').any(|p| p == format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

async fn scrape(hub: &Hub) -> String {
    let r = hub
        .http
        .get(format!("{}/metrics", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_what_the_hub_did() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    let limited = Receiver::start().await;
    listen(&hub, &acct, &ok.url, &[&["call"]]).await;
    listen(&hub, &acct, &failing.url, &[&["call"]]).await;
    listen_with(
        &hub,
        &acct,
        json!({"config": {"url": limited.url, "rate-limit": {"number": 1, "period": 3600}}}),
        &[&["call"]],
    )
    .await;
    failing.answer(500);
    let before = scrape(&hub).await;
    let events = inbound_call("metered", "+15550000001", "+15550000002");
    let n = events.len();
    hub.ingest(&acct.token, &events).await;
    hub.ingest(&acct.token, &events[..1]).await; // a duplicate
    let (status, _) = hub
        .ingest_raw("phonecom", &acct.token, "application/json", "{not json")
        .await;
    assert_eq!(status, 400);
    ok.wait_events(n, 10).await;
    // The failing receiver's deliveries: three attempts each (0 s, 200 ms, 200 ms), then dead.
    failing.wait_events(3 * n, 10).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await; // the call log's grace
    let after = scrape(&hub).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    let ingested = "switchboard_events_ingested_total";
    assert_eq!(
        delta(
            ingested,
            &[("dialect", "phonecom"), ("outcome", "accepted")]
        ),
        n as f64
    );
    assert_eq!(
        delta(
            ingested,
            &[("dialect", "phonecom"), ("outcome", "duplicate")]
        ),
        1.0
    );
    assert_eq!(
        delta(ingested, &[("dialect", "phonecom"), ("outcome", "refused")]),
        1.0
    );
    let deliveries = "switchboard_deliveries_total";
    // The call's events, and its call log to the two listeners that take it (all but the
    // rate-limited one's first event are suppressed).
    let succeeded = delta(
        deliveries,
        &[("outcome", "succeeded"), ("status_class", "2xx")],
    );
    assert!(succeeded >= (n + 1) as f64, "{succeeded}\n{after}");
    assert!(
        delta(
            deliveries,
            &[("outcome", "failed_attempt"), ("status_class", "5xx")]
        ) >= (2 * n) as f64
    );
    assert!(delta(deliveries, &[("outcome", "dead"), ("status_class", "5xx")]) >= n as f64);
    assert!(delta(deliveries, &[("outcome", "suppressed")]) >= (n - 1) as f64);
    assert_eq!(
        delta("switchboard_call_logs_emitted_total", &[]),
        1.0,
        "{after}"
    );
    assert!(
        metric(
            &after,
            "switchboard_ingest_request_duration_seconds_count",
            &[("dialect", "phonecom")]
        ) >= 3.0
    );
    assert!(metric(&after, "switchboard_writer_transaction_seconds_count", &[]) > 0.0);
    assert!(metric(&after, "switchboard_delivery_latency_seconds_count", &[]) >= n as f64);
    assert!(metric(&after, "switchboard_database_bytes", &[]) > 0.0);
    assert!(after.contains("switchboard_calls_in_progress"));
    assert!(after.contains("switchboard_delivery_backlog_rows"));
    // No label names an account, a listener or a URL.
    assert!(!after.contains(&acct.id.to_string()) && !after.contains("127.0.0.1"));
}

/// The senders' `uuid`s of the account's events, and the cursor after the last.
async fn log_after(hub: &Hub, acct: &Account, after: &str) -> (u16, Vec<String>, String) {
    let (status, page) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/events?after={after}&limit=500", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    let uuids = page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["fact"]["raw"]["uuid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let next = page["next_cursor"].as_str().unwrap_or_default().to_string();
    (status, uuids, next)
}

#[tokio::test]
async fn what_is_past_its_retention_is_pruned_and_an_older_cursor_is_told_so() {
    let hub = Hub::start_with(&[
        ("SWITCHBOARD_EVENT_RETENTION", "2s"),
        ("SWITCHBOARD_CALL_RETENTION", "2s"),
        ("SWITCHBOARD_DELIVERY_RETENTION", "2s"),
        ("SWITCHBOARD_PRUNE_EVERY", "200ms"),
        ("SWITCHBOARD_FINALIZE_GRACE", "100ms"),
    ])
    .await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    let call = |name: &str| -> Vec<serde_json::Value> {
        ["new", "connecting", "connected", "completed"]
            .iter()
            .enumerate()
            .map(|(i, state)| {
                leg_event(
                    &format!("{name}-{i}"),
                    name,
                    name,
                    state,
                    (*state == "completed").then_some("success"),
                    did("+15550000001"),
                    did("+15550000002"),
                    // Times a moment ago: the call ended before it was sent.
                    1_699_999_990 + i as i64,
                )
            })
            .collect()
    };
    let old = call("old-call");
    hub.ingest(&acct.token, &old).await;
    rx.wait_events(old.len(), 10).await;
    let (_, uuids, _) = log_after(&hub, &acct, "0").await;
    assert!(uuids.contains(&"old-call-0".to_string()));
    // A reader half-way through the old call's events.
    let halfway = get(&hub, &acct, "/events?after=0&limit=2").await["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let old_call = get(&hub, &acct, "/calls?limit=1").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Past the retention, the old call's events, its deliveries and the call go.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, uuids, _) = log_after(&hub, &acct, "0").await;
        let calls = get(&hub, &acct, "/calls").await;
        if uuids.is_empty() && calls["total"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not pruned: {uuids:?} {calls}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // What is new stays; nothing of the old call is left anywhere.
    let new = call("new-call");
    hub.ingest(&acct.token, &new).await;
    let (_, uuids, _) = log_after(&hub, &acct, "0").await;
    assert_eq!(
        uuids,
        ["new-call-0", "new-call-1", "new-call-2", "new-call-3"]
    );
    let (status, _) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls/{old_call}", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls/old-call", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 404, "the call's aliases are gone too");
    let cb = get(&hub, &acct, "/integrations/events/callbacks").await["items"][0]["id"]
        .as_i64()
        .unwrap();
    rx.wait_events(old.len() + new.len(), 10).await;
    let deliveries = get(
        &hub,
        &acct,
        &format!("/integrations/events/callbacks/{cb}/deliveries?limit=500"),
    )
    .await;
    assert!(
        deliveries["total"].as_i64().unwrap() <= new.len() as i64 + 1,
        "{deliveries}"
    );
    // A cursor from before the pruning is told it is too old, and where to go on from.
    let (status, err) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/events?after={halfway}", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 410, "{err}");
    assert_eq!(err["@error"]["@path"], "after");
    assert!(err["@error"]["@message"]
        .as_str()
        .unwrap()
        .contains("event_retention"));
    // So is a live stream resumed from there.
    let r = hub
        .http
        .get(format!("{}/v4/accounts/{}/stream", hub.base, acct.id))
        .bearer_auth(&acct.token)
        .header("Last-Event-ID", &halfway)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
}

#[tokio::test]
async fn an_event_still_to_be_delivered_outlives_its_retention() {
    let hub = Hub::start_with(&[
        ("SWITCHBOARD_EVENT_RETENTION", "1s"),
        ("SWITCHBOARD_DELIVERY_RETENTION", "1s"),
        ("SWITCHBOARD_PRUNE_EVERY", "200ms"),
        ("SWITCHBOARD_RETRY_SCHEDULE", "0s,1h"),
    ])
    .await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    rx.answer(503);
    let events = inbound_call("owed", "+15550000001", "+15550000002");
    hub.ingest(&acct.token, &events).await;
    rx.wait_events(1, 10).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // Its first attempt failed and the next is an hour away: the events wait, kept.
    let (_, uuids, _) = log_after(&hub, &acct, "0").await;
    assert_eq!(uuids.len(), events.len(), "{uuids:?}");
}

#[tokio::test]
async fn erasing_a_number_leaves_nothing_that_mentions_it() {
    let hub = Hub::start_with(&[("SWITCHBOARD_FINALIZE_GRACE", "100ms")]).await;
    let acct = hub.account().await;
    let other = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    let mut mine = inbound_call("erase-me", "+15551234567", "+15550000002");
    mine.extend(inbound_call("keep-me", "+15559990000", "+15550000002"));
    // A message naming the number only in its text, as the sender wrote it.
    mine.push(json!({"uuid": "m-erase", "data_type": "message",
        "data": {"uuid": "msg-erase", "direction": "inbound", "type": "sms",
                 "from": {"type": "did", "id": "+15558880000"},
                 "to": [{"type": "did", "id": "+15550000002"}],
                 "message": "call me back on +1 (555) 123-4567"}}));
    hub.ingest(&acct.token, &mine).await;
    hub.ingest(
        &other.token,
        &inbound_call("theirs", "+15551234567", "+15550000003"),
    )
    .await;
    rx.wait_events(mine.len() - 1, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await; // the call logs
    let before = get(&hub, &acct, "/events?limit=500").await;
    let text = before.to_string();
    assert!(text.contains("5551234567"));

    let (status, err) = hub
        .call(
            "POST",
            "/admin/erase",
            Some(ADMIN),
            Some(json!({"number": "123"})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("number"))
    );
    let (status, err) = hub
        .call(
            "POST",
            "/admin/erase",
            Some(&acct.token),
            Some(json!({"number": "+15551234567"})),
        )
        .await;
    assert_eq!(status, 401, "{err}");
    let (status, out) = hub
        .call(
            "POST",
            "/admin/erase",
            Some(ADMIN),
            Some(json!({"number": "+1 555 123 4567", "account": acct.id})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    // The call's events, its call log, the message; their deliveries; the call.
    assert!(out["erased"]["events"].as_i64().unwrap() >= 12, "{out}");
    assert!(out["erased"]["deliveries"].as_i64().unwrap() >= 11, "{out}");
    assert_eq!(out["erased"]["calls"], 1, "{out}");
    assert!(hub.log().contains("erased a phone number"));

    // Nothing of the account mentions it: its events, calls and deliveries.
    let after = get(&hub, &acct, "/events?limit=500").await.to_string();
    assert!(!after.contains("5551234567"), "{after}");
    assert!(after.contains("keep-me"), "the other call stays");
    let calls = get(&hub, &acct, "/calls").await;
    assert!(!calls.to_string().contains("5551234567"), "{calls}");
    assert_eq!(calls["total"], 1);
    let (status, _) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls/erase-me", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 404, "its aliases are gone");
    let cb = get(&hub, &acct, "/integrations/events/callbacks").await["items"][0]["id"]
        .as_i64()
        .unwrap();
    let log = get(
        &hub,
        &acct,
        &format!("/integrations/events/callbacks/{cb}/deliveries?limit=500"),
    )
    .await;
    assert!(!log.to_string().contains("5551234567"));
    // Another account was not asked about.
    let theirs = get(&hub, &other, "/events?limit=500").await.to_string();
    assert!(theirs.contains("5551234567"));
}

#[tokio::test]
async fn erasing_an_account_removes_it_and_everything_of_it() {
    let hub = Hub::start_with(&[("SWITCHBOARD_FINALIZE_GRACE", "100ms")]).await;
    let gone = hub.account().await;
    let stays = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &gone, &rx.url, &[&["call"]]).await;
    listen(&hub, &stays, &rx.url, &[&["call"]]).await;
    let events = inbound_call("doomed", "+15551112222", "+15550000002");
    hub.ingest(&gone.token, &events).await;
    hub.ingest(
        &stays.token,
        &inbound_call("kept", "+15553334444", "+15550000002"),
    )
    .await;
    rx.wait_events(2 * events.len(), 10).await;
    let (status, out) = hub
        .call(
            "DELETE",
            &format!("/admin/accounts/{}", gone.id),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert!(
        out["erased"]["events"].as_i64().unwrap() >= events.len() as i64,
        "{out}"
    );
    assert_eq!(out["erased"]["calls"], 1, "{out}");
    assert!(
        out["erased"]["deliveries"].as_i64().unwrap() >= events.len() as i64,
        "{out}"
    );
    // Its token no longer works, the account is not there, and a second erasure finds none.
    let (status, _) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls", gone.id),
            Some(&gone.token),
            None,
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = hub
        .ingest_raw(
            "phonecom",
            &gone.token,
            "application/json",
            events[0].to_string(),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = hub
        .call(
            "GET",
            &format!("/admin/accounts/{}", gone.id),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = hub
        .call(
            "DELETE",
            &format!("/admin/accounts/{}", gone.id),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // The other account is whole.
    let calls = get(&hub, &stays, "/calls").await;
    assert_eq!(calls["total"], 1);
    let listeners = get(&hub, &stays, "/integrations/events/listeners").await;
    assert_eq!(listeners["total"], 1);
}

/// The spans in what an OTLP/HTTP JSON collector received: (name, attributes by key).
fn spans_in(
    got: &[Received],
) -> Vec<(String, std::collections::HashMap<String, serde_json::Value>)> {
    let mut out = Vec::new();
    for r in got {
        for rs in r.body["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .map(|a| a["value"]["stringValue"].clone());
            assert_eq!(service, Some(json!("switchboard")), "{rs}");
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for span in ss["spans"].as_array().into_iter().flatten() {
                    let attributes = span["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            let v = &a["value"];
                            let value = v
                                .get("stringValue")
                                .cloned()
                                .or_else(|| {
                                    // OTLP JSON writes 64-bit integers as strings or numbers.
                                    v.get("intValue").map(|i| match i {
                                        serde_json::Value::String(s) => {
                                            json!(s.parse::<i64>().unwrap())
                                        }
                                        other => other.clone(),
                                    })
                                })
                                .unwrap_or_else(|| v.clone());
                            (a["key"].as_str().unwrap().to_string(), value)
                        })
                        .collect();
                    out.push((span["name"].as_str().unwrap().to_string(), attributes));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn ingest_requests_and_delivery_attempts_are_traced_to_an_otlp_collector() {
    let collector = Receiver::start().await;
    let endpoint = collector.url.trim_end_matches("/hook").to_string();
    let hub = Hub::start_with(&[
        ("SWITCHBOARD_OTLP_ENDPOINT", endpoint.as_str()),
        ("SWITCHBOARD_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    let events = inbound_call("traced", "+15550001111", "+15550002222");
    let answer = hub.ingest(&acct.token, &events).await;
    let ids: Vec<String> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let delivered = rx.wait_events(1, 20).await;
    let delivered_ids: Vec<String> = delivered
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let spans = spans_in(&collector.all());
        let ingest = spans.iter().find(|(name, a)| {
            name == "ingest"
                && a.get("event_id")
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| ids.iter().all(|id| v.contains(id.as_str())))
        });
        let attempts: Vec<_> = spans
            .iter()
            .filter(|(name, a)| {
                name == "delivery.attempt"
                    && a.get("event_id")
                        .is_some_and(|v| delivered_ids.iter().any(|id| v == id))
            })
            .collect();
        if let (Some((_, ingest)), false) = (ingest, attempts.is_empty()) {
            assert_eq!(ingest["http.response.status_code"], 202);
            assert_eq!(ingest["events"], json!(ids.len()));
            assert_eq!(ingest["dialect"], "phonecom");
            let (_, attempt) = attempts[0];
            assert_eq!(attempt["http.response.status_code"], 200);
            assert_eq!(attempt["outcome"], "succeeded");
            assert_eq!(attempt["attempt"], 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ingest and delivery spans for {ids:?} in {spans:?}\n{}",
            hub.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[test]
fn a_trace_endpoint_that_is_not_an_http_url_stops_the_hub_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, named) in [
        (
            "SWITCHBOARD_OTLP_ENDPOINT",
            "127.0.0.1:4317",
            "otlp_endpoint",
        ),
        ("SWITCHBOARD_OTLP_PROTOCOL", "grpc", "otlp_protocol"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env(key, value)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}={value}: {said}");
        assert!(said.contains(named), "{key}={value}: {said}");
    }
}
