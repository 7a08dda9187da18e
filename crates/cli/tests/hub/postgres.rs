//! What only a hub on PostgreSQL has to show, whatever store the rest of the suite runs on:
//! a store URL that is wrong or names a database out of reach stops it with a clear error,
//! and a database that goes away while it runs makes it unready and answer 503, until the
//! database is back, when it carries on by itself with nothing acknowledged lost.

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
