//! Bird (formerly MessageBird): its Conversations API events, and its
//! Channels events (the actual messages; [`channels`]).
//!
//! Bird signs with HMAC-SHA256, keyed by the subscription's `signingKey`, over
//! `timestamp + "\n" + URL + "\n" + SHA-256(raw body)` where the digest is the
//! 32 raw bytes. Headers: `messagebird-signature` (base64) and
//! `messagebird-request-timestamp` (Unix seconds). The URL is the public
//! webhook URL from configuration — never rebuilt from the Host header, which
//! a caller controls. Envelope: `{service, event, payload}`.
//!
//! Bird retries a failed delivery for hours (8 h documented; ~24 h in field
//! reports) with its **original** timestamp and signature, so the timestamp
//! is checked only after the signature, against a wide past tolerance: a
//! retry of an event we answered 5xx must still be stored. The dedup key
//! comes only from what the signature covers (the body); Bird's
//! `messagebird-request-id` header is not signed and is kept as delivery
//! metadata, never as identity.

mod channels;

use crate::json::{lenient, lenient_vec, non_empty, opt_id, opt_text, payload};
use crate::registry::{
    one_event, public_url, Credential, Credentials, Descriptor, DevCredential, Labels,
    LocalDefault, Setting, Settings,
};
use crate::{
    body_dedup_key, parse_envelope, passthrough_type, required_type, timestamp, AuthError,
    ConfigError, DecodeError, Decoded, Delivery, Inbound, WebhookProvider,
};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use switchboard_types::{Actor, Conversation, Message, Normalized, Provider};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "messagebird-signature";
/// What Bird's signature covers, as an invalid one is reported: a
/// signature made for another URL or timestamp fails as one for another
/// body does.
pub const SIGNED: &str =
    "the timestamp header, the URL (BIRD_WEBHOOK_URL, else the one the request \
     was sent to) and the body";
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "messagebird-request-timestamp";
/// Bird's id of one notification across its attempts. Not signed: kept as
/// the delivery id (metadata), never as the event's identity.
pub const REQUEST_ID_HEADER: &str = "messagebird-request-id";
/// Default past tolerance: how old a validly signed timestamp may be. 36 h
/// covers Bird's documented 8 h of retries and the ~24 h seen in the field,
/// with margin (`BIRD_TIMESTAMP_TOLERANCE_SECS`).
pub const DEFAULT_TOLERANCE_SECS: u64 = 129_600;
/// Future tolerance: how far ahead of our clock a timestamp may be (clock skew).
pub const FUTURE_TOLERANCE_SECS: u64 = 300;

/// The setting naming the public URL Bird posts to (part of the signature).
/// Unset, each request's own URL as the gateway received it is used
/// ([`Inbound::with_url`](crate::Inbound::with_url)); set it where that is
/// not the URL Bird posts to (a custom domain with a base-path mapping, a
/// proxy in front).
pub const WEBHOOK_URL: &str = "BIRD_WEBHOOK_URL";
/// The setting for the past tolerance: how old a validly signed timestamp
/// may be, in seconds (default [`DEFAULT_TOLERANCE_SECS`]; the future
/// tolerance is fixed at [`FUTURE_TOLERANCE_SECS`]). With a retention
/// period, past + future must be shorter than it.
pub const TOLERANCE: &str = "BIRD_TIMESTAMP_TOLERANCE_SECS";

/// Bird in the registry.
pub static DESCRIPTOR: Descriptor = Descriptor {
    provider: Provider::Bird,
    display_name: "Bird",
    route: "/webhooks/bird",
    function: "bird-webhook",
    credentials: Credentials {
        inline: "BIRD_SIGNING_KEYS",
        secret: "BIRD_SECRET_ID",
        dev_variable: "BIRD_SIGNING_KEY",
        dev: |seed| DevCredential::shared(URL_SAFE_NO_PAD.encode(seed)),
    },
    labels: Labels::Json,
    settings: &[
        Setting {
            name: WEBHOOK_URL,
            default: Some(""),
            local: LocalDefault::Derived,
            reprocess: false,
        },
        Setting {
            name: TOLERANCE,
            default: Some("129600"),
            local: LocalDefault::Template,
            reprocess: false,
        },
    ],
    build: |keys, settings| {
        let tolerance = tolerance(settings)?;
        let url = settings.get(WEBHOOK_URL).unwrap_or_default();
        Ok(Box::new(Bird::new(keys, url, tolerance)?))
    },
    check: |settings| tolerance(settings).map(|_| None),
    split: one_event,
    decode,
    data_raw: crate::registry::json_body,
    accounts: None,
    sign: |request| {
        let timestamp = request.timestamp.to_string();
        let signature = sign(
            request.key.as_bytes(),
            &timestamp,
            request.url,
            request.body,
        );
        Ok(vec![
            (TIMESTAMP_HEADER, timestamp),
            (SIGNATURE_HEADER, signature),
        ])
    },
    signature_header: Some(SIGNATURE_HEADER),
    url_check: None,
    fixtures: &["conversation.updated.json", "sms.inbound.json"],
};

