//! Provider-neutral types shared by every switchboard crate: which provider
//! an event came from, the one DynamoDB item model ([`StoredEvent`]) that
//! the webhook writes and the fanout reads, and (re-exported from
//! `switchboard-consumer`, where consumers get them) the normalised
//! conversation/message/actor model and the CloudEvents 1.0 envelope.
//!
//! Nothing here does I/O; everything is plain data plus pure derivations.
#![forbid(unsafe_code)]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
// The consumer's types are the ones the fanout serialises: one definition,
// so producer and consumers cannot drift.
use sha2::{Digest, Sha256};
use std::fmt;
pub use switchboard_consumer::{
    cloudevent_schema, cloudevent_schema_draft07, default_tenant, Actor, CloudEvent, Conversation,
    EventData, Message, Normalized, DEFAULT_TENANT,
};

/// Declares [`Provider`] from one line per provider, so its variants, its
/// `ALL` list and its names cannot disagree. Everything else about a
/// provider (route, credentials, settings, decoding, signing, fixtures) is
/// its descriptor in `switchboard_providers::registry`.
macro_rules! providers {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)+) => {
        /// The webhook senders switchboard understands.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
        )]
        pub enum Provider {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)+
        }

        impl Provider {
            /// Every provider, in a stable order.
            pub const ALL: &'static [Provider] = &[$(Provider::$variant,)+];

            /// The lowercase name used in URLs, keys, CloudEvent types and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Provider::$variant => $name,)+
                }
            }
        }
    };
}

providers! {
    /// ZipMessage (now Clarityflow): unsigned, authenticated by a URL token.
    Zipmessage = "zipmessage",
    /// Partoo: Ed25519 signature over the raw body.
    Partoo = "partoo",
    /// Bird (formerly MessageBird): HMAC-SHA256.
    Bird = "bird",
    /// The legacy MessageBird Conversations API: an HMAC-SHA JWT.
    Messagebird = "messagebird",
    /// Meta's WhatsApp Business Platform (Cloud API): HMAC-SHA256 by the
    /// app secret, many events per request.
    Whatsapp = "whatsapp",
    /// Twilio (Messaging, Conversations): HMAC-SHA1 over the URL and the
    /// form's parameters.
    Twilio = "twilio",
}

impl Provider {
    /// The CloudEvents `source` attribute for this provider's events.
    pub fn cloudevent_source(self) -> String {
        format!("urn:switchboard:{}", self.as_str())
    }

    /// Parses the lowercase name (as in the webhook path).
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.iter().copied().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conversation or dedup key within its tenant: `<tenant>/<key>`, except
/// a [`DEFAULT_TENANT`] key without a `/`, which is the key itself (so a
/// one-account deployment's subjects and group ids are the provider's own
/// keys). Two accounts of one provider can share a key (ZipMessage slugs
/// are unique per account only); scoped, they cannot. Labels have no `/`
/// (`[a-z0-9-]`), so a scoped key with a `/` names its tenant before its
/// first `/`, and the default tenant's `acme/x` (`default/acme/x`) is never
/// tenant acme's `x` (`acme/x`): no shared subject, no shared FIFO group.
pub fn scoped_key(tenant: &str, key: &str) -> String {
    if tenant == DEFAULT_TENANT && !key.contains('/') {
        key.to_owned()
    } else {
        format!("{tenant}/{key}")
    }
}

/// The tenant and the key a [`scoped_key`] names.
pub fn unscoped(scoped: &str) -> (&str, &str) {
    scoped.split_once('/').unwrap_or((DEFAULT_TENANT, scoped))
}

/// The RFC 3339 UTC rendering used everywhere in switchboard's output
/// (as many fractional digits as the time needs: none, 3, 6 or 9).
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Which SQS queue an event goes to, by the family of its canonical type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `conversation.*` events.
    Conversations,
    /// `message.*` events.
    Messages,
    /// Provider-specific types we pass through (`<provider>.<native type>`).
    Other,
}

impl Family {
    /// Every family, in a stable order.
    pub const ALL: [Family; 3] = [Family::Conversations, Family::Messages, Family::Other];

