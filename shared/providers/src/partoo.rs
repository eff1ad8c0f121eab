//! Partoo.
//!
//! Partoo signs every webhook with Ed25519 over the raw body; the signature is
//! base64 in `X-Partoo-Signature-v1`. Keys are configured as base64 DER
//! (SubjectPublicKeyInfo), as Partoo publishes them; a bare 32-byte key in
//! base64 is accepted too. Envelope: `{type, payload}` with no event id, so
//! the dedup key is the natural key of the event (type + message id, plus a
//! digest of the changed state for updates) and, for types we do not model,
//! the SHA-256 of the body.
//!
//! Partoo retries only on 5xx and drops an event on any 4xx, which is why the
//! pipeline never answers an authentic Partoo body with a 4xx.
//!
//! One Partoo key signs every organisation's webhooks, so the organisation
//! the body names ([`Decoded::account`]: `payload.org_id`, or
//! `payload.business.org_id` on business events) decides whether it is
//! published ([`crate::Admission`]). A tryout (`X-Partoo-Webhook-Tryout`)
//! carries real data and real ids; it is a test delivery ([`Delivery::test`]).

use crate::json::{lenient, non_empty, opt_bool, opt_id, opt_text, payload};
use crate::registry::{
    one_event, Accounts, Credentials, Descriptor, DevCredential, Labels, LocalDefault, Setting,
};
use crate::{
    body_dedup_key, parse_envelope, passthrough_type, required_type, sha256_hex, timestamp,
    AuthError, ConfigError, DecodeError, Decoded, Delivery, Inbound, WebhookProvider,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_types::{Actor, Conversation, Message, Normalized, Provider};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-partoo-signature-v1";
/// What Partoo's signature covers, as an invalid one is reported.
pub const SIGNED: &str = "the body";
/// The header of a test delivery (`POST /v2/webhooks/tryout`).
pub const TRYOUT_HEADER: &str = "x-partoo-webhook-tryout";

/// Partoo's documented production public key (base64 DER).
pub const PRODUCTION_KEY: &str = "MCowBQYDK2VwAyEA0G9ciHL6XZQXuWq6W4dFLvwNEPWgcdtQgEVlBIwZWBQ=";
/// Partoo's documented sandbox public key (base64 DER).
pub const SANDBOX_KEY: &str = "MCowBQYDK2VwAyEALsyvX2yVnG3ZKRIFfEvYk2nkzanoNgAqBSqdeNub4sM=";

/// The setting that lists the organisations whose events are published
/// (comma-separated); empty publishes nothing from Partoo (every event is
/// kept as quarantined `org_not_allowed`).
pub const ORG_IDS: &str = "PARTOO_ORG_IDS";

/// Partoo in the registry.
pub static DESCRIPTOR: Descriptor = Descriptor {
    provider: Provider::Partoo,
    display_name: "Partoo",
    route: "/webhooks/partoo",
    function: "partoo-webhook",
    credentials: Credentials {
        inline: "PARTOO_PUBLIC_KEYS",
        secret: "PARTOO_SECRET_ID",
        dev_variable: "PARTOO_SIGNING_KEY",
        dev: dev_credential,
    },
    settings: &[Setting {
        name: ORG_IDS,
        default: Some(""),
        // The organisation of Partoo's documented example (`payload.org_id`),
        // so the committed seed is published by the local stack.
        local: LocalDefault::Value("123"),
        reprocess: true,
    }],
    labels: Labels::None,
    build: |keys, _| {
        let keys: Vec<&str> = keys.iter().map(|c| c.key.as_str()).collect();
        Ok(Box::new(Partoo::new(&keys)?))
    },
    check: |settings| ACCOUNTS.check(settings),
    split: one_event,
    decode,
    data_raw: crate::registry::json_body,
    accounts: Some(&ACCOUNTS),
    sign: |request| {
        let key = signing_key(request.key)?;
        Ok(vec![(SIGNATURE_HEADER, sign(&key, request.body))])
    },
    signature_header: Some(SIGNATURE_HEADER),
    url_check: None,
    fixtures: &["message_created.json"],
};

/// One Partoo key signs every organisation's webhooks, so an event is
/// published only when the organisation its body names is listed.
pub static ACCOUNTS: Accounts = Accounts {
    setting: ORG_IDS,
    what: "Partoo organisation",
    field: "payload.org_id or payload.business.org_id",
};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Base64 DER (SubjectPublicKeyInfo) of an Ed25519 public key: the form
/// Partoo publishes its keys in.
pub fn public_key_der_b64(key: &SigningKey) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.verifying_key().as_bytes());
    STANDARD.encode(der)
}

