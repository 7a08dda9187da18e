//! Splitting a request body into the events it carries.
//!
//! Senders post one JSON object, a JSON array of objects, or NDJSON (one object per line).
//! The split keeps each element as the text that was sent, so the decoder sees exactly that.
//!
//! The split finds where each object ends by its brackets and strings alone: it does not
//! check the JSON, because every decoder reads its whole element with a parser that does (a
//! decoder rejects an element that is not JSON with a syntax error at its path), so checking
//! it here too only read every body twice. A body that is anything else —
//! empty, not UTF-8, an element that is not an object, text between elements, an object
//! that never closes — is split by a validating parser instead, which says where it stops
//! being JSON.

use crate::error::DecodeError;
use serde_json::value::RawValue;

/// What a body turned out to hold.
#[derive(Debug)]
pub struct Batch<'a> {
    /// The elements' text, each one JSON value as far as brackets and strings go.
    pub items: Vec<&'a str>,
    /// True when the body was one bare object (paths then start at the object itself).
    pub single: bool,
}

/// Splits a body into its elements, or says where it stops being JSON.
pub fn split_batch(body: &[u8]) -> Result<Batch<'_>, DecodeError> {
    match std::str::from_utf8(body).ok().and_then(split_objects) {
        Some(batch) => Ok(batch),
        None => split_validating(body),
    }
}

/// [`split_batch`] with every element checked to be JSON, for a reader that needs to know
/// before it decodes (Workonflow's, which reads a body that is not JSON as JSON5).
pub fn split_validating(body: &[u8]) -> Result<Batch<'_>, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err(DecodeError::syntax(
            "",
            "the body is empty: send a JSON object, a JSON array or NDJSON",
        )),
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_slice(body)
                .map_err(|e| DecodeError::syntax("", format!("the body is not valid JSON: {e}")))?;
            Ok(Batch {
                items: items.into_iter().map(RawValue::get).collect(),
                single: false,
            })
        }
        Some(_) => {
            let mut items = Vec::new();
            for (index, item) in serde_json::Deserializer::from_slice(body)
                .into_iter::<&RawValue>()
                .enumerate()
            {
                let item = item.map_err(|e| {
                    DecodeError::syntax(format!("[{index}]"), format!("not valid JSON: {e}"))
                })?;
                items.push(item.get());
            }
            let single = items.len() == 1;
            Ok(Batch { items, single })
        }
    }
}

/// The objects of a body of objects (one, an array of them, or one after another), or `None`
/// when the body holds anything else.
fn split_objects(text: &str) -> Option<Batch<'_>> {
    let bytes = text.as_bytes();
    let mut items = Vec::new();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) == Some(&b'[') {
        at = skip_whitespace(bytes, at + 1);
        if bytes.get(at) != Some(&b']') {
            loop {
                let end = object_end(bytes, at)?;
                items.push(&text[at..end]);
                at = skip_whitespace(bytes, end);
                match bytes.get(at)? {
                    b',' => at = skip_whitespace(bytes, at + 1),
                    b']' => break,
                    _ => return None,
                }
            }
        }
        let rest = skip_whitespace(bytes, at + 1);
        return (rest == bytes.len()).then_some(Batch {
            items,
            single: false,
        });
    }
    while at < bytes.len() {
        let end = object_end(bytes, at)?;
        items.push(&text[at..end]);
        at = skip_whitespace(bytes, end);
    }
    let single = items.len() == 1;
    (!items.is_empty()).then_some(Batch { items, single })
}

/// JSON's whitespace (RFC 8259 §2), which is not all of ASCII's.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// Just past the bracket that closes the object opening at `start`.
fn object_end(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut at = start;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            b'"' => {
                at = string_end(bytes, at + 1)?;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// Just past the quote that closes the string whose text starts at `at`.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        at += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_array_and_ndjson() {
        let one = split_batch(br#" {"a":1} "#).unwrap();
        assert!(one.single);
        assert_eq!(one.items, [r#"{"a":1}"#]);
        let arr = split_batch(br#"[{"a":1},{"a":2}]"#).unwrap();
        assert!(!arr.single);
        assert_eq!(arr.items[1], r#"{"a":2}"#);
        let nd = split_batch(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n").unwrap();
        assert_eq!(nd.items.len(), 3);
        assert!(!nd.single);
        let empty = split_batch(b" [ ] ").unwrap();
        assert!(empty.items.is_empty() && !empty.single);
    }

    #[test]
    fn brackets_and_quotes_inside_strings_do_not_end_an_object() {
        let body = br#"{"a":"}{","b":"say \"hi\" \\","c":[{"d":"]"}]}  {"e":"\\\"}"}"#;
        let batch = split_batch(body).unwrap();
        assert_eq!(
            batch.items,
            [
                r#"{"a":"}{","b":"say \"hi\" \\","c":[{"d":"]"}]}"#,
                r#"{"e":"\\\"}"}"#
            ]
        );
        for item in batch.items {
            serde_json::from_str::<serde_json::Value>(item).unwrap();
        }
    }

    #[test]
    fn a_quote_or_escape_is_found_wherever_it_falls_in_a_string() {
        // Strings of every length up to twenty (short, as most of an event's are, and longer
        // than a word), with an escaped quote, an escaped backslash, a closing bracket or an
        // escaped quote as a code point at every place in them.
        for len in 0..20 {
            for at in 0..=len {
                for inner in [r#"\""#, r"\\", "}", r"\u0022"] {
                    let mut text = "x".repeat(len);
                    text.insert_str(at, inner);
                    let body = format!(r#"{{"s":"{text}","t":1}} {{"u":"{text}"}}"#);
                    let items = split_batch(body.as_bytes()).unwrap().items;
                    assert_eq!(items, split_validating(body.as_bytes()).unwrap().items);
                    assert_eq!(items.len(), 2, "{body}");
                }
            }
        }
    }

    #[test]
    fn the_split_agrees_with_the_parser_on_json() {
        let bodies: [&[u8]; 5] = [
            b"{\"a\":{\"b\":[1,2,{\"c\":\"x\"}]}}\r\n\t{\"d\":null}",
            b"[\n  {\"a\": \"\\u005b\"},\n  {\"b\": [[], {}]}\n]\n",
            b"{}",
            b"[{}]",
            "{\"n\":\"caf\u{e9} \u{1f4de}\"}".as_bytes(),
        ];
        for body in bodies {
            let fast = split_batch(body).unwrap();
            let checked = split_validating(body).unwrap();
            assert_eq!(
                fast.items,
                checked.items,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(fast.single, checked.single);
        }
    }

    #[test]
    fn broken_json_says_where() {
        let err = split_batch(b"{\"a\":1}\n{\"a\":").unwrap_err();
        assert!(err.syntax);
        assert_eq!(err.path, "[1]");
        assert!(split_batch(b"   ").unwrap_err().message.contains("empty"));
        for body in [
            &b"{\"a\":1} x"[..],
            b"{\"a\":1}]",
            b"[{\"a\":1} {\"b\":2}]",
            b"[{\"a\":1}] {}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"unterminated}",
            b"{\"a\":\"ends in a backslash\\",
        ] {
            let err = split_batch(body).unwrap_err();
            assert!(err.syntax, "{}", String::from_utf8_lossy(body));
        }
    }
}
