//! Every documented management request of the Phone.com events API reference and of
//! tel4vn's hook API, as `conformance/phonecom-api.json` and `conformance/tel4vn-api.json`
//! copy them, run in order against the hub: each answers the documented status with every
//! documented field, of the documented type.

use crate::support::*;
use serde_json::Value;
use std::collections::HashMap;

/// The JSON type of a value, as the comparison sees it.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `got` lacks a field `documented` has, or holds it in another type. A documented
/// `null` says only that the field is there (the reference shows nullable fields empty), as
/// does a `loose` path (the suite says why); an array is compared by its first element.
fn differences(documented: &Value, got: &Value, path: &str, loose: &Value, out: &mut Vec<String>) {
    if loose.get(path).is_some() {
        return;
    }
    match (documented, got) {
        (Value::Null, _) => {}
        (Value::Object(doc), Value::Object(ours)) => {
            for (key, value) in doc {
                let at = format!("{path}.{key}");
                match ours.get(key) {
                    Some(v) => differences(value, v, &at, loose, out),
                    None => out.push(format!("{at}: missing")),
                }
            }
        }
        (Value::Array(doc), Value::Array(ours)) => {
            if let (Some(d), Some(o)) = (doc.first(), ours.first()) {
                differences(d, o, &format!("{path}[0]"), loose, out);
            }
        }
        (d, o) if kind(d) == kind(o) => {}
        (d, o) => out.push(format!(
            "{path}: documented {} ({d}), got {} ({o})",
            kind(d),
            kind(o)
        )),
    }
}

/// Puts this account's ids and URL where the examples have placeholders.
fn fill(v: &Value, saved: &HashMap<String, Value>) -> Value {
    match v {
        Value::String(s) if s.starts_with('$') => saved
            .get(&s[1..])
            .cloned()
            .unwrap_or_else(|| panic!("nothing saved as {s}")),
        Value::Array(items) => Value::Array(items.iter().map(|i| fill(i, saved)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs a suite's exchanges in order on a fresh account; returns what differed.
async fn run_suite(name: &str) -> Vec<String> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance")
        .join(name);
    let suite: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let hub = Hub::start().await;
    let acct = hub.account().await;
    let rx = Receiver::start().await;
    let mut saved: HashMap<String, Value> = HashMap::new();
    saved.insert("url".into(), Value::from(rx.url.clone()));
    let base = suite["base"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .replace("{account}", &acct.id.to_string());
    let mut faults = Vec::new();
    let exchanges = suite["exchanges"].as_array().unwrap();
    assert!(!exchanges.is_empty(), "{name} has no exchanges");
    for e in exchanges {
        let mut path = e["path"].as_str().unwrap().to_string();
        for (name, id) in &saved {
            let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
            path = path.replace(&format!("{{{name}}}"), &id);
        }
        let request = e.get("request").map(|r| fill(r, &saved));
        let method = e["method"].as_str().unwrap();
        let (status, got) = hub
            .call(method, &format!("{base}{path}"), Some(&acct.token), request)
            .await;
        let what = format!("{} {} ({}: {})", method, path, e["document"], e["section"]);
        if u64::from(status) != e["status"].as_u64().unwrap() {
            faults.push(format!(
                "{what}: status {status}, documented {}: {got}",
                e["status"]
            ));
            continue;
        }
        let mut diffs = Vec::new();
        differences(&e["response"], &got, "", &e["loose"], &mut diffs);
        faults.extend(diffs.into_iter().map(|d| format!("{what}: {d}")));
        if let Some(name) = e["save"].as_str() {
            saved.insert(name.to_string(), got["id"].clone());
        }
    }
    faults
}

#[tokio::test]
async fn every_documented_phonecom_management_request_answers_as_documented() {
    let faults = run_suite("phonecom-api.json").await;
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

#[tokio::test]
async fn every_documented_tel4vn_hook_request_answers_as_documented() {
    let faults = run_suite("tel4vn-api.json").await;
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}
