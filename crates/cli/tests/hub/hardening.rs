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
