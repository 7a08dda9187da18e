//! What every decoder and encoder shares: typed parsing with JSON paths, text-or-number
//! values, time checks, content keys, parties from plain strings.

use crate::error::DecodeError;
use crate::DecodeContext;
use jiff::Timestamp;
use serde::de::DeserializeSeed;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use switchboard_model::{Details, Direction, Event, Party, PartyKind};

/// A value sources send either as a JSON string or as a number; kept as text.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    Str(String),
    Int(i64),
    Float(f64),
}

/// Read directly (not as an untagged enum, which buffers every value first: the hot path of
/// decoding ids).
impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::Str(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text::Str(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(i64::try_from(v)
                    .map(Text::Int)
                    .unwrap_or(Text::Float(v as f64)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text::Float(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A value from a vendor's enumeration, or one the vendor added since (kept as sent): a
/// secondary field's new value must not cost the sender its event. Anything but a string is
/// still refused as the wrong type.
#[derive(Debug, Clone)]
pub(crate) enum Lenient<T> {
    Known(T),
    Other(String),
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<T: serde::de::DeserializeOwned> serde::de::Visitor<'_> for Visit<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Lenient<T>, E> {
                use serde::de::IntoDeserializer;
                let known: Result<T, serde::de::value::Error> =
                    T::deserialize(v.into_deserializer());
                Ok(match known {
                    Ok(t) => Lenient::Known(t),
                    Err(_) => Lenient::Other(v.to_string()),
                })
            }
        }
        d.deserialize_str(Visit(std::marker::PhantomData))
    }
}

impl<T> Lenient<T> {
    /// The known value, if it is one.
    pub(crate) fn known(self) -> Option<T> {
        match self {
            Lenient::Known(t) => Some(t),
            Lenient::Other(_) => None,
        }
    }
}

impl Text {
    pub(crate) fn into_string(self) -> String {
        match self {
            Text::Str(s) => s,
            Text::Int(i) => i.to_string(),
            Text::Float(f) => f.to_string(),
        }
    }
}

pub(crate) fn text(v: Option<Text>) -> Option<String> {
    v.map(Text::into_string)
}

/// Reads an optional text-or-number field, keeping it only when not empty.
pub(crate) fn non_empty(v: Option<Text>) -> Option<String> {
    text(v).filter(|s| !s.trim().is_empty())
}

/// Deserializes a JSON document into `T`, naming the path of any field at fault.
pub(crate) fn parse<'de, T: Deserialize<'de>>(
    raw: &'de str,
    prefix: &str,
) -> Result<T, DecodeError> {
    parse_seed(raw, prefix, std::marker::PhantomData::<T>)
}

/// [`parse`] with a seed that says how to read the document.
///
/// Tracking the path costs a fifth of a decode, so a document is read plainly first and only
/// one that fails is read again to say where.
pub(crate) fn parse_seed<'de, S: DeserializeSeed<'de> + Copy>(
    raw: &'de str,
    prefix: &str,
    seed: S,
) -> Result<S::Value, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let first = seed.deserialize(&mut de).and_then(|value| {
        de.end()?;
        Ok(value)
    });
    match first {
        Ok(value) => Ok(value),
        Err(_) => {
            let mut de = serde_json::Deserializer::from_str(raw);
            let mut track = serde_path_to_error::Track::new();
            let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
            let result = seed.deserialize(tracked).and_then(|value| {
                de.end()?;
                Ok(value)
            });
            result.map_err(|e| {
                DecodeError::from_serde(prefix, serde_path_to_error::Error::new(track.path(), e))
            })
        }
    }
}

/// The raw JSON of an element a decoder has read whole, kept as the fact's `raw`.
///
/// `RawValue`'s public constructor checks the text again (as long as reading it took); a
/// `RawValue` a deserializer hands over is taken as it is, so the text is handed over through
/// serde_json's protocol for that (a one-entry map under its `RawValue` token). Should that
/// protocol ever change, the text is checked after all (a test notices).
pub(crate) fn raw_json(item: &str) -> Box<RawValue> {
    const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
    let handed = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(std::iter::once((
        RAW_VALUE_TOKEN,
        item,
    )));
    Box::<RawValue>::deserialize(handed).unwrap_or_else(|_| {
        RawValue::from_string(item.to_owned()).expect("a decoded element is JSON")
    })
}

/// A stable key from a payload's content, for sources that send no event id.
pub(crate) fn content_key(dialect: &str, raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    format!("{dialect}:{}", hex::encode(&digest[..16]))
}

/// The earliest time a source can mean: 1990-01-01T00:00:00Z. Before it, a time is a unit
/// mistake (seconds read as milliseconds land in January 1970) or a placeholder, never a call.
pub const EARLIEST_TIME: Timestamp = Timestamp::constant(631_152_000, 0);

/// Checks a source time: history is history (a queue replayed after an outage, last month's
/// CDRs imported), so any past time since [`EARLIEST_TIME`] is taken; a time further ahead of
/// the receipt than the allowed skew is refused (milliseconds read as seconds, a clock or
/// time zone that is wrong).
pub(crate) fn plausible(
    at: Timestamp,
    ctx: &DecodeContext,
    path: &str,
) -> Result<Timestamp, DecodeError> {
    if at < EARLIEST_TIME {
        return Err(DecodeError::new(
            path,
            format!(
                "the time {at} is before 1990, which no phone system means; is the unit wrong (seconds vs milliseconds)?"
            ),
        ));
    }
    if let Some(max) = ctx.max_ahead {
        let ahead = at.as_millisecond() - ctx.received_at.as_millisecond();
        if ahead > max.as_millis() as i64 {
            return Err(DecodeError::new(
                path,
                format!(
                    "the time {at} is {} hours ahead of the time of receipt {}; is the unit wrong (seconds vs milliseconds) or the clock?",
                    ahead / 3_600_000,
                    ctx.received_at
                ),
            ));
        }
    }
    Ok(at)
}

pub(crate) fn from_millis(
    ms: i64,
    ctx: &DecodeContext,
    path: &str,
) -> Result<Timestamp, DecodeError> {
    let at = Timestamp::from_millisecond(ms)
        .map_err(|e| DecodeError::new(path, format!("not a usable time: {e}")))?;
    plausible(at, ctx, path)
}

pub(crate) fn from_seconds(
    s: i64,
    ctx: &DecodeContext,
    path: &str,
) -> Result<Timestamp, DecodeError> {
    let at = Timestamp::from_second(s)
        .map_err(|e| DecodeError::new(path, format!("not a usable time: {e}")))?;
    plausible(at, ctx, path)
}

/// A party from a plain string a source sent: a SIP URI (`user@domain`), an E.164-looking
/// number, an extension (short digits) or whatever else (kept as `unknown`).
pub(crate) fn party_from(raw: &str, short_is_extension: bool) -> Party {
    let raw = raw.trim();
    let mut p = Party::new(PartyKind::Unknown);
    p.id = Some(raw.to_string());
    if let Some((user, domain)) = raw.split_once('@') {
        p.kind = PartyKind::SipUri;
        p.domain = Some(domain.to_string());
        if user.chars().all(|c| c.is_ascii_digit()) && !user.is_empty() {
            if short_is_extension && user.len() <= 6 {
                p.extension = Some(user.to_string());
            } else {
                p.number = Some(user.to_string());
            }
        }
        return p;
    }
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        if short_is_extension && digits.len() <= 6 && !raw.starts_with('+') {
            p.kind = PartyKind::Extension;
            p.extension = Some(raw.to_string());
        } else {
            p.kind = PartyKind::Number;
            p.number = Some(raw.to_string());
        }
    } else if raw.eq_ignore_ascii_case("anonymous") {
        p.kind = PartyKind::Unknown;
    }
    p
}

