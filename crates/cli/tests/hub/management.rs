//! The Phone.com-compatible management API: verification, redaction, 409s, lists, isolation,
//! extension-level aliases.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_callback_is_verified_with_a_test_post_before_it_is_saved() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let (status, cb) = callback(
        &hub,
        &acct,
        json!({"config": {"url": rx.url, "headers": [{"name": "X-Custom", "value": "v"}]}}),
    )
    .await;
    assert_eq!(status, 200, "{cb}");
    let test = &rx.all()[0];
    assert_eq!(test.method, "POST");
    assert_eq!(test.body, json!({"test": 1}));
    assert_eq!(test.headers["x-custom"], "v");
    assert_eq!(cb["mode"], "HTTPS");
    assert_eq!(cb["enabled"], true);
    assert_eq!(cb["config"]["url"], rx.url.as_str());
    // The reference shows a callback's method, POST when none was given.
    assert_eq!(cb["config"]["method"], "POST");
    assert!(cb["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = cb["id"].as_i64().unwrap();

    // A URL that answers 500 is refused, saying why; nothing is saved.
    let failing = Receiver::start().await;
    failing.answer(500);
    let (status, err) = callback(&hub, &acct, json!({"config": {"url": failing.url}})).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["@error"]["@path"], "config.url");
    assert!(
        err["@error"]["@message"].as_str().unwrap().contains("500"),
        "{err}"
    );
    // 201 is fine too.
    let created = Receiver::start().await;
    created.answer(201);
    assert_eq!(
        callback(&hub, &acct, json!({"config": {"url": created.url}}))
            .await
            .0,
        200
    );
    // Nothing listens there.
    let (status, err) = callback(
        &hub,
        &acct,
        json!({"config": {"url": "http://127.0.0.1:9/x"}}),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    let (_, list) = hub
        .call(
            "GET",
            &events_api(&acct, "/callbacks"),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(list["total"], 2);

    // Changing the URL verifies again; changing the name does not.
    let path = events_api(&acct, &format!("/callbacks/{id}"));
    let (status, err) = hub
        .call(
            "PATCH",
            &path,
            Some(&acct.token),
            Some(json!({"config": {"url": failing.url}})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    let (status, cb) = hub
        .call(
            "PATCH",
            &path,
            Some(&acct.token),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(status, 200, "{cb}");
    assert_eq!(cb["name"], "renamed");
    assert_eq!(
        cb["config"]["url"],
        rx.url.as_str(),
        "the failed update changed nothing"
    );
    assert!(
        cb.get("secret").is_none(),
        "the secret is shown only at creation"
    );
}

#[tokio::test]
async fn bad_callback_fields_are_named() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let cases = [
        (json!({}), "config"),
        (json!({"config": {}}), "config.url"),
        (json!({"config": {"url": "ftp://x"}}), "config.url"),
        (
            json!({"config": {"url": rx.url, "method": "TRACE"}}),
            "config.method",
        ),
        (
            json!({"config": {"url": rx.url, "headers": [{"name": "X"}]}}),
            "config.headers[0].value",
        ),
        (
            json!({"config": {"url": rx.url, "timeout": "soon"}}),
            "config.timeout",
        ),
        (
            json!({"config": {"url": rx.url, "rate-limit": {"number": 5}}}),
            "config.rate-limit.period",
        ),
        (
            json!({"config": {"url": rx.url}, "mode": "CARRIER-PIGEON"}),
            "mode",
        ),
        (
            json!({"config": {"url": rx.url}, "enabled": "yes"}),
            "enabled",
        ),
        (
            json!({"config": {"url": rx.url}, "profile_id": 999}),
            "profile_id",
        ),
        (
            json!({"config": {"url": rx.url}, "fallback_callback_id": 999}),
            "fallback_callback_id",
        ),
    ];
    for (body, path) in cases {
        let (status, err) = callback(&hub, &acct, body.clone()).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["@error"]["@path"], path, "{body}: {err}");
    }
    let resp = hub
        .http
        .post(format!("{}{}", hub.base, events_api(&acct, "/callbacks")))
        .bearer_auth(&acct.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = hub
        .http
        .post(format!("{}{}", hub.base, events_api(&acct, "/callbacks")))
        .bearer_auth(&acct.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
}

#[tokio::test]
async fn authorization_and_api_key_headers_are_never_shown_but_are_sent() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let headers = json!([
        {"name": "Authorization", "value": "Bearer secret-1"},
        {"name": "X-Api-Key", "value": "secret-2"},
        {"name": "X-Tenant", "value": "visible"}
    ]);
    let (status, cb) = callback(
        &hub,
        &acct,
        json!({"config": {"url": rx.url, "headers": headers}}),
    )
    .await;
    assert_eq!(status, 200, "{cb}");
    let shown = &cb["config"]["headers"];
    assert_eq!(shown[0]["value"], true);
    assert_eq!(shown[1]["value"], true);
    assert_eq!(shown[2]["value"], "visible");
    for path in [
        format!("/callbacks/{}", cb["id"]),
        "/callbacks".to_string(),
        "/overview".to_string(),
    ] {
        let (_, body) = hub
            .call("GET", &events_api(&acct, &path), Some(&acct.token), None)
            .await;
        assert!(!body.to_string().contains("secret-"), "{path}: {body}");
    }
    let (status, l) = hub
        .call(
            "POST",
            &events_api(&acct, "/listeners"),
            Some(&acct.token),
            Some(json!({"callback_id": cb["id"]})),
        )
        .await;
    assert_eq!(status, 200, "{l}");
    hub.call(
        "POST",
        &events_api(&acct, &format!("/listeners/{}/subscriptions", l["id"])),
        Some(&acct.token),
        Some(json!({":tags": ["call"]})),
    )
    .await;
    hub.ingest(
        &acct.token,
        &[leg_event(
            "h1",
            "c",
            "c",
            "new",
            None,
            did("+1555"),
            did("+1556"),
            1_700_000_000,
        )],
    )
    .await;
    let got = rx.wait_events(1, 10).await;
    assert_eq!(got[0].headers["authorization"], "Bearer secret-1");
    assert_eq!(got[0].headers["x-api-key"], "secret-2");
    assert_eq!(got[0].headers["x-tenant"], "visible");
}

#[tokio::test]
async fn resources_in_use_cannot_be_deleted() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let t = Some(acct.token.as_str());
    let (_, profile) = hub
        .call(
            "POST",
            &events_api(&acct, "/profiles"),
            t,
            Some(json!({"name": "ops", "support_email": "ops@example.org"})),
        )
        .await;
    let (_, fallback) = callback(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    let (status, primary) = callback(&hub, &acct, json!({"config": {"url": rx.url}, "fallback_callback_id": fallback["id"], "profile_id": profile["id"]})).await;
    assert_eq!(status, 200, "{primary}");
    assert_eq!(primary["fallback_callback_id"], fallback["id"]);
    let (_, listener) = hub
        .call(
            "POST",
            &events_api(&acct, "/listeners"),
            t,
            Some(json!({"callback_id": primary["id"]})),
        )
        .await;

    let (status, err) = hub
        .call(
            "DELETE",
            &events_api(&acct, &format!("/callbacks/{}", primary["id"])),
            t,
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        err["@error"]["@message"],
        "Error: Callback is in use. Look for listeners using it."
    );
    assert_eq!(err["@error"]["@httpStatusCode"], 409);
    let (status, _) = hub
        .call(
            "DELETE",
            &events_api(&acct, &format!("/callbacks/{}", fallback["id"])),
            t,
            None,
        )
        .await;
    assert_eq!(status, 409, "a fallback in use cannot go");
    let (status, err) = hub
        .call(
            "DELETE",
            &events_api(&acct, &format!("/profiles/{}", profile["id"])),
            t,
            None,
        )
        .await;
    assert_eq!(status, 409, "{err}");

    // Once unused, each goes.
    let (status, ok) = hub
        .call(
            "DELETE",
            &events_api(&acct, &format!("/listeners/{}", listener["id"])),
            t,
            None,
        )
        .await;
    assert_eq!((status, ok), (200, json!({"success": true})));
    assert_eq!(
        hub.call(
            "DELETE",
            &events_api(&acct, &format!("/callbacks/{}", primary["id"])),
            t,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        hub.call(
            "DELETE",
            &events_api(&acct, &format!("/callbacks/{}", fallback["id"])),
            t,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        hub.call(
            "DELETE",
            &events_api(&acct, &format!("/profiles/{}", profile["id"])),
            t,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        hub.call(
            "GET",
            &events_api(&acct, &format!("/profiles/{}", profile["id"])),
            t,
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn lists_use_the_phonecom_envelope_with_paging_and_filters() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let name = if i % 2 == 0 { "even" } else { "odd" };
        let (_, cb) = callback(
            &hub,
            &acct,
            json!({"name": name, "config": {"url": rx.url}}),
        )
        .await;
        ids.push(cb["id"].as_i64().unwrap());
    }
    let t = Some(acct.token.as_str());
    let (status, page) = hub
        .call("GET", &events_api(&acct, "/callbacks"), t, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["limit"], 25);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["total"], 4);
    assert_eq!(page["sort"], json!({"id": "desc"}));
    assert_eq!(page["filters"], json!({}));
    assert_eq!(page["items"][0]["id"], ids[3], "newest first");
    let (_, page) = hub
        .call(
            "GET",
            &events_api(&acct, "/callbacks?limit=2&offset=1"),
            t,
            None,
        )
        .await;
    let got: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2], ids[1]]);
    assert_eq!(page["total"], 4);
    let (_, page) = hub
        .call(
            "GET",
            &events_api(&acct, "/callbacks?filters[name]=odd"),
            t,
            None,
        )
        .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["filters"], json!({"name": "odd"}));
    let (status, err) = hub
        .call("GET", &events_api(&acct, "/callbacks?limit=0"), t, None)
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("limit"))
    );
    let (status, err) = hub
        .call(
            "GET",
            &events_api(&acct, "/callbacks?filters[colour]=red"),
            t,
            None,
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("filters[colour]"))
    );

    let (_, l) = hub
        .call(
            "POST",
            &events_api(&acct, "/listeners"),
            t,
            Some(json!({"callback_id": ids[0]})),
        )
        .await;
    hub.call(
        "POST",
        &events_api(&acct, "/listeners"),
        t,
        Some(json!({"callback_id": ids[1]})),
    )
    .await;
    let (_, page) = hub
        .call(
            "GET",
            &events_api(
                &acct,
                &format!("/listeners?filters[callback_id]={}", ids[0]),
            ),
            t,
            None,
        )
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], l["id"]);
    assert_eq!(page["items"][0]["version"], "2.0.0");
}