/// A signing key from its base64 32-byte seed (the dev stand-in for
/// Partoo's private key).
pub fn signing_key(seed_b64: &str) -> Result<SigningKey, String> {
    let seed: [u8; 32] = STANDARD
        .decode(seed_b64.trim())
        .map_err(|_| "not base64".to_owned())?
        .try_into()
        .map_err(|_| "not a 32-byte seed".to_owned())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// `X-Partoo-Signature-v1` for `body`, as Partoo computes it.
pub fn sign(key: &SigningKey, body: &[u8]) -> String {
    STANDARD.encode(key.sign(body).to_bytes())
}

/// A dev key pair: the seed signs, its public key is configured.
fn dev_credential(seed: &[u8; 32]) -> DevCredential {
    DevCredential {
        signing: STANDARD.encode(seed),
        configured: public_key_der_b64(&SigningKey::from_bytes(seed)),
    }
}

/// The Partoo provider with its active public keys.
#[derive(Debug)]
pub struct Partoo {
    keys: Vec<VerifyingKey>,
}

impl Partoo {
    /// Builds the provider from base64 DER (or raw 32-byte) public keys.
    pub fn new<S: AsRef<str>>(keys: &[S]) -> Result<Self, ConfigError> {
        if keys.is_empty() {
            return Err(ConfigError::Empty("Partoo public keys"));
        }
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                parse_public_key(key.as_ref()).map_err(|detail| ConfigError::InvalidKey {
                    what: "Partoo public key",
                    position: i + 1,
                    detail,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }
}

fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "not base64".to_owned())?;
    let key = match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(raw) => {
            VerifyingKey::from_bytes(&raw).map_err(|_| "not an Ed25519 public key".to_owned())?
        }
        Err(_) => VerifyingKey::from_public_key_der(&bytes).map_err(|_| {
            "not an Ed25519 SubjectPublicKeyInfo (DER) or raw 32-byte key".to_owned()
        })?,
    };
    // A small-order key verifies signatures that anyone can make. Refusing
    // it here is what lets `authenticate` use the plain verification.
    if key.is_weak() {
        return Err("a weak (small-order) Ed25519 key, for which anyone can sign".to_owned());
    }
    Ok(key)
}

impl WebhookProvider for Partoo {
    fn provider(&self) -> Provider {
        Provider::Partoo
    }

    /// Partoo's keys carry no label: the tenant is the body's `org_id`.
    fn authenticate(
        &self,
        request: &Inbound<'_>,
        _now: DateTime<Utc>,
    ) -> Result<Option<&str>, AuthError> {
        let header = request.signature(SIGNATURE_HEADER, "X-Partoo-Signature-v1")?;
        let bytes = STANDARD
            .decode(header)
            .map_err(|_| AuthError::MalformedSignature("X-Partoo-Signature-v1"))?;
        // A wrong length is a malformed (e.g. truncated) signature, never a pass.
        let signature = Signature::from_slice(&bytes)
            .map_err(|_| AuthError::MalformedSignature("X-Partoo-Signature-v1"))?;
        // `verify`, not `verify_strict`: both reject a non-canonical `s` and
        // compare `R` by its encoding, so neither accepts a signature that
        // Partoo's private key did not make. The strict check adds refusing a
        // small-order key (done once, in `parse_public_key`) and a small-order
        // `R`, which only the key's holder can produce; decompressing `R` for
        // it was a measurable share of a Partoo event's CPU (docs/performance.md).
        if self
            .keys
            .iter()
            .any(|key| key.verify(request.body, &signature).is_ok())
        {
            Ok(None)
        } else {
            Err(AuthError::InvalidSignature(SIGNED))
        }
    }

    /// A tryout is any request carrying the tryout header, whatever its
    /// value (Partoo documents the header, not its value), unless the value
    /// plainly says no (`false`, `0`, `no`).
    fn delivery(&self, request: &Inbound<'_>) -> Delivery {
        let test = request.headers.get(TRYOUT_HEADER).is_some_and(|value| {
            let value = String::from_utf8_lossy(value.as_bytes())
                .trim()
                .to_ascii_lowercase();
            !matches!(value.as_str(), "false" | "0" | "no")
        });
        Delivery {
            test,
            delivery_id: None,
            ..Delivery::default()
        }
    }
}