    /// Lowercase name, as used for queue names and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Conversations => "conversations",
            Family::Messages => "messages",
            Family::Other => "other",
        }
    }

    /// The family of a stored event: its type's when accepted; a
    /// quarantined event is never published, and counts as `Other`.
    pub fn of(status: Status, event_type: &str) -> Family {
        match status {
            Status::Accepted => Family::of_type(event_type),
            Status::Quarantined => Family::Other,
        }
    }

    /// The family a canonical CloudEvent type belongs to.
    pub fn of_type(event_type: &str) -> Family {
        if event_type.starts_with("conversation.") {
            Family::Conversations
        } else if event_type.starts_with("message.") {
            Family::Messages
        } else {
            Family::Other
        }
    }
}

/// Whether a stored event could be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Authentic and decoded: published to its queue.
    Accepted,
    /// Authentic but not decodable: stored with a reason, never published.
    Quarantined,
}

impl Status {
    /// Lowercase name as stored in DynamoDB.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Quarantined => "quarantined",
        }
    }
}

/// The stable event id for `(provider, dedup_key)`: a name-based UUID
/// (version 8, SHA-256), so every redelivery of an event maps to the same id.
pub fn event_id(provider: Provider, dedup_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"switchboard/event-id/v1\0");
    hasher.update(provider.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(dedup_key.as_bytes());
    let digest = hasher.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The table's keys. An item's partition is its conversation
/// (`<provider>#<tenant>#<conversation key>`), so a conversation is one
/// partition — one stream shard while the partition does not split — and
/// reads in time order with one Query; an event without a conversation gets
/// a partition of its own (`<provider>#<tenant>!<event id>`). The sort key is
/// built only from what the provider sent (`<signed time>#<event id>`, the
/// time empty when the body has none), so a redelivery always lands on the
/// same item. Keys start with the provider, so IAM confines each webhook
/// function to its own provider's items (`dynamodb:LeadingKeys`).
pub mod key {
    use super::Provider;
    use chrono::{DateTime, Utc};

    /// Separates the tenant from a conversation key.
    const CONVERSATION: char = '#';
    /// Separates the tenant from the event id of an event without a conversation.
    const LONE: char = '!';

    /// Whether `tenant` can be written into a key unambiguously: not empty,
    /// and without either separator (labels are `[a-z0-9-]`, Partoo
    /// organisation ids are checked at start-up).
    pub fn valid_tenant(tenant: &str) -> bool {
        !tenant.is_empty() && !tenant.contains([CONVERSATION, LONE])
    }

    /// The partition key: `conversation` is the provider's key within the
    /// tenant (not [`scoped_key`](super::scoped_key)ed: the tenant is
    /// already in the key).
    pub fn partition(
        provider: Provider,
        tenant: &str,
        conversation: Option<&str>,
        event_id: &str,
    ) -> String {
        match conversation {
            Some(key) => format!("{}#{tenant}{CONVERSATION}{key}", provider.as_str()),
            None => format!("{}#{tenant}{LONE}{event_id}", provider.as_str()),
        }
    }

    /// What a partition key names: provider, tenant, and the conversation
    /// key within the tenant (`None` for an event without one).
    pub fn parse_partition(pk: &str) -> Option<(Provider, &str, Option<&str>)> {
        let (provider, rest) = pk.split_once('#')?;
        let provider = Provider::from_name(provider)?;
        let at = rest.find([CONVERSATION, LONE])?;
        let (tenant, tail) = (&rest[..at], &rest[at + 1..]);
        let conversation = rest[at..].starts_with(CONVERSATION).then_some(tail);
        Some((provider, tenant, conversation))
    }

    /// A time in the sort key: RFC 3339 UTC with nine fractional digits, so
    /// the text sorts as the time does and reads back exactly.
    pub fn sortable_time(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
    }

    /// The sort key: the time the provider signed (when the body has one),
    /// then the event id.
    pub fn sort(signed_time: Option<DateTime<Utc>>, event_id: &str) -> String {
        let time = signed_time.map(sortable_time).unwrap_or_default();
        format!("{time}#{event_id}")
    }

    /// The sort key's parts: the signed time's text (empty when none) and
    /// the event id.
    pub fn parse_sort(sk: &str) -> Option<(&str, &str)> {
        sk.rsplit_once('#')
    }
}

/// Names of the table's secondary indexes, shared by the template, the
/// adapters and the tests.
pub mod index {
    /// GSI, keys only: events received on one UTC day in time order (`day`,
    /// `received_at`).
    pub const BY_DAY: &str = "by-day";
}

/// One event as the code sees it: the single item model. The webhook
/// writes it, the DynamoDB stream carries it, and the fanout rebuilds the
/// CloudEvent from it. `raw` or `raw_gz` holds the body exactly as received.
///
/// Stored, it is the smaller [`StoredItem`]: whatever the keys already say
/// (provider, tenant, conversation, event id, signed time) and whatever
/// follows from the rest (the family) is not written twice, which keeps a
/// seed-size event within one write unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StoredItem", try_from = "StoredItem")]
pub struct StoredEvent {
    /// Table partition key ([`key::partition`]).
    pub pk: String,
    /// Table sort key ([`key::sort`]).
    pub sk: String,
    /// CloudEvent id.
    pub event_id: String,
    /// Provider name.
    pub provider: Provider,
    /// Whose event it is (see [`CloudEvent::tenant`]).
    pub tenant: String,
    /// Canonical CloudEvent type (for quarantined events: `<provider>.quarantined`).
    pub event_type: String,
    /// The provider's own event type, or empty when it could not be read.
    pub native_type: String,
    /// Queue family.
    pub family: Family,
    /// Provider-scoped conversation key, within its tenant ([`scoped_key`]);
    /// empty when the event has none.
    pub conversation_key: String,
    /// When the event occurred, RFC 3339 UTC: the time the provider signed,
    /// else `received_at`.
    pub occurred_at: String,
    /// When switchboard received it, RFC 3339 UTC.
    pub received_at: String,
    /// accepted | quarantined.
    pub status: Status,
    /// Why the event is quarantined.
    pub reason: Option<String>,
    /// Raw body as text, when the item fits one write unit with it.
    pub raw: Option<String>,
    /// Raw body gzip-compressed (gzip's CRC-32 checks it), otherwise.
    pub raw_gz: Option<Vec<u8>>,
    /// Hex SHA-256 of the whole body as received, set only when the item
    /// keeps part of it (a `too_large` event).
    pub raw_sha256: Option<String>,
    /// When DynamoDB may delete the item (TTL, epoch seconds); absent when
    /// events are kept forever.
    pub expires_at: Option<i64>,
    /// On a quarantined item that `reprocess` later accepted: the accepted
    /// event's id.
    pub reprocessed_to: Option<String>,
    /// The sender's delivery id (Bird's `messagebird-request-id`), when sent.
    pub delivery_id: Option<String>,
    /// A test delivery (Partoo tryout); absent on genuine events.
    pub test: bool,
    /// On a `too_large` quarantined item, whose body is kept only in part:
    /// the request's headers (names lowercase; values that could carry a
    /// secret left out), to identify the event with its sender.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
}

/// The item as DynamoDB holds it (attribute names are the field names).
/// Only what the keys cannot say is stored; [`StoredEvent`] converts to
/// and from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    /// [`key::partition`].
    pub pk: String,
    /// [`key::sort`].
    pub sk: String,
    /// accepted | quarantined (the stream filter reads it).
    pub status: Status,
    /// The canonical type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The provider's own type.
    pub native_type: String,
    /// `by-day` partition, on quarantined items only (a sparse index: an
    /// accepted event writes nothing to it): the UTC day of `received_at`
    /// (`YYYY-MM-DD`). Items stored before it was sparse have it whatever
    /// their status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// Receive time, [`key::sortable_time`]: what a window selects on, and
    /// the `by-day` sort key.
    pub received_at: String,
    /// See [`StoredEvent::reason`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// See [`StoredEvent::raw`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// See [`StoredEvent::raw_gz`].
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub raw_gz: Option<Vec<u8>>,
    /// See [`StoredEvent::raw_sha256`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
    /// See [`StoredEvent::expires_at`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// See [`StoredEvent::reprocessed_to`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprocessed_to: Option<String>,
    /// See [`StoredEvent::delivery_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// See [`StoredEvent::test`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// See [`StoredEvent::headers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
}

