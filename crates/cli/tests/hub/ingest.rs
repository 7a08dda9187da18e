//! Bad input at the ingest door: a clear 4xx in the `@error` envelope, nothing stored, and the
//! hub still serving everyone else.

use crate::support::*;
use serde_json::{json, Value};

fn error_of(body: &Value) -> (&str, Option<&str>, i64) {
    let e = &body["@error"];
    (
        e["@message"].as_str().unwrap_or(""),
        e["@path"].as_str(),
        e["@httpStatusCode"].as_i64().unwrap_or(0),
    )
}

fn good(uuid: &str) -> Value {
    leg_event(
        uuid,
        "c1",
        "c1",
        "new",
        None,
        did("+15550000001"),
        did("+15550000002"),
        1_700_000_000,
    )
}

#[tokio::test]
async fn every_kind_of_bad_input_gets_a_4xx_that_names_the_field() {
    let hub = Hub::start_with(&[("SWITCHBOARD_MAX_BODY", "4096")]).await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    listen(&hub, &acct, &rx.url, &[&["call"]]).await;
    let t = acct.token.as_str();

    let mut wrong_type = good("w1");
    wrong_type["data"]["event_leg"]["is_first"] = json!("yes");
    let mut missing = good("w3");
    missing.as_object_mut().unwrap().remove("uuid");
    let mut no_leg = good("w4");
    no_leg["data"].as_object_mut().unwrap().remove("event_leg");
    let cases: Vec<(String, &str, u16, Option<&str>)> = vec![
        ("{\"uuid\": ".into(), "application/json", 400, None),
        (
            wrong_type.to_string(),
            "application/json",
            422,
            Some("data.event_leg.is_first"),
        ),
        (missing.to_string(), "application/json", 422, Some("uuid")),
        (
            no_leg.to_string(),
            "application/json",
            422,
            Some("data.event_leg"),
        ),
        // The third element of a batch is wrong: its index leads the path.
        (
            json!([good("b1"), good("b2"), wrong_type]).to_string(),
            "application/json",
            422,
            Some("[2].data.event_leg.is_first"),
        ),
        (
            format!("{}\n{}\nnot json\n", good("n1"), good("n2")),
            "application/x-ndjson",
            400,
            Some("[2]"),
        ),
        ("[1, 2]".into(), "application/json", 422, None),
        (good("t1").to_string(), "text/plain", 415, None),
        (
            format!("[{}]", vec![good("big").to_string(); 20].join(",")),
            "application/json",
            413,
            None,
        ),
        ("".into(), "application/json", 400, None),
    ];
    for (body, ct, status, path) in cases {
        let (got, out) = hub.ingest_raw("phonecom", t, ct, body.clone()).await;
        assert_eq!(got, status, "{body}: {out}");
        let (message, got_path, code) = error_of(&out);
        assert_eq!(code, i64::from(status), "{out}");
        assert!(!message.is_empty());
        assert!(out["@error"]["@time"].is_string());
        if let Some(p) = path {
            assert_eq!(got_path, Some(p), "{body}: {out}");
        }
    }

    // Auth and dialect.
    let (status, out) = hub
        .ingest_raw(
            "phonecom",
            "sb_api_999_nope",
            "application/json",
            good("a").to_string(),
        )
        .await;
    assert_eq!(status, 401, "{out}");
    let resp = hub
        .http
        .post(format!("{}/ingest/phonecom", hub.base))
        .header("content-type", "application/json")
        .body(good("a").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, out) = hub
        .ingest_raw("asterisk", t, "application/json", good("a").to_string())
        .await;
    assert_eq!(status, 404);
    assert_eq!(error_of(&out).1, Some("dialect"));
    assert!(error_of(&out).0.contains("phonecom"));
    let resp = hub
        .http
        .post(format!("{}/ingest/phonecom?tz=Mars/Base", hub.base))
        .bearer_auth(t)
        .header("content-type", "application/json")
        .body(good("a").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);

    // Nothing of any rejected batch was stored: the good elements of the rejected batches are
    // accepted now as new, and the receiver saw only these.
    let out = hub
        .ingest(t, &[good("b1"), good("b2"), good("n1"), good("n2")])
        .await;
    assert_eq!(out["accepted"], 4, "{out}");
    assert_eq!(out["duplicates"], 0);
    rx.settle(4).await;
}

#[tokio::test]
async fn ndjson_and_arrays_are_all_or_nothing_batches() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let body = format!("{}\n{}\n{}\n", good("1"), good("2"), good("3"));
    let (status, out) = hub
        .ingest_raw("phonecom", &acct.token, "application/x-ndjson", body)
        .await;
    assert_eq!(status, 202, "{out}");
    assert_eq!(out["accepted"], 3);
    assert_eq!(out["events"].as_array().unwrap().len(), 3);
    let (status, out) = hub
        .ingest_raw("phonecom", &acct.token, "application/json", "[]")
        .await;
    assert_eq!(status, 202, "{out}");
    assert_eq!(out["accepted"], 0);
}

#[tokio::test]
async fn an_ingest_token_ingests_but_cannot_manage() {
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let (status, out) = hub
        .call(
            "POST",
            &format!("/admin/accounts/{}/tokens", acct.id),
            Some(ADMIN),
            Some(json!({"scope": "ingest"})),
        )
        .await;
    assert_eq!(status, 201, "{out}");
    let ingest_token = out["token"].as_str().unwrap();
    let (status, _) = hub
        .ingest_raw(
            "phonecom",
            ingest_token,
            "application/json",
            good("i").to_string(),
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = hub
        .call(
            "GET",
            &events_api(&acct, "/callbacks"),
            Some(ingest_token),
            None,
        )
        .await;
    assert_eq!(status, 403);
}
