//! Building the stored item from a request's outcome.
//!
//! The item holds the raw body once, in the form [`codec`](crate::codec)
//! chooses, plus the attributes that identify, key and index the event. The
//! normalised data is not stored: it is a pure function of the raw body,
//! recomputed by the fanout.

use crate::codec::{encode_raw, gzip, Raw};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use switchboard_providers::registry::{descriptor, Labels};
use switchboard_providers::{digest_dedup_key, timestamp, DecodeError, Decoded, Delivery};
use switchboard_types::{
    event_id, partition_key, scoped_key, Family, Provider, Status, StoredEvent, DEFAULT_TENANT,
};

/// The largest body limit that still lets every item fit DynamoDB's 400 KB
/// item cap in the worst case (incompressible body, gzip's small overhead
/// and about 2 KB of attributes).
pub const MAX_BODY_LIMIT: usize = 380 * 1024;

/// Builds the item for an authentic request: accepted when it decoded and
/// was admitted, quarantined (with the reason) when not. The conversation
/// and dedup keys are scoped to the event's tenant ([`Delivery::tenant_of`]),
/// and the dedup key by the delivery (a test delivery never shares a
/// genuine key).
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
    let tenant = delivery.tenant_of(outcome.as_ref().ok().and_then(|d| d.account.as_deref()));
    let dedup_key = delivery.scope_dedup_key(&scoped_key(&tenant, &natural_key));
    let conversation_key = if conversation_key.is_empty() {
        conversation_key
    } else {
        scoped_key(&tenant, &conversation_key)
    };
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
        tenant,
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
        // A label came from the credential only where the provider's
        // credentials carry one; otherwise the body named the tenant.
        tenant: (item.tenant != DEFAULT_TENANT && descriptor(item.provider).labels != Labels::None)
            .then(|| item.tenant.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::raw_body;
    use switchboard_providers::sha256_hex;

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
    fn a_corrupt_lz4_body_is_caught_by_the_digest() {
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
