//! What only a hub on PostgreSQL has to show, whatever store the rest of the suite runs on:
//! a store URL that is wrong or names a database out of reach stops it with a clear error,
//! and a database that goes away while it runs makes it unready and answer 503, until the
//! database is back, when it carries on by itself with nothing acknowledged lost. An
//! installation moves from SQLite to PostgreSQL with everything it holds.

use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_wrong_or_unreachable_store_stops_the_hub_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (url, says) in [
        (
            "mysql://root@127.0.0.1/switchboard",
            "store: expected a PostgreSQL URL",
        ),
        // Nothing listens on port 1; the password is never shown.
        (
            "postgres://switchboard:hunter2secret@127.0.0.1:1/switchboard",
            "127.0.0.1:1/switchboard cannot be reached",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--store", url])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: {said}");
        assert!(said.contains(says), "{url}: {said}");
        assert!(!said.contains("hunter2secret"), "{url}: {said}");
    }
}

#[tokio::test]
async fn a_node_name_in_use_is_refused_and_a_bad_one_is_named() {
    let hub = Hub::start_postgres(&[("SWITCHBOARD_NODE_ID", "node-a")]).await;
    let (_, url) = hub.database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (node, says) in [
        ("node-a", "\"node-a\" is the name of a node running"),
        ("node a", "node_id: expected 1 to 64 printable characters"),
    ] {
        let said = refused(
            Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(dir.path())
                .args(["--store", url])
                .env("SWITCHBOARD_NODE_ID", node),
        );
        assert!(said.contains(says), "{node}: {said}");
    }
    // A second process on the first one's data dir takes the name kept there: refused too.
    let mut named = Hub::start_postgres(&[]).await;
    let (_, url) = named.database().unwrap();
    let said = refused(
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(named.dir.join("data"))
            .args(["--store", url]),
    );
    assert!(said.contains("is the name of a node running"), "{said}");
    // Once the first process is gone, its name is free again: it restarts under it.
    named.kill();
    named.restart().await;
}

/// Runs `serve` and expects it to stop at once with an error; returns what it said.
fn refused(serve: &mut Command) -> String {
    let mut child = serve
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the hub started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{said}");
    said
}

