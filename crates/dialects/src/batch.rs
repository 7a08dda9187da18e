//! Splitting a request body into the events it carries.
//!
//! Senders post one JSON object, a JSON array of objects, or NDJSON (one object per line).
//! The split keeps each element as raw JSON so the decoder sees exactly what was sent.

use crate::error::DecodeError;
use serde_json::value::RawValue;

/// What a body turned out to hold.
#[derive(Debug)]
pub struct Batch<'a> {
    pub items: Vec<&'a RawValue>,
    /// True when the body was one bare object (paths then start at the object itself).
    pub single: bool,
}

/// Splits a body into its elements, or says where it stops being JSON.
pub fn split_batch(body: &[u8]) -> Result<Batch<'_>, DecodeError> {
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
                items,
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
                items.push(item);
            }
            let single = items.len() == 1;
            Ok(Batch { items, single })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_array_and_ndjson() {
        let one = split_batch(br#" {"a":1} "#).unwrap();
        assert!(one.single);
        assert_eq!(one.items.len(), 1);
        let arr = split_batch(br#"[{"a":1},{"a":2}]"#).unwrap();
        assert!(!arr.single);
        assert_eq!(arr.items[1].get(), r#"{"a":2}"#);
        let nd = split_batch(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n").unwrap();
        assert_eq!(nd.items.len(), 3);
        assert!(!nd.single);
    }

    #[test]
    fn broken_json_says_where() {
        let err = split_batch(b"{\"a\":1}\n{\"a\":").unwrap_err();
        assert!(err.syntax);
        assert_eq!(err.path, "[1]");
        assert!(split_batch(b"   ").unwrap_err().message.contains("empty"));
    }
}
