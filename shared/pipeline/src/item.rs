//! Building the stored item from a request's outcome, and reading the raw
//! body back out of it.
//!
//! The item holds the raw body once — as text when it is small UTF-8,
//! LZ4-compressed up to 4 KiB, gzip-compressed beyond — plus the attributes
//! that identify, key and index the event. The normalised data is not
//! stored: it is a pure function of the raw body, recomputed by the fanout.

use chrono::{DateTime, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use switchboard_providers::{
    digest_dedup_key, sha256_hex, timestamp, DecodeError, Decoded, Delivery,
};
use switchboard_types::{event_id, partition_key, Family, Provider, Status, StoredEvent};

/// Bodies up to this size that are valid UTF-8 are stored as plain text.
pub const INLINE_RAW_MAX: usize = 1024;

/// Bodies over [`INLINE_RAW_MAX`] (or not UTF-8) up to this size are
/// LZ4-compressed: much cheaper than gzip and only slightly larger at these
/// sizes, which keeps a seed-size item inside 2 DynamoDB write units. Larger
/// bodies are gzipped: there the better ratio saves write units, which cost
/// far more than the CPU (figures in docs/performance.md).
pub const LZ4_RAW_MAX: usize = 4 * 1024;

/// The largest body limit that still lets every item fit DynamoDB's 400 KB
/// item cap in the worst case (incompressible body, gzip's small overhead
/// and about 2 KB of attributes).
pub const MAX_BODY_LIMIT: usize = 380 * 1024;

/// Largest decompressed body we will inflate when reading an item back: a
/// bound against a corrupted or hostile item.
const MAX_INFLATED: u64 = 8 * 1024 * 1024;

/// Builds the item for an authentic request: accepted when it decoded and
/// was admitted, quarantined (with the reason) when not. The dedup key is
/// scoped by the delivery (a test delivery never shares a genuine key).
pub fn build(
    provider: Provider,
    outcome: &Result<Decoded, DecodeError>,
    delivery: &Delivery,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> StoredEvent {
    build_hashed(
        provider,
        outcome,
        delivery,
        body,
        &Sha256::digest(body).into(),
        received_at,
    )
}

/// [`build`] with the body's SHA-256 already at hand (a request whose
/// signature covered it: `Inbound::body_sha256`). `body_sha256` is the
/// digest of the body as received: for a `too_large` event, `body` is the
/// part of it that is kept, and the digest still names the whole.
pub fn build_hashed(
    provider: Provider,
    outcome: &Result<Decoded, DecodeError>,
    delivery: &Delivery,
    body: &[u8],
    body_sha256: &[u8; 32],
    received_at: DateTime<Utc>,
) -> StoredEvent {
    let raw_sha256 = hex::encode(body_sha256);
    let received = timestamp::format(received_at);
    let Raw {
        text: raw,
        lz4: raw_lz4,
        gz: raw_gz,
    } = if matches!(outcome, Err(DecodeError::TooLarge { .. })) {
        // Only part of the body is kept, so `raw_sha256` (the whole body's
        // digest) cannot check it, as it checks LZ4: gzip carries its own CRC.
        Raw {
            gz: Some(gzip(body)),
            ..Raw::default()
        }
    } else {
        encode_raw(body)
    };
    let (status, event_type, native_type, natural_key, conversation_key, occurred_at, reason) =
        match outcome {
            Ok(d) => (
                Status::Accepted,
                d.event_type.clone(),
                d.native_type.clone(),
                d.dedup_key.clone(),
                d.conversation_key.clone().unwrap_or_default(),
                d.occurred_at
                    .map(timestamp::format)
                    .unwrap_or_else(|| received.clone()),
                None,
            ),
            Err(e) => (
                Status::Quarantined,
                format!("{}.quarantined", provider.as_str()),
                e.native_type().unwrap_or_default().to_owned(),
                digest_dedup_key(&raw_sha256),
                String::new(),
                received.clone(),
                Some(format!("{}: {}", e.code(), e)),
            ),
        };
    let dedup_key = delivery.scope_dedup_key(&natural_key);
    let id = event_id(provider, &dedup_key);
    let family = match status {
        Status::Accepted => Family::of_type(&event_type),
        Status::Quarantined => Family::Other,
    };
    let (conv_pk, conv_sk) = if conversation_key.is_empty() {
        (None, None)
    } else {
        (
            Some(format!("{}#{}", provider.as_str(), conversation_key)),
            Some(format!("{occurred_at}#{id}")),
        )
    };
    StoredEvent {
        pk: partition_key(provider, &id),
        provider,
        event_type,
        native_type,
        family,
        conversation_key,
        day: received[..10].to_owned(),
        day_sk: format!("{received}#{id}"),
        occurred_at,
        received_at: received,
        status,
        dedup_key,
        reason,
        raw,
        raw_lz4,
        raw_gz,
        raw_sha256,
        conv_pk,
        conv_sk,
        event_id: id,
        expires_at: None,
        reprocessed_to: None,
        delivery_id: delivery.delivery_id.clone(),
        test: delivery.test,
        headers: None,
    }
}

/// The delivery facts stored with `item`, as the webhook saw them.
pub fn delivery_of(item: &StoredEvent) -> Delivery {
    Delivery {
        test: item.test,
        delivery_id: item.delivery_id.clone(),
    }
}

/// The raw body in exactly one of its three stored forms.
#[derive(Default)]
struct Raw {
    text: Option<String>,
    lz4: Option<Vec<u8>>,
    gz: Option<Vec<u8>>,
}

fn encode_raw(body: &[u8]) -> Raw {
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
/// stores within about 10% of the best level for far less CPU.
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
    fn the_request_digest_gives_the_item_the_body_alone_gives() {
        let body = br#"{"type":"message_created","payload":{}}"#;
        let headers = http::HeaderMap::new();
        let inbound = switchboard_providers::Inbound::new(&headers, body, None);
        let now = Utc::now();
        for outcome in [
            switchboard_providers::decode_body(Provider::Partoo, body),
            Err(DecodeError::MalformedJson("x".into())),
        ] {
            let hashed = build_hashed(
                Provider::Partoo,
                &outcome,
                &Delivery::default(),
                body,
                inbound.body_sha256(),
                now,
            );
            assert_eq!(
                hashed,
                build(Provider::Partoo, &outcome, &Delivery::default(), body, now)
            );
            assert_eq!(hashed.raw_sha256, sha256_hex(body));
        }
        let quarantined = build(
            Provider::Partoo,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            body,
            now,
        );
        assert_eq!(
            quarantined.dedup_key,
            format!("sha256:{}", sha256_hex(body))
        );
    }

    #[test]
    fn small_utf8_is_inline_mid_size_is_lz4_and_large_is_gzip() {
        let small = build(
            Provider::Bird,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            b"{}",
            Utc::now(),
        );
        assert_eq!(small.raw.as_deref(), Some("{}"));
        assert!(small.raw_gz.is_none());

        let mid_body = vec![b'm'; 3000];
        let mid = build(
            Provider::Bird,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            &mid_body,
            Utc::now(),
        );
        assert!(mid.raw.is_none() && mid.raw_gz.is_none());
        assert!(mid.raw_lz4.as_ref().is_some_and(|lz| lz.len() < 100));
        assert_eq!(raw_body(&mid).unwrap_or_default(), mid_body);

        let large_body = vec![b'a'; 5000];
        let large = build(
            Provider::Bird,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            &large_body,
            Utc::now(),
        );
        assert!(large.raw.is_none() && large.raw_lz4.is_none());
        assert!(large.raw_gz.as_ref().is_some_and(|gz| gz.len() < 200));
        assert_eq!(raw_body(&large).unwrap_or_default(), large_body);

        let binary = build(
            Provider::Bird,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            &[0xff, 0xfe],
            Utc::now(),
        );
        assert!(binary.raw_lz4.is_some(), "short but not UTF-8");
        assert_eq!(raw_body(&binary).unwrap_or_default(), vec![0xff, 0xfe]);
    }

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

        // A flipped byte that still decompresses is caught by the digest.
        let body = br#"{"type":"message_created","payload":{"text":"hello hello hello hello"}}"#;
        let mut item = build(
            Provider::Partoo,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            &[body.as_slice(), &[b' '; 1100]].concat(),
            Utc::now(),
        );
        assert!(raw_body(&item).is_ok());
        if let Some(data) = item.raw_lz4.as_mut() {
            data[10] ^= 0x01;
        }
        assert!(raw_body(&item).is_err());
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

    #[test]
    fn quarantined_items_carry_reason_and_body_hash_key() {
        let item = build(
            Provider::Partoo,
            &Err(DecodeError::MalformedJson("EOF".into())),
            &Delivery::default(),
            b"{not json",
            Utc::now(),
        );
        assert_eq!(item.status, Status::Quarantined);
        assert_eq!(item.event_type, "partoo.quarantined");
        assert!(item.dedup_key.starts_with("sha256:"));
        assert!(item
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("malformed_json")));
        assert!(item.conv_pk.is_none());
        assert!(item.pk.starts_with("partoo#"));
    }
}
