//! The providers: how each webhook sender authenticates its requests and how
//! its payloads decode into the provider-neutral model.
//!
//! Everything here is pure — bytes and headers in, a verdict out. No I/O, no
//! clock reads (the caller passes `now`), no environment reads (the caller
//! builds each provider from its configured keys). Adding a provider means
//! adding one module that implements [`WebhookProvider`].
#![forbid(unsafe_code)]

pub mod bird;
pub mod html;
pub mod partoo;
pub mod timestamp;
pub mod zipmessage;

mod json;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use switchboard_types::{Normalized, Provider};

pub use bird::Bird;
pub use partoo::Partoo;
pub use zipmessage::Zipmessage;

/// What a provider sees of an HTTP request: headers, the raw body bytes, and
/// the token from the URL path (ZipMessage only). Built once per request
/// ([`Inbound::new`]) and read-only, so the body's digest cannot go stale.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    /// Request headers (names are case-insensitive).
    headers: &'a HeaderMap,
    /// The body exactly as received.
    body: &'a [u8],
    /// The `{token}` path segment, when the route has one.
    path_token: Option<&'a str>,
    /// SHA-256 of `body`, computed on first use: Bird's signature covers it
    /// and the stored item records it, so a request hashes its body once.
    body_sha256: std::cell::OnceCell<[u8; 32]>,
}

impl<'a> Inbound<'a> {
    /// A request as received.
    pub fn new(headers: &'a HeaderMap, body: &'a [u8], path_token: Option<&'a str>) -> Self {
        Self {
            headers,
            body,
            path_token,
            body_sha256: std::cell::OnceCell::new(),
        }
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// SHA-256 of the body (computed once per request).
    pub fn body_sha256(&self) -> &[u8; 32] {
        self.body_sha256
            .get_or_init(|| Sha256::digest(self.body).into())
    }
}

/// What a request's headers say about this delivery, beyond what the body
/// says. Kept with the stored event, so `reprocess` sees what the webhook saw.
/// None of it is identity: a signature covers the body, not these headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// A test delivery (Partoo's `X-Partoo-Webhook-Tryout`): real-looking
    /// data, published with the CloudEvents extension `test: true`.
    pub test: bool,
    /// The sender's id for this notification across its attempts (Bird's
    /// `messagebird-request-id`), published as the extension `deliveryid`.
    pub delivery_id: Option<String>,
}

impl Delivery {
    /// The longest delivery id kept; a longer header is not an id Bird sends.
    pub const MAX_ID_LEN: usize = 256;

    /// The dedup key of an event delivered this way: a test delivery's key
    /// can never equal a genuine event's, so a tryout of message 123 does not
    /// make the genuine message 123 a duplicate.
    pub fn scope_dedup_key(&self, natural: &str) -> String {
        if self.test {
            format!("test:{natural}")
        } else {
            natural.to_owned()
        }
    }
}

/// Which authentic events are published, beyond their signature: settings
/// the webhooks and `reprocess` read alike (never secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Partoo organisations whose events are published (`PARTOO_ORG_IDS`).
    /// One Partoo key signs every organisation's webhooks, so a signature
    /// proves "Partoo sent this", not "this is ours". Empty publishes nothing
    /// from Partoo.
    pub partoo_org_ids: std::collections::BTreeSet<String>,
}

impl Admission {
    /// Checks a decoded event against the settings.
    pub fn admit(&self, provider: Provider, decoded: &Decoded) -> Result<(), DecodeError> {
        match provider {
            Provider::Partoo => match &decoded.account {
                Some(org) if self.partoo_org_ids.contains(org) => Ok(()),
                org => Err(DecodeError::OrgNotAllowed {
                    org_id: org.clone(),
                }),
            },
            Provider::Zipmessage | Provider::Bird => Ok(()),
        }
    }
}

