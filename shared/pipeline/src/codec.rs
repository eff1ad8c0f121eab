//! The stored body's encoding: the raw body exactly once, as text when the
//! item fits one write unit with it, gzip-compressed otherwise (the form
//! [`crate::item::set_body`] picks), and read back byte-exact: DynamoDB keeps
//! a string as written, and gzip's CRC-32 checks the compressed form.

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};
use switchboard_types::StoredEvent;

/// Largest decompressed body we will inflate when reading an item back: a
/// bound against a corrupted or hostile item.
const MAX_INFLATED: u64 = 8 * 1024 * 1024;

/// Standard gzip of `body` (any gzip tool reads it), at the best level: the
/// bytes stored cost write units, and on seed-size bodies level 9 stores up
/// to 66 bytes less than level 1 for a few microseconds more
/// (docs/performance.md).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 2 + 64), Compression::best());
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
    /// Neither `raw` nor `raw_gz` is present.
    #[error("the item has no raw body")]
    Missing,
    /// The compressed body does not decompress, fails gzip's CRC-32, or
    /// decompresses past the bound.
    #[error("the item's compressed raw body is corrupt")]
    Corrupt,
}

/// The raw body bytes exactly as stored.
pub fn raw_body(item: &StoredEvent) -> Result<Vec<u8>, RawError> {
    if let Some(text) = &item.raw {
        return Ok(text.as_bytes().to_vec());
    }
    gunzip(item.raw_gz.as_ref().ok_or(RawError::Missing)?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