/// The past tolerance, checked against the retention period: a stored
/// event must outlive every validly signed copy of its request. Once
/// DynamoDB's TTL removes it, a copy still inside Bird's window would be
/// stored and published again, so with a retention period the whole window
/// (past tolerance + [`FUTURE_TOLERANCE_SECS`]) must be shorter.
fn tolerance(settings: &Settings) -> Result<u64, ConfigError> {
    let tolerance_secs: u64 = settings.number(TOLERANCE)?;
    let retention_days = settings.retention_days;
    let window = tolerance_secs.saturating_add(FUTURE_TOLERANCE_SECS);
    let retention = u64::from(retention_days) * 86_400;
    if retention_days > 0 && window >= retention {
        return Err(ConfigError::Invalid(format!(
            "{TOLERANCE}={tolerance_secs} s (plus {FUTURE_TOLERANCE_SECS} s ahead) is not shorter \
             than RETENTION_DAYS={retention_days} ({retention} s): a signed Bird request could \
             outlive its stored event and be stored again; lower the tolerance or keep events longer"
        )));
    }
    Ok(tolerance_secs)
}

/// The Bird provider with its signing keys and public webhook URL.
pub struct Bird {
    /// HMAC-SHA256 keyed with each signing key (the key schedule done once;
    /// each request clones the keyed state).
    keys: Vec<Hmac<Sha256>>,
    /// Each key's tenant label, in the same order.
    tenants: Vec<Option<String>>,
    /// The configured public URL; `None`: each request's own.
    webhook_url: Option<String>,
    /// Past tolerance in seconds; the future one is [`FUTURE_TOLERANCE_SECS`].
    tolerance_secs: u64,
}

impl std::fmt::Debug for Bird {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bird")
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("webhook_url", &self.webhook_url)
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl Bird {
    /// Builds the provider. `webhook_url` is the exact public URL Bird
    /// posts to (as registered in the subscription), or empty to verify
    /// each request against its own URL as the gateway received it;
    /// `tolerance_secs` is the past tolerance.
    pub fn new<C: Into<Credential> + Clone>(
        keys: &[C],
        webhook_url: &str,
        tolerance_secs: u64,
    ) -> Result<Self, ConfigError> {
        let keys: Vec<Credential> = keys.iter().cloned().map(Into::into).collect();
        if keys.is_empty() {
            return Err(ConfigError::Empty("Bird signing keys"));
        }
        let webhook_url = match webhook_url.trim() {
            "" => None,
            url => Some(public_url(WEBHOOK_URL, url)?.to_owned()),
        };
        Ok(Self {
            keys: keys.iter().map(|k| keyed(k.key.as_bytes())).collect(),
            tenants: keys.iter().map(|k| k.tenant.clone()).collect(),
            webhook_url,
            tolerance_secs,
        })
    }

    /// The configured public URL, if one is.
    pub fn webhook_url(&self) -> Option<&str> {
        self.webhook_url.as_deref()
    }
}

/// Computes Bird's signature (base64) for a body: what Bird puts in
/// `messagebird-signature`. Used by the local tools and the tests.
pub fn sign(key: &[u8], timestamp: &str, url: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    STANDARD.encode(
        mac(&keyed(key), timestamp, url, &digest)
            .finalize()
            .into_bytes(),
    )
}

/// HMAC-SHA256 keyed with `key`, nothing hashed yet.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// The HMAC over the signed text; `body_digest` is SHA-256 of the raw body,
/// computed once per request however many keys are tried.
fn mac(key: &Hmac<Sha256>, timestamp: &str, url: &str, body_digest: &[u8]) -> Hmac<Sha256> {
    let mut mac = key.clone();
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(url.as_bytes());
    mac.update(b"\n");
    mac.update(body_digest);
    mac
}

impl WebhookProvider for Bird {
    fn provider(&self) -> Provider {
        Provider::Bird
    }

