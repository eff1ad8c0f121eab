//! Building the stored item from a request's outcome.
//!
//! The item holds the raw body once, in the form [`codec`](crate::codec)
//! chooses, plus the attributes that identify, key and index the event. The
//! normalised data is not stored: it is a pure function of the raw body,
//! recomputed by the fanout.

use crate::codec::gzip;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use switchboard_providers::registry::{descriptor, Labels};
use switchboard_providers::{digest_dedup_key, timestamp, DecodeError, Decoded, Delivery};
use switchboard_types::{
    event_id, key, scoped_key, Family, Provider, Status, StoredEvent, StoredItem, DEFAULT_TENANT,
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
        None,
    )
}

/// [`build`] with the body's SHA-256 already at hand (a request whose
/// signature covered it: `Inbound::body_sha256`), and the item's
/// `expires_at` (its size decides the body's stored form). `body_sha256` is
/// the digest of the body as received: for a `too_large` event, `body` is
/// the part of it that is kept, and the digest still names the whole.
pub fn build_hashed(
    provider: Provider,
    outcome: &Result<Decoded, DecodeError>,
    delivery: &Delivery,
    body: &[u8],
    body_sha256: &[u8; 32],
    received_at: DateTime<Utc>,
    expires_at: Option<i64>,
) -> StoredEvent {
    let received = timestamp::format(received_at);
    let partial = matches!(outcome, Err(DecodeError::TooLarge { .. }));
    let (status, event_type, native_type, natural_key, conversation, signed_time, reason) =
        match outcome {
            Ok(d) => (
                Status::Accepted,
                d.event_type.clone(),
                d.native_type.clone(),
                d.dedup_key.clone(),
                d.conversation_key.clone().filter(|k| !k.is_empty()),
                d.occurred_at,
                None,
            ),
            Err(e) => (
                Status::Quarantined,
                format!("{}.quarantined", provider.as_str()),
                e.native_type().unwrap_or_default().to_owned(),
                digest_dedup_key(&hex::encode(body_sha256)),
                None,
                None,
                Some(format!("{}: {}", e.code(), e)),
            ),
        };
    let tenant = delivery.tenant_of(outcome.as_ref().ok().and_then(|d| d.account.as_deref()));
    let dedup_key = delivery.scope_dedup_key(&scoped_key(&tenant, &natural_key));
    let id = event_id(provider, &dedup_key);
    let family = Family::of(status, &event_type);
    let mut event = StoredEvent {
        pk: key::partition(provider, &tenant, conversation.as_deref(), &id),
        sk: key::sort(signed_time, &id),
        provider,
        event_type,
        native_type,
        family,
        conversation_key: conversation
            .map(|k| scoped_key(&tenant, &k))
            .unwrap_or_default(),
        tenant,
        occurred_at: signed_time
            .map(timestamp::format)
            .unwrap_or_else(|| received.clone()),
        received_at: received,
        status,
        reason,
        raw: None,
        raw_gz: None,
        // The body is kept in part: the digest still names the whole.
        raw_sha256: partial.then(|| hex::encode(body_sha256)),
        event_id: id,
        expires_at,
        reprocessed_to: None,
        delivery_id: delivery.delivery_id.clone(),
        test: delivery.test,
        headers: None,
    };
    set_body(&mut event, body, partial);
    event
}

/// Stores `body` in the item, as text when the item then fits one write
/// unit (and the body is UTF-8 and whole), else gzipped. A `too_large`
/// body is always gzipped: text would not fit DynamoDB's item limit (and
/// the `headers` kept with it never change the form).
fn set_body(event: &mut StoredEvent, body: &[u8], partial: bool) {
    event.raw = None;
    event.raw_gz = None;
    if !partial {
        if let Ok(text) = std::str::from_utf8(body) {
            event.raw = Some(text.to_owned());
            if stored_size(event) <= WRITE_UNIT {
                return;
            }
            event.raw = None;
        }
    }
    event.raw_gz = Some(gzip(body));
}

/// What a standard write costs one write request unit for.
pub const WRITE_UNIT: usize = 1024;

/// The item's size by DynamoDB's rules (attribute names and values; strings
/// and binaries by their bytes; a number at most 21 bytes; a map 3 bytes
/// plus, per entry, 1 byte, its name and its value): what its writes cost.
pub fn stored_size(event: &StoredEvent) -> usize {
    let item = StoredItem::from(event.clone());
    let text = |name: &str, value: &str| name.len() + value.len();
    let optional = |name: &str, value: &Option<String>| value.as_ref().map_or(0, |v| text(name, v));
    text("pk", &item.pk)
        + text("sk", &item.sk)
        + text("status", item.status.as_str())
        + text("type", &item.event_type)
        + text("native_type", &item.native_type)
        + optional("day", &item.day)
        + text("received_at", &item.received_at)
        + optional("reason", &item.reason)
        + optional("raw", &item.raw)
        + item.raw_gz.as_ref().map_or(0, |b| "raw_gz".len() + b.len())
        + optional("raw_sha256", &item.raw_sha256)
        + item
            .expires_at
            .map_or(0, |n| "expires_at".len() + number_size(n))
        + optional("reprocessed_to", &item.reprocessed_to)
        + optional("delivery_id", &item.delivery_id)
        + if item.test { "test".len() + 1 } else { 0 }
        + item.headers.as_ref().map_or(0, |h| {
            "headers".len() + 3 + h.iter().map(|(k, v)| 1 + k.len() + v.len()).sum::<usize>()
        })
}

