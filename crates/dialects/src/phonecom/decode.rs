//! Phone.com JSON → canonical facts.

use crate::common::{from_seconds, parse, parse_seed, plausible, raw_json, text, Lenient, Text};
use crate::error::DecodeError;
use crate::DecodeContext;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_model::{
    ApiErrorFacts, CallLogFacts, Details, Direction, EventKind, Fact, LegFacts, LegResult,
    LegSnapshot, MessageFacts, MessageMedia, Party, PartyKind, RecordingFacts,
};

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum DataType {
    Call,
    Recording,
    Message,
    CallLog,
    ApiError,
}

/// The envelope of one event, its `data` already read as the type `data_type` names.
#[derive(Debug)]
struct Envelope<'a> {
    uuid: String,
    version: Option<String>,
    timestamp: Option<i64>,
    timestamp_ns: Option<i64>,
    /// The sender's tags, as written: read only for the events whose tags the hub keeps
    /// beside its own (see `decode`).
    tags: Option<&'a RawValue>,
    data_type: DataType,
    /// `data` read, or kept raw when it came before `data_type`.
    data: Result<Data, Box<RawValue>>,
}

/// Lives on the stack for one decode and moves through every layer of serde's return values,
/// so it is as small as the call variant (the one most events have); the rarer, larger
/// variants are boxed (a message's parties made it three times the size, all of it copied at
/// every move).
#[derive(Debug)]
enum Data {
    Call(CallData),
    Recording(Box<RecordingData>),
    Message(Box<MessageData>),
    CallLog(Box<LooseData>),
    ApiError(Box<LooseData>),
}

/// The tags a sender wrote, as far as they are strings of the vocabulary (the set of their
/// places in it); anything else there is ignored, as it always was (the hub derives its own).
struct SaidTags(u64);

