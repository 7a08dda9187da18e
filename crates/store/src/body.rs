//! How an event's JSON is kept in `events.body`: compressed, behind a format byte, as a BLOB.
//! An event's JSON carries the source's own payload beside the normalized fact, 1–2 KiB in
//! all, and the events table is most of what the hub keeps. It is compressed with zstd and a
//! dictionary trained on every dialect's events (`body.dict`, built into the binary and never
//! changed once bodies use it: a new one gets a new format byte), which brings a body to
//! 160–250 bytes where LZ4 alone made 600–860. Bodies written by earlier versions — LZ4, or
//! TEXT before compression — are read as they are.

use crate::{Result, StoreError};
use rusqlite::types::ValueRef;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::OnceLock;
use switchboard_model::Event;

/// The first byte of an LZ4 body (earlier versions): LZ4 block format, the uncompressed
/// length before it as a little-endian u32.
const LZ4: u8 = 1;
/// The first byte of a zstd body with dictionary 1: the uncompressed length as a
/// little-endian u32, then a zstd frame made with [`DICTIONARY`].
const ZSTD_DICT_1: u8 = 2;

/// The dictionary of format 2 (`scripts/train-body-dictionary.sh` made it).
const DICTIONARY: &[u8] = include_bytes!("body.dict");
/// Fast, and within a few percent of level 3's size with the dictionary.
const LEVEL: i32 = 1;

fn encoder() -> &'static zstd::dict::EncoderDictionary<'static> {
    static ENCODER: OnceLock<zstd::dict::EncoderDictionary<'static>> = OnceLock::new();
    ENCODER.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICTIONARY, LEVEL))
}

fn decoder() -> &'static zstd::dict::DecoderDictionary<'static> {
    static DECODER: OnceLock<zstd::dict::DecoderDictionary<'static>> = OnceLock::new();
    DECODER.get_or_init(|| zstd::dict::DecoderDictionary::copy(DICTIONARY))
}

thread_local! {
    // A compression context per thread, made once: making one per event costs more than
    // compressing the event.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// An event as it is stored.
pub(crate) fn pack_event(event: &Event) -> Result<Vec<u8>> {
    pack(&serde_json::to_vec(event)?)
}

/// An event from its stored column.
pub(crate) fn event_of(stored: ValueRef<'_>) -> Result<Event> {
    Ok(serde_json::from_slice(&unpack(stored)?)?)
}

/// Other JSON kept the same way (a finalized call's record).
pub(crate) fn pack_json(json: &[u8]) -> Result<Vec<u8>> {
    pack(json)
}

/// The JSON of a column [`pack_json`] wrote (or TEXT, as earlier versions wrote it).
pub(crate) fn unpack_json(stored: ValueRef<'_>) -> Result<Cow<'_, [u8]>> {
    unpack(stored)
}

fn pack(json: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(json.len())
        .map_err(|_| StoreError::Corrupt("an event larger than 4 GiB".into()))?;
    let compressed = COMPRESSOR.with(|slot| -> std::io::Result<Vec<u8>> {
        let mut slot = slot.borrow_mut();
        let compressor = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::with_prepared_dictionary(encoder())?),
        };
        compressor.compress(json)
    });
    let compressed =
        compressed.map_err(|e| StoreError::Corrupt(format!("an event does not compress: {e}")))?;
    let mut out = Vec::with_capacity(compressed.len() + 5);
    out.push(ZSTD_DICT_1);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// The JSON of a stored body: a packed BLOB, or TEXT as older versions wrote it.
fn unpack(stored: ValueRef<'_>) -> Result<Cow<'_, [u8]>> {
    let broken = |e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("an event body does not unpack: {e}"))
    };
    match stored {
        ValueRef::Text(json) => Ok(Cow::Borrowed(json)),
        ValueRef::Blob([ZSTD_DICT_1, a, b, c, d, frame @ ..]) => {
            let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            DECOMPRESSOR
                .with(|slot| -> std::io::Result<Vec<u8>> {
                    let mut slot = slot.borrow_mut();
                    let decompressor = match slot.as_mut() {
                        Some(d) => d,
                        None => slot.insert(zstd::bulk::Decompressor::with_prepared_dictionary(
                            decoder(),
                        )?),
                    };
                    decompressor.decompress(frame, len)
                })
                .map(Cow::Owned)
                .map_err(|e| broken(&e))
        }
        ValueRef::Blob([LZ4, compressed @ ..]) => lz4_flex::decompress_size_prepended(compressed)
            .map(Cow::Owned)
            .map_err(|e| broken(&e)),
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
        let packed = pack(json).unwrap();
        assert_eq!(packed[0], ZSTD_DICT_1);
        assert!(packed.len() < json.len());
        assert_eq!(&*unpack(ValueRef::Blob(&packed)).unwrap(), json);
        assert_eq!(&*unpack(ValueRef::Text(json)).unwrap(), json);
        // A body an earlier version packed with LZ4 reads as it was.
        let mut lz4 = vec![LZ4];
        lz4.extend(lz4_flex::compress_prepend_size(json));
        assert_eq!(&*unpack(ValueRef::Blob(&lz4)).unwrap(), json);
        assert!(matches!(
            unpack(ValueRef::Blob(&[9, 1, 2])),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            unpack(ValueRef::Blob(&packed[..packed.len() - 3])),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            unpack(ValueRef::Blob(&lz4[..lz4.len() - 3])),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            unpack(ValueRef::Integer(1)),
            Err(StoreError::Corrupt(_))
        ));
    }
}