/// The envelope, its payload kept as raw text for [`payload`].
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
struct Payload {
    #[serde(default, deserialize_with = "lenient")]
    message: Option<PartooMessage>,
    #[serde(default, deserialize_with = "lenient")]
    conversation: Option<PartooConversation>,
    /// The organisation, on message events.
    #[serde(default, deserialize_with = "opt_id")]
    org_id: Option<String>,
    /// The business, on `business_*` events (which name the organisation in it).
    #[serde(default, deserialize_with = "lenient")]
    business: Option<PartooBusiness>,
}

#[derive(Debug, Default, Deserialize)]
struct PartooBusiness {
    #[serde(default, deserialize_with = "opt_id")]
    org_id: Option<String>,
}

impl Payload {
    /// The organisation the event belongs to, as far as the body says.
    fn org_id(&self) -> Option<String> {
        self.org_id
            .clone()
            .or_else(|| self.business.as_ref().and_then(|b| b.org_id.clone()))
    }
}

/// Documented and not read (serde skips them): `custom_channel`.
#[derive(Debug, Default, Deserialize)]
struct PartooMessage {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    conversation_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    date: Option<String>,
    /// `Text`, `Image`, … passed through.
    #[serde(default, deserialize_with = "opt_text")]
    content_type: Option<String>,
    /// `User`, `Consumer`, … passed through.
    #[serde(default, deserialize_with = "opt_text")]
    sender_type: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    sender_label: Option<String>,
    /// `Sending`, `Success`, `Failed`, … passed through.
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    is_deleted: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    is_automated: Option<bool>,
    #[serde(default, deserialize_with = "opt_text")]
    content: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    user_id: Option<String>,
}

/// Documented and not read (serde skips them): `id`, `icon`, `is_readonly`, `external_conversation_id`.
#[derive(Debug, Default, Deserialize)]
struct CustomConversationChannel {
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<String>,
}

/// Documented and not read (serde skips them): `consumer_img`, `last_message`, `is_read`, `has_one_user_message`, `business`, `issues`, `first_message_date`, `is_expired`, `is_solved`, `is_automated`, `assigned_user_id`.
#[derive(Debug, Default, Deserialize)]
struct PartooConversation {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    consumer_name: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    consumer_phone_number: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    consumer_email: Option<String>,
    /// `Open`, `Closed`, … passed through.
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    created_at: Option<String>,
    /// `Facebook`, `Instagram`, `Google`, `SMS`, … passed through.
    #[serde(default, deserialize_with = "opt_text")]
    messaging_partner: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    custom_channel: Option<CustomConversationChannel>,
}

impl PartooConversation {
    fn consumer(&self) -> Option<Actor> {
        let actor = Actor {
            kind: Some("consumer".into()),
            name: non_empty(self.consumer_name.clone()),
            email: non_empty(self.consumer_email.clone()),
            phone: non_empty(self.consumer_phone_number.clone()),
            ..Actor::default()
        };
        (actor.name.is_some() || actor.email.is_some() || actor.phone.is_some()).then_some(actor)
    }

    fn normalize(&self, key: String) -> Conversation {
        Conversation {
            key,
            id: self.id.clone(),
            title: non_empty(self.consumer_name.clone()),
            status: non_empty(self.status.clone()),
            channel: non_empty(self.messaging_partner.clone()).or_else(|| {
                self.custom_channel
                    .as_ref()
                    .and_then(|c| non_empty(c.name.clone()))
            }),
            created_at: self
                .created_at
                .as_deref()
                .and_then(timestamp::parse)
                .map(timestamp::format),
            participants: self.consumer().into_iter().collect(),
            ..Conversation::default()
        }
    }
}

impl PartooMessage {
    fn sender(&self) -> Option<Actor> {
        let actor = Actor {
            id: self.user_id.clone().filter(|id| id != "<string>"),
            kind: non_empty(self.sender_type.clone()).map(|k| k.to_ascii_lowercase()),
            name: non_empty(self.sender_label.clone()),
            ..Actor::default()
        };
        (actor.id.is_some() || actor.kind.is_some() || actor.name.is_some()).then_some(actor)
    }

    fn normalize(&self) -> Message {
        let is_text = self
            .content_type
            .as_deref()
            .is_none_or(|k| k.eq_ignore_ascii_case("text"));
        let content = non_empty(self.content.clone());
        Message {
            id: self.id.clone(),
            kind: non_empty(self.content_type.clone()),
            text: if is_text { content.clone() } else { None },
            media_url: if is_text { None } else { content },
            status: non_empty(self.status.clone()),
            sender: self.sender(),
            created_at: self
                .date
                .as_deref()
                .and_then(timestamp::parse)
                .map(timestamp::format),
            deleted: self.is_deleted,
            automated: self.is_automated,
            ..Message::default()
        }
    }

