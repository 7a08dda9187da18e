//! The API contract: `/openapi.json` describes the routes the hub serves, with the vendors'
//! own examples, and `/docs` shows it with nothing fetched from elsewhere. (The full check,
//! schemathesis against a running hub, is `scripts/api-contract`, run by `scripts/test`.)

use crate::support::*;
use serde_json::Value;
use std::collections::HashSet;

/// Every `$ref` in a value.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// A concrete path for a template: ids of 1, a known dialect, a token of the right form.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s {
            "{dialect}" => "phonecom",
            "{token}" => "0000000000000000",
            "{call_id}" | "{id}" => "no-such-thing",
            s if s.starts_with('{') => "1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_document_describes_every_route_the_hub_serves() {
    let hub = Hub::start().await;
    let (status, doc) = hub.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");

    // Every reference resolves, every operation has its own id.
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    for r in &all_refs {
        let name = r.strip_prefix("#/components/schemas/").expect(r);
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} names no schema"
        );
    }
    let paths = doc["paths"].as_object().unwrap();
    let mut ids = HashSet::new();
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
            operations.push((path.clone(), method.to_uppercase(), op.clone()));
        }
    }
    // The API's parts are all there.
    for (path, method) in [
        ("/ingest/{dialect}", "POST"),
        ("/v4/accounts/{account}/integrations/events/callbacks", "POST"),
        ("/v4/accounts/{account}/extensions/{ext}/integrations/events/listeners/{listener_id}/filters", "GET"),
        ("/v4/accounts/{account}/integrations/events/schedules/{schedule_id}", "PATCH"),
        ("/v1/event/{id}", "DELETE"),
        ("/v4/accounts/{account}/calls/{call_id}", "GET"),
        ("/v4/accounts/{account}/stream", "GET"),
        ("/admin/erase", "POST"),
        ("/metrics", "GET"),
        ("/docs", "GET"),
    ] {
        assert!(
            operations.iter().any(|(p, m, _)| p == path && m == method),
            "{method} {path} is not in the document"
        );
    }

    // Each documented operation is served: asked without a token, it answers — not the
    // fallback's "route not found", nor 405 — in a status the document names for it.
    for (path, method, op) in &operations {
        let url = concrete(path);
        let (status, body) = hub.call(method, &url, None, None).await;
        let said = body["@error"]["@message"].as_str().unwrap_or("");
        assert!(
            status != 405 && said != "route not found",
            "{method} {url}: {status} {body}"
        );
        let documented = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| *k == status.to_string() || (k == "4XX" && (400..500).contains(&status)));
        assert!(
            documented,
            "{method} {url} answered {status}, not in the document"
        );
    }

    // The vendors' documented exchanges are its examples.
    let create = &paths["/v4/accounts/{account}/integrations/events/profiles"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["example"]["support_email"],
        "test@example.org"
    );
    let delete =
        &paths["/v4/accounts/{account}/integrations/events/callbacks/{callback_id}"]["delete"];
    assert!(
        delete["responses"]["409"]["content"]["application/json"]["example"]["@error"].is_object(),
        "{delete}"
    );
    assert_eq!(
        paths["/v1/event"]["post"]["requestBody"]["content"]["application/json"]["example"]
            ["event"],
        "create"
    );
}

#[tokio::test]
async fn the_reference_page_renders_the_document_with_nothing_from_elsewhere() {
    let hub = Hub::start().await;
    let (_, doc) = hub.call("GET", "/openapi.json", None, None).await;
    let resp = reqwest::get(format!("{}/docs", hub.base)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = resp.text().await.unwrap();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                page.contains(&format!("id=\"{id}\"")),
                "{id} is not on the page"
            );
        }
    }
    for schema in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            page.contains(&format!("id=\"schema-{schema}\"")),
            "{schema}"
        );
    }
    assert!(!page.contains("<script"), "the page runs no script");
    assert!(
        !page.contains("src=\"http"),
        "the page loads nothing from elsewhere"
    );
    assert!(
        !page.contains("href=\"http"),
        "the page links nothing from elsewhere"
    );
}
