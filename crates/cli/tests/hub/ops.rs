//! Health, readiness, graceful shutdown and the CLI.

use crate::support::*;
use serde_json::json;
use std::process::Command;

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
