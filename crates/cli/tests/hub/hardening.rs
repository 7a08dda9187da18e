//! Odd input at the edges: ids that only look like ids, tokens that are nearly right, bodies
//! broken between their fields.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn ids_in_paths_are_read_strictly() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (status, cb) = callback(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    assert_eq!(status, 200, "{cb}");
    let id = cb["id"].as_i64().unwrap();
    let get = |path: String| {
        let hub = &hub;
        let token = acct.token.clone();
        async move { hub.call("GET", &path, Some(&token), None).await.0 }
    };
    assert_eq!(
        get(events_api(&acct, &format!("/callbacks/{id}"))).await,
        200
    );
    for odd in [
        format!("+{id}"),
        format!("0{id}"),
        format!("{id}%20"),
        format!("-{id}"),
    ] {
        assert_eq!(
            get(events_api(&acct, &format!("/callbacks/{odd}"))).await,
            404,
            "{odd}"
        );
    }
    // The account's own id too.
    let path = format!("/v4/accounts/+{}/integrations/events/callbacks", acct.id);
    assert_eq!(get(path).await, 404);
    // And an extension's: a negative number names no extension (it was read as one).
    for odd in ["-1", "+1", "01"] {
        let path = format!(
            "/v4/accounts/{}/extensions/{odd}/integrations/events/callbacks",
            acct.id
        );
        assert_eq!(get(path).await, 404, "extension {odd}");
    }
}