    fn authenticate(
        &self,
        request: &Inbound<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<&str>, AuthError> {
        let signature = request.signature(SIGNATURE_HEADER, "messagebird-signature")?;
        let stamp = request
            .header(TIMESTAMP_HEADER)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::MissingTimestamp("messagebird-request-timestamp"))?;
        let sent_at = stamp
            .parse::<i64>()
            .ok()
            .and_then(timestamp::from_unix)
            .ok_or(AuthError::MalformedTimestamp(
                "messagebird-request-timestamp",
            ))?;
        let signature = STANDARD
            .decode(signature)
            .or_else(|_| STANDARD_NO_PAD.decode(signature))
            .map_err(|_| AuthError::MalformedSignature("messagebird-signature"))?;
        if signature.len() != 32 {
            return Err(AuthError::MalformedSignature("messagebird-signature"));
        }
        // The configured URL, else the request's own. Every gateway
        // switchboard runs behind supplies it, so a request without either
        // cannot be verified, and is not.
        let url = self
            .webhook_url
            .as_deref()
            .or(request.url)
            .ok_or(AuthError::InvalidSignature(SIGNED))?;
        let body_digest = request.body_sha256();
        // verify_slice compares in constant time and checks the length;
        // every key is tried before the match is read.
        let matches: Vec<bool> = self
            .keys
            .iter()
            .map(|key| {
                mac(key, stamp, url, body_digest)
                    .verify_slice(&signature)
                    .is_ok()
            })
            .collect();
        let Some(matched) = matches.iter().position(|&m| m) else {
            return Err(AuthError::InvalidSignature(SIGNED));
        };
        // Freshness only once the timestamp is known to be Bird's own.
        let age = (now - sent_at).num_seconds();
        let skew = age.unsigned_abs();
        let (direction, tolerance) = if age >= 0 {
            ("before", self.tolerance_secs)
        } else {
            ("after", FUTURE_TOLERANCE_SECS)
        };
        if skew > tolerance {
            return Err(AuthError::TimestampOutOfWindow {
                skew_secs: skew,
                direction,
                tolerance_secs: tolerance,
            });
        }
        Ok(self.tenants[matched].as_deref())
    }

    fn delivery(&self, request: &Inbound<'_>) -> Delivery {
        Delivery {
            test: false,
            delivery_id: request
                .header(REQUEST_ID_HEADER)
                .map(str::trim)
                .filter(|id| !id.is_empty() && id.len() <= Delivery::MAX_ID_LEN)
                .map(str::to_owned),
            ..Delivery::default()
        }
    }
}

/// The envelope, its payload kept as raw text for [`payload`].
/// Documented and not read (serde skips them): `service`.
#[derive(Debug, Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    #[serde(default, deserialize_with = "opt_text")]
    identifier_key: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    identifier_value: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    platform_address: Option<String>,
}

/// Documented and not read (serde skips them): `status`, `avatarUrl`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Participant {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    /// `contact`, `user`, `bot`, `flow`, … passed through.
    #[serde(default, rename = "type", deserialize_with = "opt_text")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    contact: Option<Contact>,
}