fn sortable(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| key::sortable_time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| text.to_owned())
}

impl From<StoredEvent> for StoredItem {
    fn from(e: StoredEvent) -> Self {
        let received_at = sortable(&e.received_at);
        StoredItem {
            pk: e.pk,
            sk: e.sk,
            status: e.status,
            event_type: e.event_type,
            native_type: e.native_type,
            day: (e.status == Status::Quarantined)
                .then(|| received_at.get(..10).unwrap_or_default().to_owned()),
            received_at,
            reason: e.reason,
            raw: e.raw,
            raw_gz: e.raw_gz,
            raw_sha256: e.raw_sha256,
            expires_at: e.expires_at,
            reprocessed_to: e.reprocessed_to,
            delivery_id: e.delivery_id,
            test: e.test,
            headers: e.headers,
        }
    }
}

impl TryFrom<StoredItem> for StoredEvent {
    type Error = String;

    fn try_from(i: StoredItem) -> Result<Self, String> {
        let (provider, tenant, conversation) = key::parse_partition(&i.pk)
            .ok_or_else(|| format!("not a partition key this version writes: {:?}", i.pk))?;
        let (signed, event_id) = key::parse_sort(&i.sk)
            .ok_or_else(|| format!("not a sort key this version writes: {:?}", i.sk))?;
        let time = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| rfc3339(t.with_timezone(&chrono::Utc)))
                .map_err(|e| format!("unreadable time {text:?}: {e}"))
        };
        let received_at = time(&i.received_at)?;
        // A signed time this version cannot read (an earlier version kept
        // years past 9999, written `+54944-…`) counts as none, as such a
        // time is read at the webhook today: the event falls back to its
        // receive time, and the sender's value stays in its raw data.
        let occurred_at = time(signed).unwrap_or_else(|_| received_at.clone());
        Ok(StoredEvent {
            event_id: event_id.to_owned(),
            provider,
            tenant: tenant.to_owned(),
            conversation_key: conversation
                .map(|key| scoped_key(tenant, key))
                .unwrap_or_default(),
            family: Family::of(i.status, &i.event_type),
            occurred_at,
            received_at,
            pk: i.pk,
            sk: i.sk,
            event_type: i.event_type,
            native_type: i.native_type,
            status: i.status,
            reason: i.reason,
            raw: i.raw,
            raw_gz: i.raw_gz,
            raw_sha256: i.raw_sha256,
            expires_at: i.expires_at,
            reprocessed_to: i.reprocessed_to,
            delivery_id: i.delivery_id,
            test: i.test,
            headers: i.headers,
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_scoped_key_names_its_tenant_and_key_and_no_two_collide() {
        let tenants = ["default", "acme", "a-1", "123"];
        let keys = ["x", "acme/x", "default/x", "a/b/c", "", "/", "x/"];
        let mut seen = std::collections::HashMap::new();
        for tenant in tenants {
            for key in keys {
                let scoped = scoped_key(tenant, key);
                assert_eq!(unscoped(&scoped), (tenant, key), "{scoped}");
                if let Some(other) = seen.insert(scoped.clone(), (tenant, key)) {
                    panic!("{scoped} names both {other:?} and {:?}", (tenant, key));
                }
            }
        }
        // A one-account deployment keeps the provider's own keys.
        assert_eq!(scoped_key(DEFAULT_TENANT, "slug"), "slug");
        assert_eq!(scoped_key(DEFAULT_TENANT, "acme/x"), "default/acme/x");
    }

    use super::*;

    #[test]
    fn event_id_is_stable_and_provider_scoped() {
        let a = event_id(Provider::Zipmessage, "abc");
        assert_eq!(a, event_id(Provider::Zipmessage, "abc"));
        assert_ne!(a, event_id(Provider::Bird, "abc"));
        assert_ne!(a, event_id(Provider::Zipmessage, "abd"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8", "UUID version nibble");
    }

    #[test]
    fn keys_read_back_what_they_were_built_from() {
        let pk = key::partition(Provider::Bird, "acme", Some("contact:a#b!c"), "id-1");
        assert_eq!(pk, "bird#acme#contact:a#b!c");
        assert_eq!(
            key::parse_partition(&pk),
            Some((Provider::Bird, "acme", Some("contact:a#b!c")))
        );
        let lone = key::partition(Provider::Partoo, "123", None, "id-2");
        assert_eq!(lone, "partoo#123!id-2");
        assert_eq!(
            key::parse_partition(&lone),
            Some((Provider::Partoo, "123", None))
        );
        assert_eq!(key::parse_partition("slack#x#y"), None);
        assert!(!key::valid_tenant("a#b") && !key::valid_tenant("") && key::valid_tenant("acme"));

        let at = chrono::DateTime::from_timestamp(1_795_000_000, 5).unwrap_or_default();
        let sk = key::sort(Some(at), "id-1");
        assert_eq!(sk, "2026-11-18T11:06:40.000000005Z#id-1");
        assert_eq!(
            key::parse_sort(&sk),
            Some(("2026-11-18T11:06:40.000000005Z", "id-1"))
        );
        assert_eq!(key::sort(None, "id-1"), "#id-1");
        // Fixed width: the text sorts as the time does.
        let later =
            chrono::DateTime::from_timestamp(1_795_000_000, 120_000_000).unwrap_or_default();
        assert!(key::sort(Some(at), "z") < key::sort(Some(later), "a"));
    }

    #[test]
    fn the_stored_form_keeps_only_what_the_keys_cannot_say_and_reads_back_whole() {
        let event = StoredEvent {
            pk: key::partition(Provider::Zipmessage, "acme", Some("slug"), "e"),
            sk: "2026-11-18T10:26:40.500000000Z#e".into(),
            event_id: "e".into(),
            provider: Provider::Zipmessage,
            tenant: "acme".into(),
            event_type: "message.created".into(),
            native_type: "message_created".into(),
            family: Family::Messages,
            conversation_key: scoped_key("acme", "slug"),
            occurred_at: "2026-11-18T10:26:40.500Z".into(),
            received_at: "2026-11-18T10:27:00Z".into(),
            status: Status::Accepted,
            reason: None,
            raw: Some("{}".into()),
            raw_gz: None,
            raw_sha256: None,
            expires_at: None,
            reprocessed_to: None,
            delivery_id: None,
            test: false,
            headers: None,
        };
        let stored = serde_json::to_value(&event).unwrap_or_default();
        let names: Vec<&str> = stored
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            names,
            [
                "native_type",
                "pk",
                "raw",
                "received_at",
                "sk",
                "status",
                "type"
            ]
        );
        assert_eq!(stored["received_at"], "2026-11-18T10:27:00.000000000Z");
        let back: StoredEvent = serde_json::from_value(stored).expect("reads back");
        assert_eq!(back, event);
        // Only a quarantined item carries the sparse by-day index's key.
        let quarantined = StoredEvent {
            status: Status::Quarantined,
            family: Family::Other,
            reason: Some("malformed_json: …".into()),
            ..event.clone()
        };
        let stored = serde_json::to_value(&quarantined).unwrap_or_default();
        assert_eq!(stored["day"], "2026-11-18");
        let back: StoredEvent = serde_json::from_value(stored).expect("reads back");
        assert_eq!(back, quarantined);
        // An item stored before the index was sparse reads back the same.
        let mut legacy = serde_json::to_value(&event).unwrap_or_default();
        legacy["day"] = "2026-11-18".into();
        let back: StoredEvent = serde_json::from_value(legacy).expect("reads back");
        assert_eq!(back, event);
    }

    #[test]
    fn family_follows_type_prefix() {
        assert_eq!(
            Family::of_type("conversation.deleted"),
            Family::Conversations
        );
        assert_eq!(Family::of_type("message.played"), Family::Messages);
        assert_eq!(Family::of_type("partoo.lead_received"), Family::Other);
    }

    #[test]
    fn provider_names_round_trip() {
        for &p in Provider::ALL {
            assert_eq!(Provider::from_name(p.as_str()), Some(p));
            let json = serde_json::to_string(&p).expect("serialises");
            assert_eq!(
                json,
                format!("\"{}\"", p.as_str()),
                "serde uses the same name"
            );
        }
        assert_eq!(Provider::from_name("Bird"), None);
    }
}