/// The string a party is written as in vendors that use plain strings.
pub(crate) fn party_text(p: &Party) -> Option<String> {
    p.id.clone()
        .or_else(|| p.number.clone())
        .or_else(|| p.extension.clone())
}

/// A stable UUID for an id a target dialect wants as a UUID (Callable's sids, its
/// `accountId`): the id itself when it is one, else a name-based UUID (RFC 9562 version 8,
/// from SHA-256 of `kind` and the id), so the same call always gets the same UUID.
pub fn uuid_for(kind: &str, id: &str) -> String {
    if id.len() == 36 {
        if let Ok(u) = uuid::Uuid::parse_str(id) {
            return u.to_string();
        }
    }
    let digest = Sha256::digest(format!("switchboard:{kind}:{id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The direction of a call as one event shows it, for a target dialect that always states
/// one: the direction its source stated; else the one the hub concluded for its call
/// (`call`); else from its parties (the account's own are
/// declared internal numbers, extensions, devices, and the device the event was seen from;
/// an outside number is not): one of ours calling out is outbound, anything else inbound
/// (the documented placeholder when nothing tells).
pub(crate) fn direction_of(event: &Event, call: Option<Direction>) -> Direction {
    let fact = &event.fact;
    let (stated, from, to) = match &fact.details {
        Details::Leg(l) => (l.direction, l.leg.from.as_ref(), l.leg.to.as_ref()),
        Details::CallLog(c) => (c.direction, c.from.as_ref(), c.to.as_ref()),
        _ => (None, None, None),
    };
    if let Some(d) = stated.or(call) {
        return d;
    }
    let seen_from = fact.vendor.get("srcDeviceId").and_then(|v| v.as_str());
    let own = |p: &Party| {
        p.internal
            || matches!(p.kind, PartyKind::Extension | PartyKind::Device)
            || (p.extension.is_some() && p.number.is_none())
            || (seen_from.is_some() && p.id.as_deref() == seen_from)
    };
    match (from.map(own), to.map(own)) {
        (Some(true), Some(true)) => Direction::Internal,
        (Some(true), _) => Direction::Outbound,
        _ => Direction::Inbound,
    }
}

/// A boolean sent as `true`, `"true"`, `1` or `"1"`.
pub(crate) fn loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Int(i64),
        Str(String),
    }
    Ok(match Option::<B>::deserialize(d)? {
        None => None,
        Some(B::Bool(b)) => Some(b),
        Some(B::Int(i)) => Some(i != 0),
        Some(B::Str(s)) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => return Err(serde::de::Error::custom("expected true or false")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::raw_json;

    #[test]
    fn raw_json_keeps_the_text_as_it_came() {
        let item = r#"{ "a" : [1, 2.50, "\u00e9"] }"#;
        assert_eq!(raw_json(item).get(), item);
        // Text that is not JSON passes unchanged too, which shows it was not read again:
        // the public constructor would have refused it.
        assert_eq!(raw_json("{").get(), "{");
    }
}