/// An authentic event decoded into the neutral model.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The provider's own type string, as sent.
    pub native_type: String,
    /// Canonical CloudEvent type or `<provider>.<native type>`.
    pub event_type: String,
    /// What makes a redelivery of this event recognisable, built only from
    /// what the sender signed (the body; for ZipMessage, the whole request).
    pub dedup_key: String,
    /// The sender-side account the body names, when it names one (Partoo's
    /// organisation, `org_id`).
    pub account: Option<String>,
    /// Provider-scoped conversation key, when the event concerns one.
    pub conversation_key: Option<String>,
    /// When it occurred, if the payload says.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Normalised conversation/message/actor.
    pub normalized: Normalized,
}

/// Why a request failed authentication. Every variant answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// ZipMessage URL carried no token.
    #[error("the webhook URL carries no token")]
    MissingToken,
    /// ZipMessage token matched no configured token.
    #[error("the webhook URL token is not valid")]
    InvalidToken,
    /// The signature header is absent or empty.
    #[error("missing signature header {0}")]
    MissingSignature(&'static str),
    /// The signature header is not base64 of the right length.
    #[error("the signature header {0} is not a well-formed signature")]
    MalformedSignature(&'static str),
    /// The signature matched no configured key.
    #[error("the signature does not match the body")]
    InvalidSignature,
    /// Bird's timestamp header is absent.
    #[error("missing timestamp header {0}")]
    MissingTimestamp(&'static str),
    /// Bird's timestamp header is not a Unix time.
    #[error("the timestamp header {0} is not a Unix time")]
    MalformedTimestamp(&'static str),
    /// Bird's (validly signed) timestamp is older than the past tolerance
    /// or further ahead than the future tolerance.
    #[error("the request timestamp is {skew_secs} s {direction} now, past the accepted {tolerance_secs} s")]
    TimestampOutOfWindow {
        /// How far the timestamp is from now.
        skew_secs: u64,
        /// `before` or `after`.
        direction: &'static str,
        /// The tolerance in that direction.
        tolerance_secs: u64,
    },
}

impl AuthError {
    /// Stable machine-readable code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken => "invalid_token",
            AuthError::MissingSignature(_) => "missing_signature",
            AuthError::MalformedSignature(_) => "malformed_signature",
            AuthError::InvalidSignature => "invalid_signature",
            AuthError::MissingTimestamp(_) => "missing_timestamp",
            AuthError::MalformedTimestamp(_) => "malformed_timestamp",
            AuthError::TimestampOutOfWindow { .. } => "timestamp_out_of_window",
        }
    }
}

/// Why an authentic body is not published: it could not be decoded, or is
/// not admitted. The event is stored as quarantined, with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Over the body limit: kept as far as an item holds, never decoded.
    #[error(
        "the body is {size} bytes, over the limit of {limit}; its first {limit} bytes are kept"
    )]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A Partoo event of an organisation that is not listed (or that names none).
    #[error("{}", match org_id {
        Some(org) => format!("Partoo organisation {org} is not in PARTOO_ORG_IDS"),
        None => "the Partoo event names no organisation (payload.org_id or payload.business.org_id)".to_owned(),
    })]
    OrgNotAllowed {
        /// The organisation the body names.
        org_id: Option<String>,
    },
    /// Not JSON at all (or invalid UTF-8, or nested too deep).
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// JSON, but not the provider's envelope.
    #[error("the body is not a {provider} envelope: {detail}")]
    NoEnvelope {
        /// Provider name.
        provider: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A known event type without a field needed to identify or key it.
    #[error("{event_type} is missing the required field {field}")]
    MissingField {
        /// The native type.
        event_type: String,
        /// Dotted path of the missing field.
        field: &'static str,
    },
    /// An event type longer than any a provider documents.
    #[error("the event type is {len} bytes, over the limit of {MAX_TYPE_LEN}")]
    TypeTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The store refused the accepted event for good (DynamoDB's
    /// `ValidationException`): it is kept as quarantined instead.
    #[error("the store refused the event: {0}")]
    StorageRefused(String),
}

impl DecodeError {
    /// Stable machine-readable reason code stored with the quarantined event.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::OrgNotAllowed { .. } => "org_not_allowed",
            DecodeError::MalformedJson(_) => "malformed_json",
            DecodeError::NoEnvelope { .. } => "no_envelope",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::TypeTooLong { .. } => "type_too_long",
            DecodeError::StorageRefused(_) => "storage_refused",
        }
    }

    /// The native type, when the envelope was readable far enough to tell.
    pub fn native_type(&self) -> Option<&str> {
        match self {
            DecodeError::MissingField { event_type, .. } if event_type.len() <= MAX_TYPE_LEN => {
                Some(event_type)
            }
            _ => None,
        }
    }
}

