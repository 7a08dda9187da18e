//! Wire fidelity: a vendor's documented events, sent to a listener of the same vendor, come
//! back as the vendor documents them — every field and value as it came.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The documented examples of a dialect (the fixtures taken from its seed document).
fn documented(dialect: &str) -> Vec<(String, String)> {
    let dir = format!(
        "{}/../dialects/src/{dialect}/fixtures",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with("seed-") && !name.ends_with(".golden.json")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn each_vendors_documented_events_pass_through_to_its_own_listeners_unchanged() {
    let hub = Hub::start().await;
    for (dialect, content_type) in [
        ("tel4vn", "application/json"),
        ("callable", "application/json"),
        ("welljoint", "application/json"),
        ("workonflow", "application/javascript"),
    ] {
        let acct = hub.account().await;
        let rx = Receiver::start().await;
        let (status, body) = hub
            .call(
                "POST",
                &events_api(&acct, "/overview"),
                Some(&acct.token),
                Some(json!({":callback": {"config": {"url": rx.url}}, "version": dialect,
                    ":subscriptions": [{":tags": ["call"]}, {":tags": ["recording"]}, {":tags": ["agent-state"]}]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let examples = documented(dialect);
        let mut sent: Vec<Value> = Vec::new();
        for (name, text) in &examples {
            let (status, out) = hub
                .ingest_raw(dialect, &acct.token, content_type, text.clone())
                .await;
            assert_eq!(status, 202, "{dialect} {name}: {out}");
            let d = switchboard_model::Dialect::parse(dialect).unwrap();
            let items = switchboard_dialects::parse_body(d, text.as_bytes()).unwrap();
            sent.extend(
                items
                    .iter()
                    .map(|i| serde_json::from_str::<Value>(i).unwrap()),
            );
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let got = rx.events();
        assert!(
            got.len() >= examples.len() / 2,
            "{dialect}: {} of {} examples came back",
            got.len(),
            examples.len()
        );
        for r in &got {
            assert!(
                sent.contains(&r.body),
                "{dialect}: a payload that is not the vendor's as sent: {}",
                r.body
            );
        }
    }
}
