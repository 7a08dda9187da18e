//! How an event's JSON is kept in `events.body`: compressed (LZ4 block, behind a format
//! byte), as a BLOB. An event's JSON carries the source's own payload beside the normalized
//! fact, 1.5–2 KiB in all, and the events table was most of the bytes every event wrote to the
//! log and copied again into the database; compressed, it is about a third of that. Bodies
//! written as TEXT (before compression) are read as they are.

use crate::{Result, StoreError};
use rusqlite::types::ValueRef;
use std::borrow::Cow;
use switchboard_model::Event;

/// The first byte of a compressed body: LZ4 block format, the uncompressed length before it
/// as a little-endian u32.
const LZ4: u8 = 1;

/// An event as it is stored.
pub(crate) fn pack_event(event: &Event) -> Result<Vec<u8>> {
    Ok(pack(&serde_json::to_vec(event)?))
}

/// An event from its stored column.
pub(crate) fn event_of(stored: ValueRef<'_>) -> Result<Event> {
    Ok(serde_json::from_slice(&unpack(stored)?)?)
}

fn pack(json: &[u8]) -> Vec<u8> {
    let compressed = lz4_flex::compress_prepend_size(json);
    let mut out = Vec::with_capacity(compressed.len() + 1);
    out.push(LZ4);
    out.extend_from_slice(&compressed);
    out
}

/// The JSON of a stored body: a packed BLOB, or TEXT as older versions wrote it.
fn unpack(stored: ValueRef<'_>) -> Result<Cow<'_, [u8]>> {
    match stored {
        ValueRef::Text(json) => Ok(Cow::Borrowed(json)),
        ValueRef::Blob([LZ4, compressed @ ..]) => lz4_flex::decompress_size_prepended(compressed)
            .map(Cow::Owned)
            .map_err(|e| StoreError::Corrupt(format!("an event body does not unpack: {e}"))),
        ValueRef::Blob(other) => Err(StoreError::Corrupt(format!(
            "an event body is in an unknown format ({:?})",
            other.first()
        ))),
        _ => Err(StoreError::Corrupt("an event body is not text".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_unpacks_to_what_was_packed_and_old_text_reads_as_it_is() {
        let json = br#"{"id":"x","fact":{"raw":{"data":{"from":"+15550001","to":"+15550001"}}}}"#;
        let packed = pack(json);
        assert!(packed.len() < json.len());
        assert_eq!(&*unpack(ValueRef::Blob(&packed)).unwrap(), json);
        assert_eq!(&*unpack(ValueRef::Text(json)).unwrap(), json);
        assert!(matches!(
            unpack(ValueRef::Blob(&[9, 1, 2])),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            unpack(ValueRef::Blob(&packed[..packed.len() - 3])),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            unpack(ValueRef::Integer(1)),
            Err(StoreError::Corrupt(_))
        ));
    }
}