impl<'de> Deserialize<'de> for SaidTags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = SaidTags;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of tags")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SaidTags, A::Error> {
                let mut set = 0u64;
                while let Some(tag) = seq.next_element::<SaidTag<'de>>()? {
                    if let SaidTag::Str(t) = tag {
                        if let Some(i) = switchboard_model::tags::place_of(&t) {
                            set |= 1 << i;
                        }
                    }
                }
                Ok(SaidTags(set))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<SaidTags, E> {
                Ok(SaidTags(0))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SaidTags, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(SaidTags(0))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SaidTags, E> {
                Ok(SaidTags(0))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SaidTags, E> {
                Ok(SaidTags(0))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SaidTags, E> {
                Ok(SaidTags(0))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SaidTags, E> {
                Ok(SaidTags(0))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SaidTags, E> {
                Ok(SaidTags(0))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// One element of a sender's tags: a string (borrowed where it has no escapes), or anything
/// else, skipped.
enum SaidTag<'a> {
    Str(std::borrow::Cow<'a, str>),
    Other,
}

impl<'de> Deserialize<'de> for SaidTag<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = SaidTag<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a tag")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<SaidTag<'de>, E> {
                Ok(SaidTag::Str(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SaidTag<'de>, E> {
                Ok(SaidTag::Str(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SaidTag<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(SaidTag::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SaidTag<'de>, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(SaidTag::Other)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<SaidTag<'de>, E> {
                Ok(SaidTag::Other)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SaidTag<'de>, E> {
                Ok(SaidTag::Other)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SaidTag<'de>, E> {
                Ok(SaidTag::Other)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SaidTag<'de>, E> {
                Ok(SaidTag::Other)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SaidTag<'de>, E> {
                Ok(SaidTag::Other)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The envelope's keys; any other (`tags`, `listener_id`, `context`, ...) is skipped.
enum Key {
    Uuid,
    Version,
    Timestamp,
    TimestampNs,
    Tags,
    DataType,
    Data,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "uuid" => Key::Uuid,
                    "version" => Key::Version,
                    "timestamp" => Key::Timestamp,
                    "timestamp_ns" => Key::TimestampNs,
                    "tags" => Key::Tags,
                    "data_type" => Key::DataType,
                    "data" => Key::Data,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(Visit)
    }
}

/// `data_type` says how to read `data`.
impl<'de> serde::de::DeserializeSeed<'de> for DataType {
    type Value = Data;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        Ok(match self {
            DataType::Call => Data::Call(CallData::deserialize(d)?),
            DataType::Recording => Data::Recording(Box::deserialize(d)?),
            DataType::Message => Data::Message(Box::deserialize(d)?),
            DataType::CallLog => Data::CallLog(Box::deserialize(d)?),
            DataType::ApiError => Data::ApiError(Box::deserialize(d)?),
        })
    }
}

/// Reads the envelope and its `data` in one pass over the text when `data_type` comes first
/// (as Phone.com sends it); a `data` that comes before its type is kept raw and read after.
impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Phone.com event object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Envelope<'de>, A::Error> {
                use serde::de::Error;
                let mut uuid: Option<String> = None;
                let mut version: Option<Option<String>> = None;
                let mut timestamp: Option<Option<i64>> = None;
                let mut timestamp_ns: Option<Option<i64>> = None;
                let mut data_type: Option<DataType> = None;
                let mut tags: Option<&'de RawValue> = None;
                let mut data: Option<Data> = None;
                let mut early: Option<Box<RawValue>> = None;
                /// Reads a field's value into its slot; a field given twice is an error.
                fn fill<'de, T: Deserialize<'de>, A: serde::de::MapAccess<'de>>(
                    map: &mut A,
                    slot: &mut Option<T>,
                    name: &'static str,
                ) -> Result<(), A::Error> {
                    if slot.is_some() {
                        return Err(A::Error::duplicate_field(name));
                    }
                    *slot = Some(map.next_value()?);
                    Ok(())
                }
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Uuid => fill(&mut map, &mut uuid, "uuid")?,
                        Key::Version => fill(&mut map, &mut version, "version")?,
                        Key::Timestamp => fill(&mut map, &mut timestamp, "timestamp")?,
                        Key::TimestampNs => fill(&mut map, &mut timestamp_ns, "timestamp_ns")?,
                        Key::DataType => fill(&mut map, &mut data_type, "data_type")?,
                        Key::Data => {
                            if data.is_some() || early.is_some() {
                                return Err(A::Error::duplicate_field("data"));
                            }
                            match data_type {
                                Some(t) => data = Some(map.next_value_seed(t)?),
                                None => early = Some(map.next_value()?),
                            }
                        }
                        Key::Tags => tags = Some(map.next_value()?),
                        Key::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                let uuid = uuid.ok_or_else(|| A::Error::missing_field("uuid"))?;
                let data_type = data_type.ok_or_else(|| A::Error::missing_field("data_type"))?;
                let data = match (data, early) {
                    (Some(data), _) => Ok(data),
                    (None, Some(raw)) => Err(raw),
                    (None, None) => return Err(A::Error::missing_field("data")),
                };
                Ok(Envelope {
                    uuid,
                    version: version.flatten(),
                    timestamp: timestamp.flatten(),
                    timestamp_ns: timestamp_ns.flatten(),
                    tags,
                    data_type,
                    data,
                })
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PcDirection {
    Inbound,
    Outbound,
}

impl From<PcDirection> for Direction {
    fn from(d: PcDirection) -> Self {
        match d {
            PcDirection::Inbound => Direction::Inbound,
            PcDirection::Outbound => Direction::Outbound,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CallData {
    uuid: Text,
    #[serde(default)]
    direction: Option<Lenient<PcDirection>>,
    event_leg: PcLeg,
    #[serde(default)]
    first_leg: Option<PcLeg>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum LegState {
    New,
    Connecting,
    Connected,
    Completed,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Completion {
    Success,
    Cancelled,
    Busy,
    Failed,
}

#[derive(Debug, Deserialize)]
struct PcLeg {
    #[serde(default)]
    uuid: Option<Text>,
    #[serde(default)]
    from: Option<Box<PcParty>>,
    #[serde(default)]
    to: Option<Box<PcParty>>,
    #[serde(default)]
    is_first: Option<bool>,
    #[serde(default)]
    state: Option<LegState>,
    #[serde(default)]
    completion_status: Option<Lenient<Completion>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PcPartyType {
    Did,
    Device,
    Extension,
}

#[derive(Debug, Deserialize)]
struct PcParty {
    #[serde(rename = "type")]
    kind: Lenient<PcPartyType>,
    #[serde(default)]
    id: Option<Text>,
    #[serde(default)]
    line: Option<Text>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    extension_id: Option<Text>,
    #[serde(default)]
    extension: Option<Text>,
    #[serde(default)]
    name: Option<String>,
}

impl From<PcParty> for Party {
    fn from(p: PcParty) -> Self {
        let id = text(p.id);
        let kind = match p.kind {
            Lenient::Known(PcPartyType::Did) => PartyKind::Number,
            Lenient::Known(PcPartyType::Device) => PartyKind::Device,
            Lenient::Known(PcPartyType::Extension) => PartyKind::Extension,
            // A participant type Phone.com added since: the party is kept, its kind unknown.
            Lenient::Other(_) => PartyKind::Unknown,
        };
        Party {
            number: if kind == PartyKind::Number {
                id.clone()
            } else {
                None
            },
            kind,
            id,
            extension: text(p.extension),
            extension_id: text(p.extension_id),
            domain: p.domain,
            line: text(p.line),
            display: p.name,
            internal: false,
        }
    }
}

impl PcLeg {
    fn snapshot(self, call_id: &str) -> LegSnapshot {
        let id = text(self.uuid);
        let is_first = self
            .is_first
            .or_else(|| id.as_deref().map(|l| l == call_id));
        LegSnapshot {
            id,
            is_first,
            from: self.from.map(|p| Party::from(*p)),
            to: self.to.map(|p| Party::from(*p)),
            result: self.completion_status.map(|c| match c {
                Lenient::Known(Completion::Success) => LegResult::Answered,
                Lenient::Known(Completion::Cancelled) => LegResult::Cancelled,
                Lenient::Known(Completion::Busy) => LegResult::Busy,
                Lenient::Known(Completion::Failed) => LegResult::Failed,
                Lenient::Other(_) => LegResult::Unknown,
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RecordingData {
    #[serde(default)]
    uuid: Option<Text>,
    #[serde(default, rename = "type")]
    subject: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    call_uuid: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct MediaData {
    #[serde(default)]
    url: Option<String>,
    #[serde(default, rename = "type")]
    content_type: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageData {
    #[serde(default)]
    uuid: Option<Text>,
    #[serde(default)]
    direction: Option<Lenient<PcDirection>>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    from: Option<PcParty>,
    #[serde(default)]
    to: Option<Vec<PcParty>>,
    #[serde(default, rename = "type")]
    channel: Option<Lenient<MessageType>>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    media: Option<Vec<MediaData>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MessageType {
    Sms,
    Mms,
}

/// Call logs and API errors are documented only by their uuid: everything else is read when
/// present and of the expected type, and otherwise left in `raw`.
#[derive(Debug, Deserialize)]
struct LooseData {
    #[serde(default)]
    uuid: Option<Text>,
    #[serde(default)]
    direction: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    from: Option<serde_json::Value>,
    #[serde(default)]
    to: Option<serde_json::Value>,
    #[serde(default)]
    missed: Option<serde_json::Value>,
}

/// A participant of a loosely documented object, when it has the participant shape.
fn loose_party(v: Option<serde_json::Value>) -> Option<Party> {
    v.and_then(|v| serde_json::from_value::<PcParty>(v).ok())
        .map(Party::from)
}

fn occurred_at(env: &Envelope<'_>, ctx: &DecodeContext) -> Result<Timestamp, DecodeError> {
    if let Some(ns) = env.timestamp_ns {
        let at = Timestamp::from_nanosecond(i128::from(ns))
            .map_err(|e| DecodeError::new("timestamp_ns", format!("not a usable time: {e}")))?;
        return plausible(at, ctx, "timestamp_ns");
    }
    if let Some(s) = env.timestamp {
        return from_seconds(s, ctx, "timestamp");
    }
    Ok(ctx.received_at)
}

/// Decodes one Phone.com event.
pub fn decode(item: &str, ctx: &DecodeContext) -> Result<Vec<Fact>, DecodeError> {
    let env: Envelope = parse(item, "")?;
    if let Some(v) = &env.version {
        if !v.starts_with("2.") {
            return Err(DecodeError::new(
                "version",
                format!("version {v:?} is not supported: expected 2.0.0"),
            ));
        }
    }
    if env.uuid.trim().is_empty() {
        return Err(DecodeError::new("uuid", "must not be empty"));
    }
    let occurred_at = occurred_at(&env, ctx)?;
    let time_estimated = env.timestamp_ns.is_none() && env.timestamp.is_none();
    let raw = raw_json(item);
    let mut fact = Fact {
        time_estimated,
        source_key: env.uuid,
        kind: EventKind::Message,
        occurred_at,
        call_id: None,
        leg_id: None,
        agent_id: None,
        details: Details::None,
        vendor: Default::default(),
        raw,
    };
    let data = match env.data {
        Ok(data) => data,
        Err(raw) => parse_seed(raw.get(), "data", env.data_type)?,
    };
    match data {
        Data::Call(data) => {
            let call_id = data.uuid.into_string();
            let state = data.event_leg.state.ok_or_else(|| {
                DecodeError::new(
                    "data.event_leg.state",
                    "missing: expected one of new, connecting, connected, completed",
                )
            })?;
            fact.kind = match state {
                LegState::New => EventKind::LegCreated,
                LegState::Connecting => EventKind::LegRinging,
                LegState::Connected => EventKind::LegAnswered,
                LegState::Completed => EventKind::LegEnded,
            };
            let leg = data.event_leg.snapshot(&call_id);
            fact.leg_id = leg.id.clone().or_else(|| Some(call_id.clone()));
            fact.call_id = Some(call_id.clone());
            fact.details = Details::Leg(Box::new(LegFacts {
                direction: data.direction.and_then(Lenient::known).map(Direction::from),
                leg,
                first_leg: data.first_leg.map(|l| l.snapshot(&call_id)),
                parent_leg: None,
                hangup: None,
            }));
        }
        Data::Recording(data) => {
            let data = *data;
            fact.kind = EventKind::RecordingReady;
            fact.call_id = text(data.call_uuid);
            fact.details = Details::Recording(RecordingFacts {
                recording_id: text(data.uuid),
                subject: data.subject,
                size_bytes: data.size,
                duration_ms: data.duration.map(|s| (s * 1000.0).round() as u64),
                url: data.url,
            });
        }
        Data::Message(data) => {
            let data = *data;
            fact.kind = EventKind::Message;
            fact.details = Details::Message(MessageFacts {
                message_id: text(data.uuid),
                direction: data.direction.and_then(Lenient::known).map(Direction::from),
                channel: data.channel.map(|c| match c {
                    Lenient::Known(MessageType::Sms) => "sms".to_string(),
                    Lenient::Known(MessageType::Mms) => "mms".to_string(),
                    Lenient::Other(other) => other,
                }),
                state: data.state,
                from: data.from.map(Party::from),
                to: data
                    .to
                    .unwrap_or_default()
                    .into_iter()
                    .map(Party::from)
                    .collect(),
                text: data.message,
                media: data
                    .media
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| MessageMedia {
                        url: m.url,
                        content_type: m.content_type,
                        size_bytes: m.size,
                        filename: m.filename,
                    })
                    .collect(),
            });
        }
        Data::CallLog(data) => {
            let data = *data;
            // A call log a source sends is its own record of the call: a fact folded into the
            // hub's record (whose call log is the one delivered), missed when it says so.
            fact.kind = EventKind::SourceCdr;
            if data.missed.as_ref().and_then(|m| m.as_bool()) == Some(true) {
                fact.vendor
                    .insert("missed".into(), serde_json::Value::Bool(true));
            }
            fact.call_id = text(data.uuid);
            let direction = match data.direction.as_ref().and_then(|d| d.as_str()) {
                Some("inbound") => Some(Direction::Inbound),
                Some("outbound") => Some(Direction::Outbound),
                _ => None,
            };
            fact.details = Details::CallLog(CallLogFacts {
                direction,
                from: loose_party(data.from),
                to: loose_party(data.to),
            });
        }
        Data::ApiError(data) => {
            let data = *data;
            fact.kind = EventKind::ApiError;
            let status = [data.status.as_ref(), data.code.as_ref()]
                .into_iter()
                .flatten()
                .find_map(|v| v.as_u64())
                .and_then(|v| u16::try_from(v).ok());
            fact.details = Details::ApiError(ApiErrorFacts {
                status,
                message: data.message.and_then(|m| m.as_str().map(str::to_owned)),
            });
        }
    }
    // The sender's tags the hub keeps beside its own (only those it does not derive), on the
    // events whose content leaves room for them: messages (`received-message`, …),
    // recordings, call logs and errors. A call event's content says all its tags (reading its
    // sender's would cost a tenth of its decode, and add nothing).
    if let (Some(said), false) = (env.tags, matches!(fact.details, Details::Leg(_))) {
        let set = serde_json::from_str::<SaidTags>(said.get()).map_or(0, |t| t.0);
        if set != 0 {
            let own = switchboard_model::tags::senders_own(&fact, set);
            if !own.is_empty() {
                fact.vendor
                    .insert("tags".into(), serde_json::Value::from(own));
            }
        }
    }
    Ok(vec![fact])
}
