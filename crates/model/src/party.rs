//! A party: whoever or whatever sits on one end of a call leg or a message.

use serde::{Deserialize, Serialize};

/// What kind of thing a party is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// A telephone number (Phone.com `did`).
    Number,
    /// A PBX extension.
    Extension,
    /// A SIP device registered to an extension.
    Device,
    User,
    Agent,
    Queue,
    SipUri,
    Unknown,
}

/// One end of a leg or a message.
///
/// `id` is the source's own identifier as text (numbers are kept as their decimal text);
/// `number` is the phone number when the party has one, kept exactly as the source wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub kind: PartyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// One of the account's own numbers, as its source declared them (`?internal=` on the
    /// ingest request): the hub infers a call's direction from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

impl Party {
    /// True when the party is, or belongs to, the extension of this id: its `extension_id`
    /// (a device's, or an extension's when the source names it), or an extension party's own
    /// id (Phone.com writes an extension participant as `{"type": "extension", "id": …}`, the
    /// id being the extension's).
    pub fn extension_id_is(&self, id: &str) -> bool {
        self.extension_id.as_deref() == Some(id) || self.own_extension_id() == Some(id)
    }

    /// An extension party's own id, which is its extension's.
    fn own_extension_id(&self) -> Option<&str> {
        (self.kind == PartyKind::Extension)
            .then_some(self.id.as_deref())
            .flatten()
    }

    /// Every name of the extension the party is or belongs to: its number and its id (as
    /// [`Party::extension_id_is`] reads it). The call list's `extension` filter takes either.
    pub fn extension_names(&self) -> impl Iterator<Item = &str> {
        [
            self.extension.as_deref(),
            self.own_extension_id(),
            self.extension_id.as_deref(),
        ]
        .into_iter()
        .flatten()
    }

    /// A party of the given kind with nothing else known.
    pub fn new(kind: PartyKind) -> Self {
        Party {
            kind,
            id: None,
            number: None,
            extension: None,
            extension_id: None,
            domain: None,
            line: None,
            display: None,
            internal: false,
        }
    }

    /// True for parties that are the PBX's own extensions or devices.
    pub fn is_extension_side(&self) -> bool {
        matches!(self.kind, PartyKind::Extension | PartyKind::Device)
    }
}

/// Numbers a source declares its own: each pattern is a number, or a prefix ending in `*`
/// (`8*`, `+1555000*`), compared on the digits (and a leading `+`) alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InternalNumbers(Vec<(String, bool)>);

impl InternalNumbers {
    /// Reads `8*,+1555000*,2001`; an empty pattern or one with no digit is refused (its text).
    pub fn parse(list: &str) -> Result<InternalNumbers, String> {
        let mut out = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (body, prefix) = match raw.strip_suffix('*') {
                Some(body) => (body, true),
                None => (raw, false),
            };
            let number = normalize_number(body);
            if number.trim_start_matches('+').is_empty()
                || body.chars().any(|c| c.is_ascii_alphabetic() || c == '*')
            {
                return Err(raw.to_string());
            }
            out.push((number, prefix));
        }
        Ok(InternalNumbers(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when one of the party's numbers (its number, extension or id) is declared.
    pub fn covers(&self, party: &Party) -> bool {
        [&party.number, &party.extension, &party.id]
            .into_iter()
            .flatten()
            .map(|n| normalize_number(n.split('@').next().unwrap_or(n)))
            .filter(|n| !n.trim_start_matches('+').is_empty())
            .any(|n| {
                self.0.iter().any(|(pattern, prefix)| {
                    if *prefix {
                        n.starts_with(pattern.as_str())
                    } else {
                        n == *pattern
                    }
                })
            })
    }
}

/// Normalizes a phone number for comparison: keeps a leading `+` and the digits, drops the
/// punctuation people and PBXs put between them (`+1 (555) 000-0001` → `+15550000001`).
pub fn normalize_number(raw: &str) -> String {
    let trimmed = raw.trim();
    let mut out = String::with_capacity(trimmed.len());
    if trimmed.starts_with('+') {
        out.push('+');
    }
    out.extend(trimmed.chars().filter(|c| c.is_ascii_digit()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_numbers_cover_numbers_prefixes_and_extensions() {
        let own = InternalNumbers::parse("8*, +1 (555) 000-*,2001").unwrap();
        let party = |number: Option<&str>, extension: Option<&str>, id: Option<&str>| {
            let mut p = Party::new(PartyKind::Unknown);
            p.number = number.map(str::to_owned);
            p.extension = extension.map(str::to_owned);
            p.id = id.map(str::to_owned);
            p
        };
        assert!(own.covers(&party(Some("+15550001234"), None, None)));
        assert!(!own.covers(&party(Some("+15551001234"), None, None)));
        assert!(own.covers(&party(None, Some("8002"), None)));
        assert!(own.covers(&party(None, None, Some("8002@zhen04.cc"))));
        assert!(own.covers(&party(Some("2001"), None, None)));
        assert!(!own.covers(&party(Some("20011"), None, None)));
        assert!(!own.covers(&party(None, None, None)));
        assert_eq!(InternalNumbers::parse("sales").unwrap_err(), "sales");
        assert_eq!(InternalNumbers::parse("8*,*").unwrap_err(), "*");
        assert!(InternalNumbers::parse("").unwrap().is_empty());
    }

    #[test]
    fn numbers_lose_punctuation_but_keep_plus() {
        assert_eq!(normalize_number("+1 (555) 000-0001"), "+15550000001");
        assert_eq!(normalize_number("0912 345 678"), "0912345678");
    }
}