#[tokio::test]
async fn listeners_subscriptions_filters_and_profiles_round_trip() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let t = Some(acct.token.as_str());
    let (_, cb) = callback(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/listeners"),
            t,
            Some(json!({"callback_id": 424242})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("callback_id"))
    );
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/listeners"),
            t,
            Some(json!({"callback_id": cb["id"], "version": "9.9.9"})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("version"))
    );
    let (_, l) = hub
        .call(
            "POST",
            &events_api(&acct, "/listeners"),
            t,
            Some(json!({"callback_id": cb["id"]})),
        )
        .await;
    let lp = |rest: &str| events_api(&acct, &format!("/listeners/{}{rest}", l["id"]));

    let (status, sub) = hub
        .call(
            "POST",
            &lp("/subscriptions"),
            t,
            Some(json!({":tags": ["call", "inbound", "call"]})),
        )
        .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub[":tags"], json!(["call", "inbound"]));
    let (status, err) = hub
        .call(
            "POST",
            &lp("/subscriptions"),
            t,
            Some(json!({":tags": ["call", "cal"]})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some(":tags[1]"))
    );
    let (status, _) = hub
        .call("POST", &lp("/subscriptions"), t, Some(json!({":tags": []})))
        .await;
    assert_eq!(status, 422);
    let (_, got) = hub
        .call(
            "GET",
            &lp(&format!("/subscriptions/{}", sub["id"])),
            t,
            None,
        )
        .await;
    assert_eq!(got, sub);

    let (status, f) = hub
        .call(
            "POST",
            &lp("/filters"),
            t,
            Some(json!({"filter_type": "number", "filter_value": {"in": ["+15551234567"]}})),
        )
        .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["listener_id"], l["id"]);
    assert_eq!(f["not_logic"], false);
    let (status, f2) = hub
        .call(
            "PATCH",
            &lp(&format!("/filters/{}", f["id"])),
            t,
            Some(json!({"not_logic": true})),
        )
        .await;
    assert_eq!(status, 200, "{f2}");
    assert_eq!(f2["not_logic"], true);
    assert_eq!(f2["filter_value"], json!({"in": ["+15551234567"]}));
    for (body, path) in [
        (
            json!({"filter_type": "schedule", "filter_value": {"id": 99999}}),
            "filter_value.id",
        ),
        (
            json!({"filter_type": "schedule", "filter_value": {"eq": "+15551234567"}}),
            "filter_value.id",
        ),
        (
            json!({"filter_type": "fax", "filter_value": {"id": 1}}),
            "filter_type",
        ),
        (
            json!({"filter_type": "number", "filter_value": {"eq": "call me"}}),
            "filter_value.eq",
        ),
        (
            json!({"filter_type": "number", "filter_value": {"eq": "+1", "match": "%"}}),
            "filter_value",
        ),
        (json!({"filter_type": "number"}), "filter_value"),
    ] {
        let (status, err) = hub
            .call("POST", &lp("/filters"), t, Some(body.clone()))
            .await;
        assert_eq!(
            (status, err["@error"]["@path"].as_str()),
            (422, Some(path)),
            "{body}: {err}"
        );
    }
    let (_, filters) = hub.call("GET", &lp("/filters"), t, None).await;
    assert_eq!(filters["total"], 1);

    let (status, p) = hub
        .call(
            "POST",
            &events_api(&acct, "/profiles"),
            t,
            Some(json!({"name": "p", "support_email": "a@example.org"})),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    let (status, p2) = hub
        .call(
            "PATCH",
            &events_api(&acct, &format!("/profiles/{}", p["id"])),
            t,
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (p2["name"].as_str(), p2["support_email"].as_str()),
        (Some("renamed"), Some("a@example.org"))
    );
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/profiles"),
            t,
            Some(json!({"name": "p", "support_email": "nope"})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some("support_email"))
    );

    // Deleting a listener takes its subscriptions and filters with it.
    assert_eq!(hub.call("DELETE", &lp(""), t, None).await.0, 200);
    assert_eq!(hub.call("GET", &lp("/subscriptions"), t, None).await.0, 404);
}

