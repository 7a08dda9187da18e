//! The console's pages over HTTP: who may see what. (What a person sees, in a browser, is
//! `crates/cli/tests/console/test_console.py`, run by `scripts/console-test`.)

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn the_console_page_is_served_whole_from_the_binary() {
    let hub = Hub::start().await;
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let resp = reqwest::get(format!("{}{path}", hub.base)).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains("https://"),
            "{path} fetches nothing from elsewhere"
        );
    }
}

#[tokio::test]
async fn an_accounts_pages_are_its_own_tokens_or_the_admins() {
    let hub = Hub::start().await;
    let a = hub.account().await;
    let b = hub.account().await;
    let live = |acct: i64| format!("/console/a/{acct}/live");
    let (status, page) = hub.call("GET", &live(a.id), Some(&a.token), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.as_str().unwrap().contains("No call is in progress"));
    // Another account's token: as if the account did not exist.
    let (status, body) = hub.call("GET", &live(a.id), Some(&b.token), None).await;
    assert_eq!(status, 404, "{body}");
    // No token, a wrong one: the API's envelope.
    let (status, body) = hub.call("GET", &live(a.id), None, None).await;
    assert_eq!(
        (status, body["@error"]["@httpStatusCode"].clone()),
        (401, json!(401))
    );
    let (status, _) = hub
        .call("GET", &live(a.id), Some("sb_api_9_nope"), None)
        .await;
    assert_eq!(status, 401);
    // The admin token sees any account that exists, and no other.
    let (status, _) = hub.call("GET", &live(b.id), Some(ADMIN), None).await;
    assert_eq!(status, 200);
    let (status, _) = hub.call("GET", &live(987_654), Some(ADMIN), None).await;
    assert_eq!(status, 404);
    // An ingest token may only send events.
    let (status, ingest) = hub
        .call(
            "POST",
            &format!("/admin/accounts/{}/tokens", a.id),
            Some(ADMIN),
            Some(json!({"scope": "ingest"})),
        )
        .await;
    assert_eq!(status, 201);
    let token = ingest["token"].as_str().unwrap();
    let (status, _) = hub.call("GET", &live(a.id), Some(token), None).await;
    assert_eq!(status, 403);
    let (status, _) = hub.call("GET", "/console/whoami", Some(token), None).await;
    assert_eq!(status, 403);
    let (status, who) = hub
        .call("GET", "/console/whoami", Some(&a.token), None)
        .await;
    assert_eq!((status, who["account"].as_i64()), (200, Some(a.id)));
    let (_, who) = hub.call("GET", "/console/whoami", Some(ADMIN), None).await;
    assert_eq!(who["admin"], true);
}

#[tokio::test]
async fn the_csv_export_holds_exactly_the_filtered_calls() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    for (i, (from, to)) in [
        ("+15550000001", "+15550000002"),
        ("+15550000003", "+15550000004"),
    ]
    .iter()
    .enumerate()
    {
        hub.ingest(&acct.token, &inbound_call(&format!("csv{i}"), from, to))
            .await;
    }
    let resp = hub
        .http
        .get(format!(
            "{}/console/a/{}/history.csv?number=%2B15550000003",
            hub.base, acct.id
        ))
        .bearer_auth(&acct.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("calls.csv"));
    let text = resp.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id,started_at,"), "{text}");
    let (_, listed) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}/calls?number=%2B15550000003", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    let ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let want: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, want);
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn the_consoles_configuration_requests_are_the_apis_as_the_viewer() {
    let hub = Hub::start().await;
    let a = hub.account().await;
    let b = hub.account().await;
    let api = |acct: i64, rest: &str| format!("/console/a/{acct}/api/{rest}");
    // The admin acts for the account it looks at; the API checks and answers as ever.
    let (status, body) = hub
        .call(
            "POST",
            &api(a.id, "profiles"),
            Some(ADMIN),
            Some(json!({"name": "Ops"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["@error"]["@path"], "support_email");
    let (status, made) = hub
        .call(
            "POST",
            &api(a.id, "profiles"),
            Some(ADMIN),
            Some(json!({"name": "Ops", "support_email": "ops@example.org"})),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let (_, listed) = hub
        .call("GET", &events_api(&a, "/profiles"), Some(&a.token), None)
        .await;
    assert_eq!(listed["total"], 1);
    // Another account's token reaches nothing of it.
    let (status, _) = hub
        .call("GET", &api(a.id, "profiles"), Some(&b.token), None)
        .await;
    assert_eq!(status, 404);
    // Only the events API is behind it.
    let (status, _) = hub
        .call(
            "GET",
            &api(a.id, "../../../admin/accounts"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // An extension-bound token works at its extension.
    let (_, ext) = hub
        .call(
            "POST",
            &format!("/admin/accounts/{}/tokens", a.id),
            Some(ADMIN),
            Some(json!({"scope": "api", "extension_id": 42})),
        )
        .await;
    let ext = ext["token"].as_str().unwrap();
    let (status, made) = hub
        .call(
            "POST",
            &api(a.id, "profiles"),
            Some(ext),
            Some(json!({"name": "Desk", "support_email": "desk@example.org"})),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["extension_id"], 42);
}