/// Why a provider's configured keys are unusable. Raised at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No key/token at all.
    #[error("no {0} configured")]
    Empty(&'static str),
    /// A key could not be parsed (which one is said by position, never by value).
    #[error("{what} number {position} is invalid: {detail}")]
    InvalidKey {
        /// What kind of key.
        what: &'static str,
        /// 1-based position in the list.
        position: usize,
        /// Why.
        detail: String,
    },
    /// Another setting is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// One webhook sender: how to authenticate its requests and what their
/// headers say about the delivery. Bodies decode through [`decode_event`].
pub trait WebhookProvider: Send + Sync + std::fmt::Debug {
    /// Which provider this is.
    fn provider(&self) -> Provider;

    /// Proves the request is authentic. Runs on the raw bytes, before any parsing.
    fn authenticate(&self, request: &Inbound<'_>, now: DateTime<Utc>) -> Result<(), AuthError>;

    /// The delivery facts an authentic request's headers carry.
    fn delivery(&self, _request: &Inbound<'_>) -> Delivery {
        Delivery::default()
    }
}

/// Decodes an authentic body and checks it against the admission settings:
/// what the webhook does on arrival and `reprocess` does again later, so the
/// two cannot disagree.
pub fn decode_event(
    provider: Provider,
    body: &[u8],
    admission: &Admission,
) -> Result<Decoded, DecodeError> {
    let decoded = decode_body(provider, body)?;
    admission.admit(provider, &decoded)?;
    Ok(decoded)
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The fallback dedup key when a payload carries nothing better: the body hash.
pub fn body_dedup_key(body: &[u8]) -> String {
    digest_dedup_key(&sha256_hex(body))
}

/// [`body_dedup_key`] from the body's SHA-256 in hex, when it is at hand.
pub fn digest_dedup_key(body_sha256_hex: &str) -> String {
    format!("sha256:{body_sha256_hex}")
}

/// `<provider>.<native type>` for types we pass through without modelling.
pub fn passthrough_type(provider: Provider, native_type: &str) -> String {
    format!("{}.{}", provider.as_str(), native_type)
}

/// The envelope's event type, which must not be blank: a body whose type is
/// `""` is not the provider's envelope (found by fuzzing; such a body used
/// to be published as `<provider>.`).
pub(crate) fn required_type(
    provider: &'static str,
    field: &str,
    native_type: String,
) -> Result<String, DecodeError> {
    if native_type.trim().is_empty() {
        return Err(DecodeError::NoEnvelope {
            provider,
            detail: format!("`{field}` is empty"),
        });
    }
    Ok(native_type)
}

/// Splits a configured list: comma- or whitespace-separated, or a JSON array
/// of strings (the shape a Secrets Manager secret holds). Empty items are dropped.
pub fn split_key_list(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    if trimmed.starts_with('[') {
        if let Ok(items) = serde_json::from_str::<Vec<String>>(trimmed) {
            return items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    trimmed
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sorts a serde error into "not JSON at all" versus "JSON, but not the
/// provider's envelope" (wrong shape, missing `type`, duplicate keys).
pub(crate) fn classify_json_error(
    provider: &'static str,
    error: &serde_json::Error,
) -> DecodeError {
    match error.classify() {
        serde_json::error::Category::Data => DecodeError::NoEnvelope {
            provider,
            detail: error.to_string(),
        },
        _ => DecodeError::MalformedJson(error.to_string()),
    }
}

/// The body as JSON text, which is UTF-8 (RFC 8259, section 8.1), checked
/// whole. serde_json reading bytes checks only the strings it keeps: a body
/// with invalid UTF-8 in a field that no model reads used to decode, be
/// accepted, and then fail in the fanout, which publishes the body as text,
/// on every retry of its stream record. Checking the whole body once also
/// lets serde_json read `&str`, which skips its check of each string.
fn json_text(body: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(body).map_err(|e| {
        DecodeError::MalformedJson(format!("invalid UTF-8 at byte {}", e.valid_up_to()))
    })
}

/// Parses a body as the provider's envelope, which must be a JSON object:
/// serde would otherwise read a JSON array positionally into the envelope
/// struct (`["x"]` as `{"type": "x"}`), which is no envelope at all.
pub(crate) fn parse_envelope<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    body: &[u8],
) -> Result<T, DecodeError> {
    let text = json_text(body)?;
    if !starts_as_object(text) {
        // Invalid JSON keeps its malformed_json code; valid JSON that is not
        // an object is not the envelope.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(e) => classify_json_error(provider, &e),
            Ok(_) => DecodeError::NoEnvelope {
                provider,
                detail: "the body is not a JSON object".into(),
            },
        });
    }
    serde_json::from_str(text).map_err(|e| classify_json_error(provider, &e))
}

fn starts_as_object(text: &str) -> bool {
    text.trim_start_matches(|c: char| c.is_ascii_whitespace())
        .starts_with('{')
}

/// Decodes a body of `provider`, without the admission check: what the
/// fanout uses to rebuild an accepted (so admitted) event's normalised data
/// from its raw body. Header-derived facts ([`Delivery`]) are stored with
/// the event, so they are not needed here.
pub fn decode_body(provider: Provider, body: &[u8]) -> Result<Decoded, DecodeError> {
    let decoded = match provider {
        Provider::Zipmessage => zipmessage::decode(body),
        Provider::Partoo => partoo::decode(body),
        Provider::Bird => bird::decode(body),
    }?;
    bounded(decoded)
}

/// The longest native event type published. No provider documents one
/// near it; a longer one is quarantined (`type_too_long`), since it would
/// be published as a type no consumer routes on.
pub const MAX_TYPE_LEN: usize = 256;

/// The longest conversation key or dedup key used as it is. Both end up in
/// stored keys (DynamoDB: partition keys ≤ 2,048 bytes, sort keys ≤ 1,024)
/// and the conversation key in the CloudEvent `subject`; a longer one is
/// replaced by [`bounded_key`]'s digest. The full value stays in the body.
pub const MAX_KEY_LEN: usize = 512;

/// `key` when it is at most [`MAX_KEY_LEN`] bytes, else `sha256:<hex>` of
/// it: stable (a redelivery gets the same key) and short.
pub fn bounded_key(key: String) -> String {
    if key.len() <= MAX_KEY_LEN {
        key
    } else {
        format!("sha256:{}", sha256_hex(key.as_bytes()))
    }
}

/// Holds a decoded event to the limits above, whichever provider decoded it.
fn bounded(mut decoded: Decoded) -> Result<Decoded, DecodeError> {
    if decoded.native_type.len() > MAX_TYPE_LEN {
        return Err(DecodeError::TypeTooLong {
            len: decoded.native_type.len(),
        });
    }
    decoded.dedup_key = bounded_key(std::mem::take(&mut decoded.dedup_key));
    decoded.conversation_key = decoded.conversation_key.take().map(bounded_key);
    if let Some(conversation) = decoded.normalized.conversation.as_mut() {
        // The key equals the CloudEvent subject, so it is bounded the same way.
        conversation.key = bounded_key(std::mem::take(&mut conversation.key));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every variant of `value` with one node replaced by another shape.
    fn variants(value: &Value, out: &mut Vec<Value>) {
        let shapes = [
            Value::Null,
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!("x"),
            serde_json::json!(7),
            serde_json::json!([{"id": 1}, 2]),
            serde_json::json!({"id": {"x": 1}}),
        ];
        fn walk(root: &Value, at: &mut Vec<String>, shapes: &[Value], out: &mut Vec<Value>) {
            let node = at.iter().fold(root, |v, k| match v {
                Value::Array(items) => &items[k.parse::<usize>().unwrap_or_default()],
                other => &other[k.as_str()],
            });
            if !at.is_empty() {
                for shape in shapes {
                    let mut copy = root.clone();
                    let slot = at.iter().fold(&mut copy, |v, k| match v {
                        Value::Array(items) => &mut items[k.parse::<usize>().unwrap_or_default()],
                        other => &mut other[k.as_str()],
                    });
                    *slot = shape.clone();
                    out.push(copy);
                }
            }
            let keys: Vec<String> = match node {
                Value::Object(map) => map.keys().cloned().collect(),
                Value::Array(items) => (0..items.len()).map(|i| i.to_string()).collect(),
                _ => Vec::new(),
            };
            for key in keys {
                at.push(key);
                walk(root, at, shapes, out);
                at.pop();
            }
        }
        walk(value, &mut Vec::new(), &shapes, out);
    }

    #[test]
    fn invalid_utf8_anywhere_is_malformed_json() {
        // Even in a field no model reads, which serde_json would skip
        // unchecked: the fanout publishes the body as text.
        for (provider, dir, seed) in fixtures() {
            let rest = seed
                .trim_ascii_start()
                .strip_prefix(b"{")
                .expect("an object");
            let body = [&b"{\"unread\": \"caf\xe9\","[..], rest].concat();
            match decode_body(provider, &body) {
                Err(DecodeError::MalformedJson(why)) => {
                    assert_eq!(why, "invalid UTF-8 at byte 15", "{dir}")
                }
                other => panic!("{dir}: {other:?}"),
            }
        }
    }

    /// Every fixture body of every provider, with its directory name.
    fn fixtures() -> Vec<(Provider, &'static str, Vec<u8>)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let mut out = Vec::new();
        for (provider, dir) in [
            (Provider::Zipmessage, "zipmessage"),
            (Provider::Partoo, "partoo"),
            (Provider::Bird, "bird"),
        ] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).expect("fixtures") {
                let body = std::fs::read(entry.expect("entry").path()).expect("fixture");
                out.push((provider, dir, body));
            }
        }
        out
    }

    #[test]
    fn a_field_of_the_wrong_shape_fails_alone() {
        // Every seed with any one node replaced by another JSON shape: the
        // event still decodes unless the node is one the event needs (then
        // a stable quarantine code). (A nested object with a duplicate key:
        // json.rs's tests.)
        let mut checked = 0;
        for (provider, dir, body) in fixtures() {
            let seed = decode_body(provider, &body);
            assert!(seed.is_ok(), "{dir}: a seed decodes");
            let mut bodies = Vec::new();
            variants(&serde_json::from_slice(&body).expect("json"), &mut bodies);
            for variant in bodies {
                let text = variant.to_string();
                if let Err(e) = decode_body(provider, text.as_bytes()) {
                    assert!(
                        ["no_envelope", "missing_field"].contains(&e.code()),
                        "{dir}: {text}: {e}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked} variants");
    }

    #[test]
    fn a_test_delivery_never_shares_a_genuine_dedup_key() {
        // Only Partoo sends test deliveries, and its natural keys are
        // `<type>:<message id>[:<digest>]` or `sha256:<hex>`: never `test:…`.
        let test = Delivery {
            test: true,
            delivery_id: None,
        };
        for (provider, dir, body) in fixtures() {
            if provider != Provider::Partoo {
                continue;
            }
            let natural = decode_body(provider, &body).expect(dir).dedup_key;
            assert!(!natural.starts_with("test:"), "{natural}");
            assert_eq!(Delivery::default().scope_dedup_key(&natural), natural);
            assert_eq!(test.scope_dedup_key(&natural), format!("test:{natural}"));
        }
        assert!(!body_dedup_key(b"{}").starts_with("test:"));
    }

    #[test]
    fn key_lists_accept_commas_spaces_and_json_arrays() {
        assert_eq!(split_key_list("a, b,,c"), ["a", "b", "c"]);
        assert_eq!(split_key_list(" a b\n"), ["a", "b"]);
        assert_eq!(split_key_list(r#"["x", " y ", ""]"#), ["x", "y"]);
        assert!(split_key_list("  ").is_empty());
    }
}
