//! The stored body's encoding: the raw body exactly once, as text when it
//! is small UTF-8, LZ4-compressed up to 4 KiB, gzip-compressed beyond, and
//! read back byte-exact (checked against the item's `raw_sha256`).

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};
use switchboard_providers::sha256_hex;
use switchboard_types::StoredEvent;

/// Bodies up to this size that are valid UTF-8 are stored as plain text.
pub const INLINE_RAW_MAX: usize = 1024;

/// Bodies over [`INLINE_RAW_MAX`] (or not UTF-8) up to this size are
/// LZ4-compressed: much cheaper than gzip and only slightly larger at these
/// sizes, which keeps a seed-size item inside 2 DynamoDB write units. Larger
/// bodies are gzipped: there the better ratio saves write units, which cost
/// far more than the CPU (figures in docs/performance.md).
pub const LZ4_RAW_MAX: usize = 4 * 1024;

/// Largest decompressed body we will inflate when reading an item back: a
/// bound against a corrupted or hostile item.
const MAX_INFLATED: u64 = 8 * 1024 * 1024;

/// The raw body in exactly one of its three stored forms.
#[derive(Default)]
pub(crate) struct Raw {
    pub(crate) text: Option<String>,
    pub(crate) lz4: Option<Vec<u8>>,
    pub(crate) gz: Option<Vec<u8>>,
}

pub(crate) fn encode_raw(body: &[u8]) -> Raw {
    match std::str::from_utf8(body) {
        Ok(text) if body.len() <= INLINE_RAW_MAX => Raw {
            text: Some(text.to_owned()),
            ..Raw::default()
        },
        _ if body.len() <= LZ4_RAW_MAX => Raw {
            lz4: Some(lz4(body)),
            ..Raw::default()
        },
        _ => Raw {
            gz: Some(gzip(body)),
            ..Raw::default()
        },
    }
}

/// LZ4 block of `body` after its length as 4 bytes little-endian: the
/// layout of `lz4_flex::compress_prepend_size` and of python-lz4's
/// `lz4.block.compress(body)` (so `lz4.block.decompress(blob)` reads it).
pub fn lz4(body: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(body)
}

/// Inverse of [`lz4`], bounded by `MAX_INFLATED`.
pub fn unlz4(data: &[u8]) -> Result<Vec<u8>, RawError> {
    let size = data
        .get(..4)
        .map(|n| u32::from_le_bytes([n[0], n[1], n[2], n[3]]))
        .ok_or(RawError::Corrupt)?;
    if u64::from(size) > MAX_INFLATED {
        return Err(RawError::Corrupt);
    }
    lz4_flex::block::decompress_size_prepended(data).map_err(|_| RawError::Corrupt)
}

/// Standard gzip of `body` (any gzip tool reads it), at flate2's fastest
/// level: the bytes stored cost write units, but at these sizes level 1
/// stores close to the best level for far less CPU.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 2 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Inflates gzip data, bounded by `MAX_INFLATED`.
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, RawError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(3));
    GzDecoder::new(data)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|_| RawError::Corrupt)?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(RawError::Corrupt);
    }
    Ok(out)
}

/// Why an item's raw body could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// None of `raw`, `raw_lz4`, `raw_gz` is present.
    #[error("the item has no raw body")]
    Missing,
    /// The compressed body does not decompress, decompresses past the bound,
    /// or (LZ4, which has no checksum of its own) does not match `raw_sha256`.
    #[error("the item's compressed raw body is corrupt")]
    Corrupt,
}

/// The raw body bytes exactly as received.
pub fn raw_body(item: &StoredEvent) -> Result<Vec<u8>, RawError> {
    if let Some(text) = &item.raw {
        return Ok(text.as_bytes().to_vec());
    }
    if let Some(data) = &item.raw_lz4 {
        let body = unlz4(data)?;
        return if sha256_hex(&body) == item.raw_sha256 {
            Ok(body)
        } else {
            Err(RawError::Corrupt)
        };
    }
    gunzip(item.raw_gz.as_ref().ok_or(RawError::Missing)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lz4_round_trips_and_corruption_is_detected() {
        for body in [
            &b""[..],
            b"{}",
            &vec![b'x'; 4096],
            "héllo wörld ✓".as_bytes(),
        ] {
            assert_eq!(unlz4(&lz4(body)).unwrap_or_default(), body);
        }
        // The python-lz4 layout: length as 4 bytes little-endian, then the block.
        assert_eq!(lz4(b"abc")[..4], [3, 0, 0, 0]);
        assert!(unlz4(b"").is_err());
        assert!(
            unlz4(&[0xff, 0xff, 0xff, 0x7f, 0]).is_err(),
            "over the bound"
        );
    }

    #[test]
    fn gzip_round_trips_and_reads_any_standard_member() {
        for body in [
            &b""[..],
            b"{}",
            &vec![b'x'; 100_000],
            "héllo wörld ✓".as_bytes(),
        ] {
            let gz = gzip(body);
            assert_eq!(gunzip(&gz).unwrap_or_default(), body);
        }
        // A standard encoder's output (other header flags) is read too.
        let mut encoder = flate2::GzBuilder::new()
            .filename("x.json")
            .write(Vec::new(), Compression::fast());
        let _ = std::io::Write::write_all(&mut encoder, b"{\"a\":1}");
        assert_eq!(
            gunzip(&encoder.finish().unwrap_or_default()).unwrap_or_default(),
            b"{\"a\":1}"
        );
        // Corruption is detected, not returned.
        let mut gz = gzip(b"some body worth compressing, some body worth compressing");
        let last = gz.len() - 9;
        gz[last] ^= 0xff;
        assert!(gunzip(&gz).is_err());
        assert!(gunzip(b"not gzip at all").is_err());
    }
}