#[tokio::test]
async fn express_create_and_overview() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let t = Some(acct.token.as_str());
    let (status, item) = hub
        .call(
            "POST",
            &events_api(&acct, "/overview"),
            t,
            Some(json!({
                ":callback": {"name": "crm", "config": {"url": rx.url}, ":profile": {"name": "ops", "support_email": "ops@example.org"}},
                ":subscriptions": [{":tags": ["call-log"]}, {":tags": ["recording"]}],
                "version": "2.0.0"
            })),
        )
        .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item[":callback"]["name"], "crm");
    assert_eq!(
        item[":callback"][":profile"]["support_email"],
        "ops@example.org"
    );
    assert_eq!(item[":callback"][":fallback"], serde_json::Value::Null);
    assert_eq!(item[":subscriptions"].as_array().unwrap().len(), 2);
    assert_eq!(item["callback_id"], item[":callback"]["id"]);

    // By callback id, and all-or-nothing when a subscription is bad.
    let (status, err) = hub
        .call("POST", &events_api(&acct, "/overview"), t, Some(json!({"callback_id": item["callback_id"], ":subscriptions": [{":tags": ["call"]}, {":tags": ["nope"]}]})))
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some(":subscriptions[1].:tags[0]"))
    );
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&acct, "/overview"),
            t,
            Some(json!({"callback_id": item["callback_id"]})),
        )
        .await;
    assert_eq!(
        (status, err["@error"]["@path"].as_str()),
        (422, Some(":subscriptions"))
    );
    let (status, _) = hub
        .call("POST", &events_api(&acct, "/overview"), t, Some(json!({"callback_id": item["callback_id"], ":subscriptions": [{":tags": ["call"]}]})))
        .await;
    assert_eq!(status, 200);
    let (_, overview) = hub
        .call("GET", &events_api(&acct, "/overview"), t, None)
        .await;
    assert_eq!(overview["total"], 2);
    assert_eq!(
        overview["items"][1][":subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(overview["items"][0][":callback"]["id"], item["callback_id"]);
}

#[tokio::test]
async fn one_account_sees_nothing_of_another() {
    let hub = Hub::start().await;
    let a = hub.account().await;
    let b = hub.account().await;
    let rx = Receiver::start().await;
    let (_, cb) = callback(&hub, &a, json!({"config": {"url": rx.url}})).await;
    // B's token on A's account: 404, as if the account did not exist.
    let (status, _) = hub
        .call("GET", &events_api(&a, "/callbacks"), Some(&b.token), None)
        .await;
    assert_eq!(status, 404);
    // A's callback id under B's own account: 404.
    for method in ["GET", "DELETE"] {
        let (status, _) = hub
            .call(
                method,
                &events_api(&b, &format!("/callbacks/{}", cb["id"])),
                Some(&b.token),
                None,
            )
            .await;
        assert_eq!(status, 404, "{method}");
    }
    let (status, err) = hub
        .call(
            "POST",
            &events_api(&b, "/listeners"),
            Some(&b.token),
            Some(json!({"callback_id": cb["id"]})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    // B's events never reach A's listeners.
    listen(&hub, &a, &rx.url, &[&["call"]]).await;
    hub.ingest(
        &b.token,
        &[leg_event(
            "iso",
            "c",
            "c",
            "new",
            None,
            did("+1"),
            did("+2"),
            1_700_000_000,
        )],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(rx.events().is_empty());
    let (status, _) = hub
        .call(
            "GET",
            &events_api(&a, "/callbacks"),
            Some("sb_api_1_forged"),
            None,
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn extension_level_aliases_scope_resources_to_the_extension() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let ext_api = |rest: &str| {
        format!(
            "/v4/accounts/{}/extensions/500000/integrations/events{rest}",
            acct.id
        )
    };
    let t = Some(acct.token.as_str());
    let (status, cb) = hub
        .call(
            "POST",
            &ext_api("/callbacks"),
            t,
            Some(json!({"config": {"url": rx.url}})),
        )
        .await;
    assert_eq!(status, 200, "{cb}");
    assert_eq!(cb["extension_id"], 500000);
    callback(&hub, &acct, json!({"config": {"url": rx.url}})).await;
    let (_, ext_list) = hub.call("GET", &ext_api("/callbacks"), t, None).await;
    assert_eq!(ext_list["total"], 1);
    let (_, all) = hub
        .call("GET", &events_api(&acct, "/callbacks"), t, None)
        .await;
    assert_eq!(all["total"], 2);

    // An extension-level listener hears only calls that involve its extension.
    let (_, l) = hub
        .call(
            "POST",
            &ext_api("/listeners"),
            t,
            Some(json!({"callback_id": cb["id"]})),
        )
        .await;
    hub.call(
        "POST",
        &ext_api(&format!("/listeners/{}/subscriptions", l["id"])),
        t,
        Some(json!({":tags": ["call"]})),
    )
    .await;
    hub.ingest(
        &acct.token,
        &[
            leg_event(
                "e1",
                "c",
                "c-2",
                "new",
                None,
                did("+15550000001"),
                device(1, 500),
                1_700_000_000,
            ),
            leg_event(
                "e2",
                "c",
                "c-3",
                "new",
                None,
                did("+15550000001"),
                device(2, 501),
                1_700_000_000,
            ),
            // The extension itself as a participant, as the reference writes one: its `id`
            // is the extension's id.
            leg_event(
                "e3",
                "c",
                "c-4",
                "new",
                None,
                json!({"type": "extension", "id": 500000, "extension": 500}),
                did("+15550000009"),
                1_700_000_000,
            ),
        ],
    )
    .await;
    let got = rx.settle(2).await;
    let legs: Vec<&str> = got
        .iter()
        .map(|r| r.body["data"]["event_leg"]["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(legs, ["c-2", "c-4"]);
    assert_eq!(got[0].body["context"]["type"], "extension");

    // A token bound to extension 500000 sees its extension and nothing else.
    let (_, tok) = hub
        .call(
            "POST",
            &format!("/admin/accounts/{}/tokens", acct.id),
            Some(ADMIN),
            Some(json!({"scope": "api", "extension_id": 500000})),
        )
        .await;
    let ext_token = tok["token"].as_str();
    assert_eq!(
        hub.call("GET", &ext_api("/callbacks"), ext_token, None)
            .await
            .0,
        200
    );
    assert_eq!(
        hub.call("GET", &events_api(&acct, "/callbacks"), ext_token, None)
            .await
            .0,
        404
    );
    let other_ext = format!(
        "/v4/accounts/{}/extensions/501000/integrations/events/callbacks",
        acct.id
    );
    assert_eq!(hub.call("GET", &other_ext, ext_token, None).await.0, 404);
}