    /// A digest of the state an update can change, so two different updates
    /// of one message are two events and a redelivered update is one.
    fn state_digest(&self) -> String {
        let state = serde_json::json!([
            self.status,
            self.is_deleted,
            self.content_type,
            self.content
        ]);
        sha256_hex(state.to_string().as_bytes())[..32].to_owned()
    }
}

/// Decodes a Partoo body.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let envelope: Envelope = parse_envelope("Partoo", body)?;
    let payload: Payload = payload(envelope.payload.as_deref());
    let event_type = envelope.event_type;
    let native_type = required_type("Partoo", "type", event_type)?;
    let missing = |field| DecodeError::MissingField {
        event_type: native_type.clone(),
        field,
    };
    let conversation_id = payload
        .message
        .as_ref()
        .and_then(|m| m.conversation_id.clone())
        .or_else(|| payload.conversation.as_ref().and_then(|c| c.id.clone()));

    let canonical = match native_type.as_str() {
        "message_created" => Some("message.created"),
        "message_updated" => Some("message.updated"),
        _ => None,
    };
    let Some(event_type) = canonical else {
        // business_*, lead_received, …: delivered with their raw data.
        return Ok(Decoded {
            event_type: passthrough_type(Provider::Partoo, &native_type),
            native_type,
            dedup_key: body_dedup_key(body),
            account: payload.org_id(),
            conversation_key: conversation_id,
            occurred_at: None,
            normalized: Normalized::default(),
        });
    };

    let message = payload
        .message
        .as_ref()
        .ok_or_else(|| missing("payload.message"))?;
    let message_id = message
        .id
        .clone()
        .ok_or_else(|| missing("payload.message.id"))?;
    let key = conversation_id.ok_or_else(|| missing("payload.message.conversation_id"))?;
    let dedup_key = if event_type == "message.updated" {
        format!("{native_type}:{message_id}:{}", message.state_digest())
    } else {
        format!("{native_type}:{message_id}")
    };
    // Partoo sends no event time: a new message occurred at its own date; an
    // update has no time of its own, so it falls back to the receive time.
    let occurred_at = if event_type == "message.created" {
        message.date.as_deref().and_then(timestamp::parse)
    } else {
        None
    };
    let conversation = match &payload.conversation {
        Some(c) => c.normalize(key.clone()),
        None => Conversation {
            key: key.clone(),
            id: Some(key.clone()),
            ..Conversation::default()
        },
    };
    let normalized = Normalized {
        conversation: Some(conversation),
        actor: message.sender(),
        message: Some(message.normalize()),
    };
    Ok(Decoded {
        native_type,
        event_type: event_type.to_owned(),
        dedup_key,
        account: payload.org_id(),
        conversation_key: Some(key),
        occurred_at,
        normalized,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Settings;

    #[test]
    fn an_empty_organisation_list_starts_with_a_warning() {
        let lookup =
            |list: &'static str| move |name: &str| (name == ORG_IDS).then(|| list.to_owned());
        let settings = |list| Settings::resolve(&DESCRIPTOR, &lookup(list), 0).expect("resolves");
        let warning = (DESCRIPTOR.check)(&settings(" , ")).expect("valid");
        assert!(warning.is_some_and(|w| w.contains(ORG_IDS)));
        assert_eq!((DESCRIPTOR.check)(&settings("123")), Ok(None));
        // An organisation is a tenant in the table's keys: no separators.
        assert!((DESCRIPTOR.check)(&settings(r#"["123", "4#5"]"#)).is_err());
        assert!((DESCRIPTOR.check)(&settings("7!8")).is_err());
    }

    #[test]
    fn documented_keys_parse() {
        assert!(Partoo::new(&[PRODUCTION_KEY, SANDBOX_KEY]).is_ok());
    }

    #[test]
    fn bad_keys_are_named_by_position_not_value() {
        let err = Partoo::new(&[PRODUCTION_KEY, "bm90IGEga2V5"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("number 2"), "{text}");
        assert!(!text.contains("bm90IGEga2V5"), "{text}");
        assert!(Partoo::new::<&str>(&[]).is_err());
    }

    fn signature_header(signature: &[u8]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            STANDARD.encode(signature).parse().expect("header"),
        );
        headers
    }

    #[test]
    fn a_tryout_is_any_request_with_the_tryout_header_unless_it_says_no() {
        let partoo = Partoo::new(&[PRODUCTION_KEY]).expect("key");
        let body = b"{}";
        let delivery = |value: Option<&'static str>| {
            let mut headers = http::HeaderMap::new();
            if let Some(value) = value {
                headers.insert(TRYOUT_HEADER, http::HeaderValue::from_static(value));
            }
            partoo.delivery(&Inbound::new(&headers, body, None)).test
        };
        assert!(!delivery(None), "a genuine delivery");
        for value in ["true", "1", "", "yes", "TRUE"] {
            assert!(delivery(Some(value)), "{value:?}");
        }
        for value in ["false", "0", "no", " False "] {
            assert!(!delivery(Some(value)), "{value:?}");
        }
    }

    #[test]
    fn events_are_attributed_to_the_organisation_their_body_names() {
        let org = |body: &str| decode(body.as_bytes()).expect("decodes").account;
        assert_eq!(
            org(
                r#"{"type":"message_created","payload":{"org_id":42,"message":{"id":1,"conversation_id":2}}}"#
            ),
            Some("42".into())
        );
        assert_eq!(
            org(r#"{"type":"business_updated","payload":{"business":{"id":"b","org_id":42}}}"#),
            Some("42".into())
        );
        assert_eq!(
            org(r#"{"type":"lead_received","payload":{"id":1,"store_code":"Partoo123"}}"#),
            None,
            "a lead names no organisation"
        );
    }

    #[test]
    fn only_listed_organisations_are_admitted() {
        let admission = crate::Admission::default().listing(Provider::Partoo, &["42"]);
        let check = |body: &str| {
            crate::decode_event(Provider::Partoo, body.as_bytes(), &admission).map(|_| ())
        };
        assert_eq!(
            check(r#"{"type":"business_deleted","payload":{"business":{"org_id":42}}}"#),
            Ok(())
        );
        assert_eq!(
            check(r#"{"type":"business_deleted","payload":{"business":{"org_id":43}}}"#),
            Err(DecodeError::OrgNotAllowed {
                org_id: Some("43".into()),
                accounts: &ACCOUNTS,
            })
        );
        let unattributed = check(r#"{"type":"lead_received","payload":{"id":1}}"#).unwrap_err();
        assert_eq!(unattributed.code(), "org_not_allowed");
        assert!(unattributed
            .to_string()
            .contains("names no Partoo organisation"));
        // Nothing is admitted by default.
        assert!(crate::decode_event(
            Provider::Partoo,
            br#"{"type":"business_deleted","payload":{"business":{"org_id":42}}}"#,
            &crate::Admission::default()
        )
        .is_err());
    }

    #[test]
    fn small_order_keys_are_refused() {
        // The identity point and a point of order 8, raw and as DER.
        let identity = {
            let mut k = [0u8; 32];
            k[0] = 1;
            k
        };
        let order_8 = [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ];
        for raw in [identity, order_8] {
            let mut der = STANDARD.decode(PRODUCTION_KEY).expect("base64");
            let start = der.len() - 32;
            der[start..].copy_from_slice(&raw);
            for text in [STANDARD.encode(raw), STANDARD.encode(&der)] {
                let err = Partoo::new(&[PRODUCTION_KEY, text.as_str()]).unwrap_err();
                assert!(err.to_string().contains("number 2"), "{err}");
                assert!(err.to_string().contains("small-order"), "{err}");
            }
        }
    }

    #[test]
    fn a_malleated_signature_is_refused() {
        use ed25519_dalek::{Signer, SigningKey};
        let signer = SigningKey::from_bytes(&[7; 32]);
        let public = STANDARD.encode(signer.verifying_key().to_bytes());
        let partoo = Partoo::new(&[public]).expect("key");
        let body = br#"{"type":"message_created","payload":{}}"#;
        let signature = signer.sign(body).to_bytes();
        let now = Utc::now();

        let headers = signature_header(&signature);
        assert!(partoo
            .authenticate(&Inbound::new(&headers, body, None), now)
            .is_ok());

        // The same signature with s + L, the group order: equal modulo L, so
        // a verifier that reduced s would accept it.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = signature;
        let mut carry = 0u16;
        for (byte, l) in malleated[32..].iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "s < L < 2^253, so s + L fits in 32 bytes");
        let headers = signature_header(&malleated);
        assert!(partoo
            .authenticate(&Inbound::new(&headers, body, None), now)
            .is_err());
    }
}