async fn status_of(hub: &Hub, path: &str) -> u16 {
    hub.http
        .get(format!("{}{path}", hub.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Runs statements on the PostgreSQL server the tests use (as its administrator).
async fn on_server(sql: &str) {
    let url = crate::pg::server_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
}

#[tokio::test]
async fn a_database_that_goes_away_makes_the_hub_unready_and_it_recovers_by_itself() {
    let hub = Hub::start_postgres(&[]).await;
    let (name, _) = hub.database().unwrap();
    let name = name.to_string();
    let acct = hub.account().await;
    hub.ingest(
        &acct.token,
        &inbound_call("before", "+15550000091", "+15550000002"),
    )
    .await;
    assert_eq!(status_of(&hub, "/readyz").await, 200);

    // The database refuses the hub: no new connections, and those it had are cut.
    on_server(&format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
    ))
    .await;
    let (status, body) = hub
        .ingest_raw(
            "phonecom",
            &acct.token,
            "application/json",
            serde_json::Value::Array(inbound_call("during", "+15550000092", "+15550000002"))
                .to_string(),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("cannot be reached"), "{body}");
    assert_eq!(status_of(&hub, "/readyz").await, 503);
    assert_eq!(
        status_of(&hub, "/healthz").await,
        200,
        "the process itself is fine"
    );

    // Back: the hub takes events again without a restart, and lost nothing it acknowledged.
    on_server(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_of(&hub, "/readyz").await != 200 {
        assert!(
            Instant::now() < deadline,
            "the hub never became ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hub.ingest(
        &acct.token,
        &inbound_call("after", "+15550000093", "+15550000002"),
    )
    .await;
    let calls = get(&hub, &acct, "/calls").await;
    let listed = calls.to_string();
    assert_eq!(calls["items"].as_array().unwrap().len(), 2, "{calls}");
    assert!(
        listed.contains("15550000091") && listed.contains("15550000093"),
        "{calls}"
    );
    assert!(
        !listed.contains("15550000092"),
        "refused, so not stored: {calls}"
    );
}

/// Every page of a list, by `?limit=&offset=`.
async fn all_of(hub: &Hub, acct: &Account, path: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    loop {
        let page = get(
            hub,
            acct,
            &format!("{path}?limit=100&offset={}", items.len()),
        )
        .await;
        let got = page["items"].as_array().unwrap().clone();
        if got.is_empty() {
            return items;
        }
        items.extend(got);
    }
}

#[tokio::test]
async fn an_installation_moves_from_sqlite_to_postgres_with_everything_it_holds() {
    // Deliveries to one receiver fail and wait an hour for their next attempt: they are still
    // to be made when the installation moves.
    let env = [
        ("SWITCHBOARD_RETRY_SCHEDULE", "0s,1h"),
        ("SWITCHBOARD_FINALIZE_GRACE", "0s"),
    ];
    let mut old = Hub::start_sqlite(&env).await;
    let acct = old.account().await;
    let (down, logs) = (Receiver::start().await, Receiver::start().await);
    listen(&old, &acct, &down.url, &[&["call"]]).await;
    listen(&old, &acct, &logs.url, &[&["call-log"]]).await;
    down.answer(500);
    for n in 0..3 {
        old.ingest(
            &acct.token,
            &inbound_call(
                &format!("moving-{n}"),
                &format!("+1555000040{n}"),
                "+15550000002",
            ),
        )
        .await;
    }
    logs.wait_events(3, 30).await;
    let calls_before = get(&old, &acct, "/calls").await;
    let log_before = get(&old, &acct, "/events?limit=500").await;
    let callbacks = all_of(&old, &acct, "/integrations/events/callbacks").await;
    let down_cb = callbacks
        .iter()
        .find(|c| c["config"]["url"] == down.url.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let deliveries_path = format!("/integrations/events/callbacks/{down_cb}/deliveries");
    let deliveries_before = all_of(&old, &acct, &deliveries_path).await;
    assert!(deliveries_before
        .iter()
        .any(|d| d["status"] == "failed-retrying"));
    old.terminate();

    let database = crate::pg::FreshDatabase::new("moved").await;
    let migrate = || {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["migrate", "--from-sqlite"])
            .arg(old.dir.join("data"))
            .args(["--to", &database.url])
            .output()
            .unwrap()
    };
    let out = migrate();
    let (said, progress) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{said}{progress}");
    assert!(
        said.contains("copied") && said.contains("3 calls"),
        "{said}"
    );
    assert!(
        progress.contains("events: 0 of") && progress.contains("outbox:"),
        "{progress}"
    );
    // A database that holds something is refused.
    let again = migrate();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The hub on the copy: the same token, the same calls, the same log in the same order
    // (so cursors handed out stay good), the same deliveries still to be made.
    let moved = Hub::start_on_database(database, &env).await;
    assert_eq!(get(&moved, &acct, "/calls").await, calls_before);
    let log_after = get(&moved, &acct, "/events?limit=500").await;
    assert_eq!(log_after["items"], log_before["items"]);
    let cursor = log_before["next_cursor"].as_str().unwrap();
    let rest = get(&moved, &acct, &format!("/events?after={cursor}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 0, "{rest}");
    assert_eq!(
        all_of(&moved, &acct, &deliveries_path).await,
        deliveries_before
    );
    // It goes on from there: new events after the old ones, resources with new ids.
    moved
        .ingest(
            &acct.token,
            &inbound_call("after-moving", "+15550000409", "+15550000002"),
        )
        .await;
    let rest = get(&moved, &acct, &format!("/events?after={cursor}")).await;
    assert!(!rest["items"].as_array().unwrap().is_empty(), "{rest}");
    let (status, made) = callback(
        &moved,
        &acct,
        serde_json::json!({"config": {"url": logs.url}}),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    assert!(made["id"].as_i64().unwrap() > down_cb);
}