impl Participant {
    fn to_actor(&self) -> Actor {
        let contact = self.contact.as_ref();
        let address = contact.and_then(|c| {
            non_empty(c.platform_address.clone()).or(non_empty(c.identifier_value.clone()))
        });
        let is_email = contact
            .and_then(|c| c.identifier_key.as_deref())
            .is_some_and(|k| k.contains("email"));
        Actor {
            id: self.id.clone(),
            kind: non_empty(self.kind.clone()),
            name: non_empty(self.display_name.clone()),
            email: if is_email { address.clone() } else { None },
            phone: if is_email { None } else { address },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Preview {
    #[serde(default, deserialize_with = "opt_text")]
    text: Option<String>,
}

/// Documented and not read (serde skips them): `recipients`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LastMessage {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "opt_text")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    preview: Option<Preview>,
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    sender: Option<Participant>,
    #[serde(default, deserialize_with = "opt_text")]
    created_at: Option<String>,
}

/// Documented and not read (serde skips them): `description`, `visibility`, `accessibility`, `activeParticipantCount`, `pendingParticipantCount`, `platformStyle`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BirdConversation {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<String>,
    /// `active`, `closed`, … passed through.
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient_vec")]
    featured_participants: Vec<Participant>,
    #[serde(default, deserialize_with = "lenient")]
    initiating_participant: Option<Participant>,
    #[serde(default, deserialize_with = "opt_id")]
    channel_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    last_message: Option<LastMessage>,
    #[serde(default, deserialize_with = "opt_text")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    updated_at: Option<String>,
    /// Present on non-conversation events of the same envelope.
    #[serde(default, deserialize_with = "opt_id")]
    conversation_id: Option<String>,
}

/// Decodes a Bird body. Everything comes from the body, which the signature
/// covers: the dedup key is `(event, payload.id, payload.updatedAt)` when the
/// payload has both, else the body's SHA-256. Channels messages
/// (`<channel>.inbound|outbound`) decode as [`channels`] says.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let envelope: Envelope = parse_envelope("Bird", body)?;
    let event = envelope.event;
    let native_type = required_type("Bird", "event", event)?;
    if let Some((platform, direction)) = channels::direction(&native_type) {
        let platform = platform.to_owned();
        return Ok(channels::decode(
            body,
            envelope.payload.as_deref(),
            native_type,
            &platform,
            direction,
        ));
    }
    let payload: BirdConversation = payload(envelope.payload.as_deref());
    let created = payload.created_at.as_deref().and_then(timestamp::parse);
    let updated = payload.updated_at.as_deref().and_then(timestamp::parse);
    let dedup_key = match (&payload.id, &payload.updated_at) {
        (Some(id), Some(at)) => format!("{native_type}:{id}:{at}"),
        _ => body_dedup_key(body),
    };

    let canonical = match native_type.as_str() {
        "conversation.created" | "conversation.updated" | "conversation.deleted" => {
            Some(native_type.clone())
        }
        _ => None,
    };
    let Some(event_type) = canonical else {
        return Ok(Decoded {
            event_type: passthrough_type(Provider::Bird, &native_type),
            native_type,
            dedup_key,
            account: None,
            conversation_key: payload.conversation_id.clone(),
            occurred_at: updated.or(created),
            normalized: Normalized::default(),
        });
    };

    let key = payload
        .id
        .clone()
        .ok_or_else(|| DecodeError::MissingField {
            event_type: native_type.clone(),
            field: "payload.id",
        })?;
    let occurred_at = match event_type.as_str() {
        "conversation.created" => created.or(updated),
        _ => updated.or(created),
    };
    let message = payload.last_message.as_ref().map(|m| Message {
        id: m.id.clone(),
        kind: non_empty(m.kind.clone()),
        text: m.preview.as_ref().and_then(|p| non_empty(p.text.clone())),
        status: non_empty(m.status.clone()),
        sender: m.sender.as_ref().map(Participant::to_actor),
        created_at: m
            .created_at
            .as_deref()
            .and_then(timestamp::parse)
            .map(timestamp::format),
        ..Message::default()
    });
    let normalized = Normalized {
        conversation: Some(Conversation {
            key: key.clone(),
            id: Some(key.clone()),
            title: non_empty(payload.name.clone()),
            status: non_empty(payload.status.clone()),
            channel: payload.channel_id.clone(),
            created_at: created.map(timestamp::format),
            updated_at: updated.map(timestamp::format),
            participants: payload
                .featured_participants
                .iter()
                .map(Participant::to_actor)
                .collect(),
            ..Conversation::default()
        }),
        message,
        actor: payload
            .initiating_participant
            .as_ref()
            .map(Participant::to_actor),
    };
    Ok(Decoded {
        native_type,
        event_type,
        dedup_key,
        account: None,
        conversation_key: Some(key),
        occurred_at,
        normalized,
    })
}
