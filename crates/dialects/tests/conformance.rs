//! Every documented example of every dialect, translated into every dialect, is checked
//! against the target's own document, as `conformance/<dialect>.json` writes it down: the
//! fields it always carries, with their types and values.

use serde_json::Value;
use std::path::{Path, PathBuf};
use switchboard_dialects::{decode, encode, parse_body, DecodeContext, Recipient};
use switchboard_model::{tags, AccountId, Dialect, Event, Source};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The documented examples of a dialect: the fixtures its tests take from its document.
fn examples(dialect: Dialect) -> Vec<(String, Vec<Event>)> {
    let dir = root().join(format!("crates/dialects/src/{dialect}/fixtures"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.ends_with(".golden.json")
        })
        .collect();
    files.sort();
    let tz = if dialect == Dialect::Welljoint {
        "Asia/Shanghai"
    } else {
        "UTC"
    };
    let ctx = DecodeContext {
        received_at: jiff::Timestamp::from_second(1_793_610_000).unwrap(),
        tz: jiff::tz::TimeZone::get(tz).unwrap(),
        max_ahead: None,
    };
    files
        .iter()
        .map(|file| {
            let body = std::fs::read(file).unwrap();
            let items = parse_body(dialect, &body).unwrap();
            let events = items
                .iter()
                .flat_map(|item| decode(dialect, item, &ctx).unwrap())
                .map(|fact| Event {
                    id: uuid::Uuid::now_v7(),
                    account: AccountId(1_000_002),
                    source: Source {
                        dialect,
                        name: None,
                    },
                    received_at: ctx.received_at,
                    tags: tags::derive(&fact),
                    silent: false,
                    fact,
                })
                .collect();
            (
                file.file_name().unwrap().to_string_lossy().to_string(),
                events,
            )
        })
        .collect()
}

/// The value at a dotted path; `Err(())` when an object on the way is `null` (nothing to
/// check under it).
fn at<'a>(v: &'a Value, path: &str) -> Result<Option<&'a Value>, ()> {
    let mut here = v;
    for key in path.split('.') {
        if here.is_null() {
            return Err(());
        }
        match here.get(key) {
            Some(next) => here = next,
            None => return Ok(None),
        }
    }
    Ok(Some(here))
}

fn has_type(v: &Value, types: &str) -> bool {
    types.split('|').any(|t| match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        "uuid" => v
            .as_str()
            .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36),
        other => panic!("unknown type {other}"),
    })
}

/// What is wrong with `payload` by the description `spec`.
fn faults(spec: &Value, payload: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let event = spec["event"]
        .as_str()
        .and_then(|p| at(payload, p).ok().flatten())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut required: Vec<(&String, &Value)> = spec["always"].as_object().unwrap().iter().collect();
    if let Some(more) = spec["events"].get(&event).and_then(Value::as_object) {
        required.extend(more.iter());
    }
    for (path, types) in required {
        match at(payload, path) {
            Err(()) => {}
            Ok(None) => out.push(format!("{path} is missing")),
            Ok(Some(v)) if !has_type(v, types.as_str().unwrap()) => {
                out.push(format!("{path} is {v}, not {types}"))
            }
            Ok(Some(_)) => {}
        }
    }
    for (path, allowed) in spec["values"].as_object().unwrap() {
        if let Ok(Some(v)) = at(payload, path) {
            if !allowed.as_array().unwrap().contains(v) {
                out.push(format!("{path} is {v}, not one of {allowed}"));
            }
        }
    }
    out
}

#[test]
fn every_documented_example_translates_into_what_each_vendors_document_says() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for to in [
        Dialect::Phonecom,
        Dialect::Tel4vn,
        Dialect::Callable,
        Dialect::Welljoint,
        Dialect::Workonflow,
    ] {
        let spec: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("conformance/{to}.json"))).unwrap(),
        )
        .unwrap();
        let read_back = DecodeContext {
            received_at: jiff::Timestamp::now(),
            tz: jiff::tz::TimeZone::UTC,
            max_ahead: None,
        };
        let recipient = Recipient {
            listener_id: 1000,
            account: AccountId(1_000_002),
            ..Recipient::default()
        };
        for from in Dialect::ALL {
            for (file, events) in examples(from) {
                for event in &events {
                    let Some(bytes) = encode(to, event, &recipient) else {
                        continue;
                    };
                    checked += 1;
                    let payload: Value = serde_json::from_slice(&bytes).unwrap();
                    for fault in faults(&spec, &payload) {
                        wrong.push(format!("{from} {file} → {to}: {fault}"));
                    }
                    // And the hub reads what it wrote, as a receiver's own code would.
                    let text = std::str::from_utf8(&bytes).unwrap();
                    if let Err(e) = decode(to, text, &read_back) {
                        wrong.push(format!(
                            "{from} {file} → {to}: our {to} decoder refuses it: {e}"
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 80, "only {checked} payloads");
    assert!(
        wrong.is_empty(),
        "{} faults:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
