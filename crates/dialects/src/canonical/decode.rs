//! CloudEvents → canonical facts.

use crate::common::{parse, plausible, raw_json};
use crate::error::DecodeError;
use crate::DecodeContext;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_model::{Event, Fact};

#[derive(Deserialize)]
struct CloudEvent<'a> {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    datacontenttype: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
}

/// Decodes one canonical CloudEvent.
pub fn decode(item: &str, ctx: &DecodeContext) -> Result<Vec<Fact>, DecodeError> {
    let ce: CloudEvent<'_> = parse(item, "")?;
    if ce.specversion != "1.0" {
        return Err(DecodeError::new("specversion", "expected \"1.0\""));
    }
    if ce.id.is_empty() {
        return Err(DecodeError::new("id", "must not be empty"));
    }
    if let Some(ct) = &ce.datacontenttype {
        if !ct.starts_with("application/json") {
            return Err(DecodeError::new(
                "datacontenttype",
                "expected application/json",
            ));
        }
    }
    let Some(kind) = ce.kind.strip_prefix("switchboard.") else {
        return Err(DecodeError::new(
            "type",
            "expected switchboard.<kind>, e.g. switchboard.call.leg.created",
        ));
    };
    let data: Data<'_> = parse(ce.data.get(), "data")?;
    let event: Event = parse(data.event.get(), "data.event")?;
    if event.fact.kind.as_str() != kind {
        return Err(DecodeError::new(
            "type",
            format!(
                "says {kind} but data.event.fact.kind is {}",
                event.fact.kind.as_str()
            ),
        ));
    }
    let mut fact = event.fact;
    fact.occurred_at = plausible(fact.occurred_at, ctx, "data.event.fact.occurred_at")?;
    fact.source_key = format!("ce:{}:{}", ce.source, ce.id);
    fact.raw = raw_json(item);
    Ok(vec![fact])
}