#[tokio::test]
async fn the_admin_token_must_be_exactly_right() {
    let hub = Hub::start().await;
    for wrong in [
        &ADMIN[..ADMIN.len() - 1],
        &format!("{ADMIN}x"),
        "t",
        &ADMIN.to_uppercase(),
    ] {
        let (status, body) = hub
            .call(
                "POST",
                "/admin/accounts",
                Some(wrong),
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(status, 401, "{wrong}: {body}");
        assert!(body["@error"]["@message"].is_string());
    }
    let (status, _) = hub
        .call(
            "POST",
            "/admin/accounts",
            Some(ADMIN),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_body_broken_between_its_fields_names_where_it_broke() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let (status, err) = hub
        .ingest_raw(
            "phonecom",
            &acct.token,
            "application/json",
            r#"{"uuid":"x","data_type":"call","data":{"uuid":"c","event_leg":{"state":"new" "x":1}}}"#,
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["@error"]["@path"], "data.event_leg");
    assert!(!err.to_string().contains('?'), "{err}");
}

#[tokio::test]
async fn a_compressed_body_is_refused_as_such() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    for (path, body) in [
        ("/ingest/phonecom".to_string(), "{}".to_string()),
        (events_api(&acct, "/callbacks"), "{}".to_string()),
    ] {
        let resp = hub
            .http
            .post(format!("{}{path}", hub.base))
            .bearer_auth(&acct.token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 415, "{path}");
        let err: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert_eq!(err["@error"]["@path"], "Content-Encoding", "{err}");
    }
}

#[tokio::test]
async fn a_request_over_the_time_limit_answers_408_in_the_envelope() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = Hub::start_with(&[("SWITCHBOARD_REQUEST_TIMEOUT", "200ms")]).await;
    let acct = hub.account().await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A body that never finishes coming.
    let head = format!(
        "POST /ingest/phonecom HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"uuid\":",
        acct.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let err: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(err["@error"]["@httpStatusCode"], 408);
}

#[tokio::test]
async fn ids_and_numbers_longer_than_any_vendors_are_refused_by_field() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let long = "x".repeat(1000);
    let mut event = leg_event(
        "long-1",
        &long,
        &long,
        "new",
        None,
        did("+15550000001"),
        did("+15550000002"),
        1_700_000_000,
    );
    // Each refused with 422, naming the field.
    let refused_at = |dialect: &'static str, body: serde_json::Value| {
        let (hub, token) = (&hub, acct.token.clone());
        async move {
            let (status, err) = hub
                .ingest_raw(dialect, &token, "application/json", body.to_string())
                .await;
            assert_eq!(status, 422, "{err}");
            err["@error"]["@path"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert_eq!(refused_at("phonecom", event.clone()).await, "data.uuid");
    event["data"]["uuid"] = json!("short");
    event["data"]["event_leg"]["uuid"] = json!("short");
    event["data"]["event_leg"]["from"]["id"] = json!(format!("+1{}", "5".repeat(300)));
    assert_eq!(refused_at("phonecom", event).await, "data.event_leg");
    assert_eq!(
        refused_at("tel4vn", json!({"call_id": long, "state": "ringing"})).await,
        "call_id"
    );
    // Nothing of it was kept.
    let (_, events) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/events", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["fact"]["kind"] == "api.error"),
        "{events}"
    );
}

#[tokio::test]
async fn events_with_odd_json_are_served_as_they_came_not_hollow() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let event = leg_event(
        "odd-1",
        "odd",
        "odd",
        "new",
        None,
        did("+15550000001"),
        did("+15550000002"),
        1_700_000_000,
    );
    // Fields the hub does not read, holding what a JSON value cannot: a number beyond f64,
    // a lone surrogate, nesting deeper than 128.
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let text = event.to_string().replacen(
        '{',
        &format!(r#"{{"huge": 1e999, "lone": "\ud800", "deep": {deep}, "#),
        1,
    );
    let (status, out) = hub
        .ingest_raw("phonecom", &acct.token, "application/json", text.clone())
        .await;
    assert_eq!(status, 202, "{out}");
    let resp = hub
        .http
        .get(format!("{}/v4/accounts/{}/events", hub.base, acct.id))
        .bearer_auth(&acct.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    // The raw payload comes back as it was sent, byte for byte, beside the event's fields.
    assert!(body.contains(&text), "{body}");
    assert!(body.contains(r#""cursor":"#) && body.contains(r#""kind":"call.leg.created""#));
}

/// An api token bound to an extension of the account.
async fn extension_token(hub: &Hub, acct: &Account, ext: i64) -> String {
    let (status, tok) = hub
        .call(
            "POST",
            &format!("/admin/accounts/{}/tokens", acct.id),
            Some(ADMIN),
            Some(json!({"scope": "api", "extension_id": ext})),
        )
        .await;
    assert_eq!(status, 201, "{tok}");
    tok["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_extension_cannot_name_another_extensions_resources() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (t101, t102) = (
        extension_token(&hub, &acct, 101).await,
        extension_token(&hub, &acct, 102).await,
    );
    let api = |ext: i64, rest: &str| {
        format!(
            "/v4/accounts/{}/extensions/{ext}/integrations/events{rest}",
            acct.id
        )
    };
    // Extension 102's callback and profile.
    let (status, theirs) = hub
        .call(
            "POST",
            &api(102, "/callbacks"),
            Some(&t102),
            Some(json!({"config": {"url": rx.url, "headers": [{"name": "X-Secret", "value": "102's"}]}})),
        )
        .await;
    assert_eq!(status, 200, "{theirs}");
    let (status, profile) = hub
        .call(
            "POST",
            &api(102, "/profiles"),
            Some(&t102),
            Some(json!({"name": "102's", "support_email": "ops102@example.org"})),
        )
        .await;
    assert_eq!(status, 200, "{profile}");
    // Extension 101 names them: a listener on the callback, a callback falling back to it or
    // reporting to the profile, the express create with either. Each is refused by its field.
    let (_, mine) = hub
        .call(
            "POST",
            &api(101, "/callbacks"),
            Some(&t101),
            Some(json!({"config": {"url": rx.url}})),
        )
        .await;
    for (path, body, field) in [
        (
            "/listeners",
            json!({"callback_id": theirs["id"]}),
            "callback_id",
        ),
        (
            "/callbacks",
            json!({"config": {"url": rx.url}, "fallback_callback_id": theirs["id"]}),
            "fallback_callback_id",
        ),
        (
            "/callbacks",
            json!({"config": {"url": rx.url}, "profile_id": profile["id"]}),
            "profile_id",
        ),
        (
            "/overview",
            json!({"callback_id": theirs["id"], ":subscriptions": [{":tags": ["call"]}]}),
            "callback_id",
        ),
    ] {
        let (status, err) = hub
            .call("POST", &api(101, path), Some(&t101), Some(body))
            .await;
        assert_eq!(status, 422, "{path}: {err}");
        assert!(
            err["@error"]["@path"]
                .as_str()
                .unwrap_or_default()
                .ends_with(field),
            "{path}: {err}"
        );
    }
    let (status, err) = hub
        .call(
            "PATCH",
            &api(101, &format!("/callbacks/{}", mine["id"])),
            Some(&t101),
            Some(json!({"fallback_callback_id": theirs["id"]})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    // Its own overview shows nothing of 102's.
    let (_, overview) = hub
        .call("GET", &api(101, "/overview"), Some(&t101), None)
        .await;
    assert!(!overview.to_string().contains("102's"), "{overview}");
}

#[tokio::test]
async fn a_full_store_answers_503_with_retry_after_fails_readiness_and_recovers() {
    // A page quota is SQLite's (PostgreSQL going away: `postgres::a_database_that_goes_away…`).
    let mut hub = Hub::start_sqlite(&[("SWITCHBOARD_MAX_DB_PAGES", "250")]).await;
    let acct = hub.account().await;
    let ready = |hub: &Hub| {
        let url = format!("{}/readyz", hub.base);
        let http = hub.http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&hub).await, 200);
    // Fill it: batches of whole calls until the store refuses one.
    let mut refused = None;
    for batch in 0..200 {
        let events: Vec<serde_json::Value> = (0..20)
            .flat_map(|c| {
                inbound_call(&format!("full-{batch}-{c}"), "+15550000081", "+15550000002")
            })
            .collect();
        let resp = hub
            .http
            .post(format!("{}/ingest/phonecom", hub.base))
            .bearer_auth(&acct.token)
            .header("content-type", "application/json")
            .body(serde_json::Value::Array(events).to_string())
            .send()
            .await
            .unwrap();
        if resp.status() != 202 {
            refused = Some((
                resp.status().as_u16(),
                resp.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string()),
                resp.text().await.unwrap(),
            ));
            break;
        }
    }
    let (status, retry_after, body) = refused.expect("the store never filled");
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() > 0));
    assert!(body.contains("storage is full"), "{body}");
    assert_eq!(ready(&hub).await, 503, "not ready while full");
    // Said once, not once a request.
    let more: Vec<serde_json::Value> = (0..20)
        .flat_map(|c| inbound_call(&format!("full-more-{c}"), "+15550000082", "+15550000002"))
        .collect();
    let refused_again = hub
        .ingest_raw(
            "phonecom",
            &acct.token,
            "application/json",
            serde_json::Value::Array(more).to_string(),
        )
        .await;
    assert_eq!(refused_again.0, 503);
    assert_eq!(hub.log().matches("the storage refuses writes").count(), 1);
    // Room again: everything resumes.
    hub.terminate();
    hub.set_env("SWITCHBOARD_MAX_DB_PAGES", "0");
    hub.restart().await;
    assert_eq!(ready(&hub).await, 200);
    hub.ingest(
        &acct.token,
        &inbound_call("after-full", "+15550000083", "+15550000002"),
    )
    .await;
}

#[tokio::test]
async fn the_hub_raises_its_open_file_limit_to_the_hard_limit() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    // Started under a soft limit of 256 files, as many systems start processes under 1 024.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 256 && exec {} serve --listen 127.0.0.1:0 --data-dir {}",
            env!("CARGO_BIN_EXE_switchboard"),
            dir.path().join("data").display()
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("switchboard listening"), "{line}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = row.split_whitespace().collect();
    // "Max open files  <soft>  <hard>  files"
    assert_eq!(fields[3], fields[4], "{row}");
    assert_ne!(fields[3], "256", "{row}");
}

#[tokio::test]
async fn a_batch_answered_with_an_error_is_never_stored_afterwards() {
    // The time limit is shorter than committing the batch takes: the hub either answers 202
    // after storing all of it, or an error having stored none of it — never 408 and stored.
    let mut hub = Hub::start_with(&[
        ("SWITCHBOARD_REQUEST_TIMEOUT", "20ms"),
        ("SWITCHBOARD_MAX_BODY", "64000000"),
    ])
    .await;
    let acct = hub.account().await;
    let calls = 1500;
    let batch: Vec<serde_json::Value> = (0..calls)
        .flat_map(|n| {
            inbound_call(
                &format!("slow-{n}"),
                &format!("+1555{n:07}"),
                "+15550009999",
            )
        })
        .collect();
    let (status_of_batch, out) = hub
        .ingest_raw(
            "phonecom",
            &acct.token,
            "application/json",
            serde_json::Value::Array(batch).to_string(),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Every other route still answers within the limit.
    let (status, _) = hub.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    // A wrong method on the ingest path is refused in the envelope, as on every path.
    let (status, err) = hub
        .call("GET", "/ingest/phonecom", Some(&acct.token), None)
        .await;
    assert_eq!(status, 405, "{err}");
    assert!(err["@error"]["@message"].is_string(), "{err}");
    // What was stored, read by the same hub with time to read it (listing 1 500 calls may
    // take a database more than 20 ms).
    hub.terminate();
    hub.set_env("SWITCHBOARD_REQUEST_TIMEOUT", "30s");
    hub.restart().await;
    let stored = get(&hub, &acct, "/calls?limit=1").await["total"].as_i64();
    match status_of_batch {
        202 => assert_eq!(stored, Some(calls), "{out}"),
        _ => assert_eq!((status_of_batch, stored), (408, Some(0)), "{out}"),
    }
}

#[tokio::test]
async fn a_call_takes_no_more_events_than_the_cap_and_a_refused_batch_stores_nothing() {
    let hub = Hub::start_with(&[("SWITCHBOARD_MAX_EVENTS_PER_CALL", "6")]).await;
    let acct = hub.account().await;
    let other = hub.account().await;
    // Eleven events of one call: its legs ringing, one after another.
    let flood: Vec<serde_json::Value> = (0..11)
        .map(|i| {
            leg_event(
                &format!("flood-{i}"),
                "flood",
                &format!("flood-leg-{i}"),
                "connecting",
                None,
                did("+15551230000"),
                did(&format!("+1555999{i:04}")),
                1_700_000_000 + i,
            )
        })
        .collect();
    hub.ingest(&acct.token, &flood[..4]).await;
    // Another call first, then three more of the flooded one: the third would be its 7th.
    let mut batch = inbound_call("bystander", "+15550000001", "+15550000002")[..1].to_vec();
    batch.extend_from_slice(&flood[4..7]);
    let (status, err) = hub
        .ingest_raw(
            "phonecom",
            &acct.token,
            "application/json",
            serde_json::Value::Array(batch).to_string(),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("[3]")),
        "{err}"
    );
    let message = err["@error"]["@message"].as_str().unwrap();
    assert!(message.contains("max_events_per_call"), "{message}");
    // Nothing of the refused batch was stored: not the other call, not the first two events.
    let calls = get(&hub, &acct, "/calls").await;
    assert_eq!(calls["total"], 1, "{calls}");
    let call_id = calls["items"][0]["id"].as_str().unwrap().to_string();
    let call = get(&hub, &acct, &format!("/calls/{call_id}")).await;
    assert_eq!(call["legs"].as_array().map(Vec::len), Some(4), "{call}");
    // The call takes what fits, and another account's calls are not limited by it.
    hub.ingest(&acct.token, &flood[4..6]).await;
    let (status, err) = hub
        .ingest_raw(
            "phonecom",
            &acct.token,
            "application/json",
            flood[6].to_string(),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("[0]")),
        "{err}"
    );
    hub.ingest(&other.token, &flood[..6]).await;
    let call = get(&hub, &acct, &format!("/calls/{call_id}")).await;
    assert_eq!(call["legs"].as_array().map(Vec::len), Some(6), "{call}");
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_connections_are_capped() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let hub = Hub::start_with(&[
        ("SWITCHBOARD_HEADER_TIMEOUT", "1s"),
        ("SWITCHBOARD_MAX_CONNECTIONS", "4"),
    ])
    .await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    // A connection that sends nothing, and one that sends its head a byte at a time too
    // slowly, are closed once the time for a request's head is up.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let _ = slow.write_all(b"X-Slow: 1\r\n").await;
    }
    assert!(closed_within(&mut idle, std::time::Duration::from_secs(3)).await);
    assert!(closed_within(&mut slow, std::time::Duration::from_secs(3)).await);
    // A kept-alive connection that goes quiet after a request is closed as well.
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut kept, std::time::Duration::from_secs(3)).await);

    // Four connections held open: a fifth is closed at once; the four are still served.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(&addr).await.unwrap();
    assert!(closed_within(&mut fifth, std::time::Duration::from_millis(500)).await);
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut held[0], &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Once they are gone, new connections are served again.
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, _) = hub.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
}
