//! Callbacks of mode `APPLICATION`: an event drives an application instead of a webhook.
//!
//! Phone.com documents two. `google-analytics` reports each event to Google Analytics
//! (Measurement Protocol v1): a hit with the callback's `static` values and `dynamic` values
//! taken from the event, sent to the collect endpoint (`google_analytics_url`). The other,
//! `sms-autoresponder`, answers messages by SMS through Phone.com's own messaging, which a
//! self-hosted hub has not got: it is refused when the callback is saved.

use serde_json::Value;
use switchboard_model::{Details, Direction, Event, EventKind, Party};

/// The Measurement Protocol parameters the reference lets a callback set.
const STATIC_KEYS: &[&str] = &[
    "cd1", "cd2", "cd3", "cd4", "cd5", "cid", "dh", "dl", "ea", "ec", "el", "ev", "ni", "t", "tid",
    "uid", "v",
];
const DYNAMIC_KEYS: &[&str] = &[
    "cd1", "cd2", "cd3", "cd4", "cd5", "cid", "dh", "dl", "ea", "ec", "el", "ev", "ni", "uid",
];

/// What a dynamic parameter takes from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dynamic {
    CallDuration,
    Direction,
    DirectionText,
    PhoneNumber,
    OtherPhoneNumber,
}

impl Dynamic {
    fn parse(name: &str) -> Option<Dynamic> {
        Some(match name {
            "call_duration" => Dynamic::CallDuration,
            "direction" => Dynamic::Direction,
            "direction_text" => Dynamic::DirectionText,
            "phone_number" => Dynamic::PhoneNumber,
            "other_phone_number" => Dynamic::OtherPhoneNumber,
            _ => return None,
        })
    }
}

/// A `google-analytics` application's parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleAnalytics {
    tracking_id: String,
    statics: Vec<(String, String)>,
    dynamics: Vec<(String, Dynamic)>,
}

/// A field of an application's config that is wrong: its path under `config`, and why.
pub type ConfigError = (String, String);

fn wrong(path: &str, message: impl Into<String>) -> ConfigError {
    (path.to_string(), message.into())
}

/// The parameter's value as text: strings as they are, numbers and booleans written out.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        _ => None,
    }
}

impl GoogleAnalytics {
    /// Reads an `APPLICATION` callback's `config`.
    pub fn from_json(config: &Value) -> Result<GoogleAnalytics, ConfigError> {
        let application = config
            .get("application")
            .and_then(Value::as_str)
            .ok_or_else(|| wrong("application", "missing: expected google-analytics"))?;
        match application {
            "google-analytics" => {}
            "sms-autoresponder" => {
                return Err(wrong(
                    "application",
                    "sms-autoresponder answers by SMS through Phone.com's messaging, which a self-hosted hub has not got",
                ))
            }
            other => {
                return Err(wrong(
                    "application",
                    format!("unknown application {other:?}: expected google-analytics"),
                ))
            }
        }
        // The reference spells it `paramters` once; both are read.
        let params = config
            .get("parameters")
            .or_else(|| config.get("paramters"))
            .ok_or_else(|| wrong("parameters", "missing: this field is required"))?;
        let tracking_id = params
            .get("tracking_id")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                wrong(
                    "parameters.tracking_id",
                    "missing: your tracking ID, like UA-00000000-1",
                )
            })?
            .to_string();
        let mut statics = Vec::new();
        if let Some(map) = params.get("static").filter(|v| !v.is_null()) {
            let map = map
                .as_object()
                .ok_or_else(|| wrong("parameters.static", "expected an object"))?;
            for (key, value) in map {
                let path = format!("parameters.static.{key}");
                if !STATIC_KEYS.contains(&key.as_str()) {
                    return Err(wrong(
                        &path,
                        format!("not one of {}", STATIC_KEYS.join(", ")),
                    ));
                }
                let value = text(value).ok_or_else(|| wrong(&path, "expected a string"))?;
                statics.push((key.clone(), value));
            }
        }
        let mut dynamics = Vec::new();
        if let Some(map) = params.get("dynamic").filter(|v| !v.is_null()) {
            let map = map
                .as_object()
                .ok_or_else(|| wrong("parameters.dynamic", "expected an object"))?;
            for (key, value) in map {
                let path = format!("parameters.dynamic.{key}");
                if !DYNAMIC_KEYS.contains(&key.as_str()) {
                    return Err(wrong(
                        &path,
                        format!("not one of {}", DYNAMIC_KEYS.join(", ")),
                    ));
                }
                let dynamic = value.as_str().and_then(Dynamic::parse).ok_or_else(|| {
                    wrong(
                        &path,
                        "expected one of call_duration, direction, direction_text, phone_number, other_phone_number",
                    )
                })?;
                dynamics.push((key.clone(), dynamic));
            }
        }
        Ok(GoogleAnalytics {
            tracking_id,
            statics,
            dynamics,
        })
    }

    /// The hit an event makes, form-encoded: `v=1`, the tracking id, an event hit (`t`), a
    /// client id (stable for the call), then the static values and the dynamic ones the
    /// event has (a later key wins over an earlier).
    pub fn hit(&self, event: &Event) -> Vec<u8> {
        let client = event
            .fact
            .call_id
            .clone()
            .unwrap_or_else(|| event.id.to_string());
        let mut fields: Vec<(String, String)> = vec![
            ("v".into(), "1".into()),
            ("tid".into(), self.tracking_id.clone()),
            ("t".into(), "event".into()),
            (
                "cid".into(),
                switchboard_dialects::uuid_for("ga-client", &client),
            ),
        ];
        let mut set = |key: &str, value: String| match fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => fields.push((key.to_string(), value)),
        };
        for (key, value) in &self.statics {
            set(key, value.clone());
        }
        for (key, dynamic) in &self.dynamics {
            if let Some(value) = value_of(*dynamic, event) {
                set(key, value);
            }
        }
        form(&fields).into_bytes()
    }
}