/// DynamoDB's size of a number: one byte per two significant digits, plus one.
fn number_size(n: i64) -> usize {
    let digits = n.unsigned_abs().to_string();
    let significant = digits.trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
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
                None,
            );
            assert_eq!(
                hashed,
                build(Provider::Partoo, &outcome, &Delivery::default(), body, now)
            );
            assert_eq!(hashed.raw_sha256, None, "the whole body is kept");
        }
        let quarantined = build(
            Provider::Partoo,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            body,
            now,
        );
        assert_eq!(
            quarantined.event_id,
            event_id(Provider::Partoo, &format!("sha256:{}", sha256_hex(body)))
        );
    }

    fn quarantined(body: &[u8]) -> StoredEvent {
        build(
            Provider::Bird,
            &Err(DecodeError::MalformedJson("x".into())),
            &Delivery::default(),
            body,
            Utc::now(),
        )
    }

    #[test]
    fn text_while_the_item_fits_one_write_unit_then_gzip() {
        let small = quarantined(b"{}");
        assert_eq!(small.raw.as_deref(), Some("{}"));
        assert!(small.raw_gz.is_none());
        assert!(stored_size(&small) <= WRITE_UNIT);

        // The largest text body that keeps the item within one unit is text;
        // one byte more is gzipped, and the item still fits.
        let overhead = stored_size(&small) - 2;
        let fits = vec![b'm'; WRITE_UNIT - overhead];
        let item = quarantined(&fits);
        assert!(item.raw.is_some(), "{}", stored_size(&item));
        assert_eq!(stored_size(&item), WRITE_UNIT);
        let over = vec![b'm'; WRITE_UNIT - overhead + 1];
        let item = quarantined(&over);
        assert!(item.raw.is_none() && item.raw_gz.is_some());
        assert!(stored_size(&item) < WRITE_UNIT);
        assert_eq!(raw_body(&item).unwrap_or_default(), over);

        let binary = quarantined(&[0xff, 0xfe]);
        assert!(binary.raw_gz.is_some(), "short but not UTF-8");
        assert_eq!(raw_body(&binary).unwrap_or_default(), vec![0xff, 0xfe]);
    }

    #[test]
    fn a_corrupt_gzip_body_is_caught_by_its_crc() {
        let body = [
            &br#"{"type":"message_created","payload":{"text":"hello"}}"#[..],
            &[b' '; 1100],
        ]
        .concat();
        let mut item = quarantined(&body);
        assert_eq!(raw_body(&item).unwrap_or_default(), body);
        if let Some(data) = item.raw_gz.as_mut() {
            let at = data.len() - 12;
            data[at] ^= 0x01;
        }
        assert!(raw_body(&item).is_err());
    }

    #[test]
    fn keys_name_the_conversation_and_what_the_provider_sent() {
        let body = br#"{"type":"message_created","id":"m-1","occurred_at":"2026-11-20T10:00:00Z","payload":{"conversation":{"slug":"abc"}}}"#;
        let outcome = switchboard_providers::decode_body(Provider::Zipmessage, body);
        let at = |s| DateTime::from_timestamp(s, 0).unwrap_or_default();
        let first = build(
            Provider::Zipmessage,
            &outcome,
            &Delivery::default(),
            body,
            at(1_800_000_000),
        );
        let again = build(
            Provider::Zipmessage,
            &outcome,
            &Delivery::default(),
            body,
            at(1_800_003_600),
        );
        assert_eq!(
            (&first.pk, &first.sk),
            (&again.pk, &again.sk),
            "a redelivery lands on the same item"
        );
        if let Ok(d) = &outcome {
            let conversation = d.conversation_key.clone().unwrap_or_default();
            assert_eq!(first.pk, format!("zipmessage#default#{conversation}"));
            assert_eq!(first.conversation_key, conversation);
            let signed = d.occurred_at.map(key::sortable_time).unwrap_or_default();
            assert_eq!(first.sk, format!("{signed}#{}", first.event_id));
        }
        let lone = quarantined(b"{");
        assert_eq!(lone.pk, format!("bird#default!{}", lone.event_id));
        assert_eq!(lone.sk, format!("#{}", lone.event_id));
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
        assert_eq!(
            item.event_id,
            event_id(
                Provider::Partoo,
                &digest_dedup_key(&sha256_hex(b"{not json"))
            )
        );
        assert!(item
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("malformed_json")));
        assert!(item.conversation_key.is_empty());
        assert!(item.pk.starts_with("partoo#default!"));
    }
}
