//! `decode` and `translate`: the dialects without a hub, for people migrating an integration.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;
use switchboard_dialects::{DecodeContext, Recipient};
use switchboard_model::{AccountId, Dialect, Event, Source};

fn dialect(name: &str) -> Result<Dialect> {
    Dialect::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.as_str()).collect();
        anyhow!("unknown dialect {name:?}: use one of {}", names.join(", "))
    })
}

fn read_input(file: Option<&Path>) -> Result<Vec<u8>> {
    match file {
        Some(p) if p != Path::new("-") => {
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
        }
        _ => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read stdin")?;
            Ok(body)
        }
    }
}

/// Decodes a whole input into canonical events (account 0, received now, any time accepted).
fn events(from: Dialect, tz: &str, file: Option<&Path>) -> Result<Vec<Event>> {
    let body = read_input(file)?;
    let tz = jiff::tz::TimeZone::get(tz).map_err(|_| anyhow!("unknown time zone {tz:?}"))?;
    let received_at = jiff::Timestamp::now();
    let ctx = DecodeContext {
        received_at,
        tz,
        max_ahead: None,
    };
    let items = switchboard_dialects::parse_body(from, &body).map_err(|e| anyhow!("{e}"))?;
    let mut facts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let decoded = switchboard_dialects::decode(from, item, &ctx)
            .map_err(|e| anyhow!("event {i}: {e}"))?;
        facts.extend(decoded);
    }
    let source = Source {
        dialect: from,
        name: Some("offline".into()),
    };
    Ok(switchboard_engine::stamp(
        AccountId(0),
        &source,
        received_at,
        facts,
        uuid::Uuid::now_v7,
    ))
}

pub fn decode(name: &str, tz: &str, file: Option<&Path>) -> Result<()> {
    let events = events(dialect(name)?, tz, file)?;
    let mut out = std::io::stdout().lock();
    for e in events {
        serde_json::to_writer(&mut out, &e)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

pub fn translate(from: &str, to: &str, tz: &str, file: Option<&Path>) -> Result<()> {
    let (from, to) = (dialect(from)?, dialect(to)?);
    let events = events(from, tz, file)?;
    let recipient = Recipient::default();
    let mut out = std::io::stdout().lock();
    let mut skipped = 0;
    for e in &events {
        match switchboard_dialects::encode(to, e, &recipient) {
            Some(bytes) => {
                // One event a line (NDJSON), however the vendor laid out what passes through.
                out.write_all(&one_line(&bytes))?;
                out.write_all(b"\n")?;
            }
            None => {
                skipped += 1;
                eprintln!("skipped {}: {to} has no counterpart", e.fact.kind.as_str());
            }
        }
    }
    if events.is_empty() {
        bail!("the input holds no events");
    }
    if skipped > 0 {
        eprintln!(
            "{skipped} of {} events have no {to} counterpart",
            events.len()
        );
    }
    Ok(())
}

/// JSON text on one line: the whitespace between its tokens dropped, everything else (key
/// order, number spelling, escapes) as it was.
fn one_line(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            out.push(b);
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_drops_layout_and_keeps_strings() {
        let pretty = b"{\n  \"a b\" : [1, 2.50],\n  \"q\": \"x \\\" \\n y\"\n}";
        assert_eq!(
            String::from_utf8(one_line(pretty)).unwrap(),
            r#"{"a b":[1,2.50],"q":"x \" \n y"}"#
        );
    }
}