/// A party's number as a person reads it.
fn number(p: Option<&Party>) -> Option<String> {
    let p = p?;
    p.number
        .clone()
        .or_else(|| p.extension.clone())
        .or_else(|| p.id.clone())
}

fn value_of(dynamic: Dynamic, event: &Event) -> Option<String> {
    let fact = &event.fact;
    let (direction, from, to) = match &fact.details {
        Details::Leg(l) => (l.direction, l.leg.from.as_ref(), l.leg.to.as_ref()),
        Details::CallLog(c) => (c.direction, c.from.as_ref(), c.to.as_ref()),
        Details::Message(m) => (m.direction, m.from.as_ref(), m.to.first()),
        _ => (None, None, None),
    };
    let inbound = direction.map(|d| d == Direction::Inbound);
    match dynamic {
        Dynamic::CallDuration => match fact.kind {
            EventKind::CallLog | EventKind::CallMissed => {
                fact.vendor.get("duration").and_then(text)
            }
            _ => None,
        },
        Dynamic::Direction => inbound.map(|i| if i { "in" } else { "out" }.to_string()),
        Dynamic::DirectionText => {
            inbound.map(|i| if i { "inbound" } else { "outbound" }.to_string())
        }
        // Ours: the number called for an inbound call, the caller for an outbound one.
        Dynamic::PhoneNumber => number(if inbound? { to } else { from }),
        Dynamic::OtherPhoneNumber => number(if inbound? { from } else { to }),
    }
}

/// `application/x-www-form-urlencoded`.
fn form(fields: &[(String, String)]) -> String {
    fn encode(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(k, &mut out);
        out.push('=');
        encode(v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reference_example_reads_and_a_wrong_one_names_its_field() {
        let config = json!({"application": "google-analytics", "parameters": {
            "tracking_id": "UA-00000000-1", "static": {"ec": "Phone call"},
            "dynamic": {"ea": "direction_text", "el": "phone_number", "cd1": "other_phone_number"}}});
        assert!(GoogleAnalytics::from_json(&config).is_ok());
        let bad = json!({"application": "google-analytics", "parameters": {
            "tracking_id": "UA-1", "dynamic": {"ea": "mood"}}});
        assert_eq!(
            GoogleAnalytics::from_json(&bad).unwrap_err().0,
            "parameters.dynamic.ea"
        );
        let sms = json!({"application": "sms-autoresponder", "parameters": {"message": "hi"}});
        assert_eq!(
            GoogleAnalytics::from_json(&sms).unwrap_err().0,
            "application"
        );
        assert_eq!(
            form(&[("a b".into(), "c&d=é".into())]),
            "a+b=c%26d%3D%C3%A9"
        );
    }
}
