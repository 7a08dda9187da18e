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
}

impl Party {
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
        }
    }

    /// True for parties that are the PBX's own extensions or devices.
    pub fn is_extension_side(&self) -> bool {
        matches!(self.kind, PartyKind::Extension | PartyKind::Device)
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
    fn numbers_lose_punctuation_but_keep_plus() {
        assert_eq!(normalize_number("+1 (555) 000-0001"), "+15550000001");
        assert_eq!(normalize_number("0912 345 678"), "0912345678");
    }
}
