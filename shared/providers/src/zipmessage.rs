//! ZipMessage (now Clarityflow).
//!
//! ZipMessage does not sign webhooks, so the webhook URL carries a secret
//! token (`/webhooks/zipmessage/{token}`) compared in constant time with the
//! configured tokens. Envelope: `{type, id, occurred_at, payload}`.
//!
//! Message events carry no conversation id, only the conversation slug inside
//! `message_embed_url` (`?conversation_slug=`) and `message_url`; the slug is
//! therefore the conversation key for every ZipMessage event.

use crate::json::{lenient, non_empty, opt_f64, opt_id, opt_text, payload};
use crate::registry::{
    no_check, one_event, Credential, Credentials, Descriptor, DevCredential, Labels,
};
use crate::{
    body_dedup_key, html, parse_envelope, passthrough_type, required_type, timestamp, AuthError,
    ConfigError, DecodeError, Decoded, Inbound, WebhookProvider,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_types::{Actor, Conversation, Message, Normalized, Provider};

/// ZipMessage in the registry.
pub static DESCRIPTOR: Descriptor = Descriptor {
    provider: Provider::Zipmessage,
    display_name: "ZipMessage",
    route: "/webhooks/zipmessage/{token}",
    function: "zipmessage-webhook",
    credentials: Credentials {
        inline: "ZIPMESSAGE_TOKENS",
        secret: "ZIPMESSAGE_SECRET_ID",
        dev_variable: "ZIPMESSAGE_TOKEN",
        // 43 URL-safe characters: the token goes into the URL as it is.
        dev: |seed| DevCredential::shared(URL_SAFE_NO_PAD.encode(seed)),
    },
    settings: &[],
    labels: Labels::Prefix,
    build: |tokens, _| Ok(Box::new(Zipmessage::new(tokens)?)),
    check: no_check,
    split: one_event,
    decode,
    data_raw: crate::registry::json_body,
    accounts: None,
    // Not signed: the token in the path is the credential.
    sign: |_| Ok(Vec::new()),
    signature_header: None,
    url_check: None,
    fixtures: &[
        "conversation_created.json",
        "message_created.json",
        "message_played.json",
    ],
};

/// The ZipMessage provider with its active URL tokens.
pub struct Zipmessage {
    /// SHA-256 of each active token: comparing fixed-size digests keeps the
    /// comparison constant-time regardless of the candidate's length.
    token_digests: Vec<[u8; 32]>,
    /// Each token's tenant label, in the same order.
    tenants: Vec<Option<String>>,
}

impl std::fmt::Debug for Zipmessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zipmessage")
            .field(
                "tokens",
                &format_args!("[{} redacted]", self.token_digests.len()),
            )
            .finish()
    }
}

/// Shortest token we accept: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

impl Zipmessage {
    /// Builds the provider from the active tokens (several during
    /// rotation; one or more per tenant).
    pub fn new<C: Into<Credential> + Clone>(tokens: &[C]) -> Result<Self, ConfigError> {
        let tokens: Vec<Credential> = tokens.iter().cloned().map(Into::into).collect();
        if tokens.is_empty() {
            return Err(ConfigError::Empty("ZipMessage tokens"));
        }
        let mut token_digests = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.iter().map(|c| c.key.as_str()).enumerate() {
            if token.len() < MIN_TOKEN_LEN || !token.bytes().all(is_url_safe) {
                return Err(ConfigError::InvalidKey {
                    what: "ZipMessage token",
                    position: i + 1,
                    detail: format!("tokens must be at least {MIN_TOKEN_LEN} URL-safe characters (A-Z a-z 0-9 - _ . ~)"),
                });
            }
            token_digests.push(Sha256::digest(token.as_bytes()).into());
        }
        Ok(Self {
            token_digests,
            tenants: tokens.iter().map(|c| c.tenant.clone()).collect(),
        })
    }
}

fn is_url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

impl WebhookProvider for Zipmessage {
    fn provider(&self) -> Provider {
        Provider::Zipmessage
    }

    fn authenticate(
        &self,
        request: &Inbound<'_>,
        _now: DateTime<Utc>,
    ) -> Result<Option<&str>, AuthError> {
        let token = request
            .path_token
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        let candidate: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare against every token without stopping early; which one
        // matched is read only after all were compared.
        let matches: Vec<bool> = self
            .token_digests
            .iter()
            .map(|digest| bool::from(digest.ct_eq(&candidate)))
            .collect();
        match matches.iter().position(|&m| m) {
            Some(i) => Ok(self.tenants[i].as_deref()),
            None => Err(AuthError::InvalidToken),
        }
    }
}

/// The envelope, its payload kept as raw text for [`payload`].
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    occurred_at: Option<String>,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

/// `payload.conversation` of `conversation_created`.
/// Documented and not read (serde skips them): `embed_url`, `public`, `anyone_can_post`, `allow_anonymous_messages`, `allow_search_engines`, `enable_registration_prompt`, `subscriber_emails`, `messages`, `workflow`.
#[derive(Debug, Default, Deserialize)]
struct ZipConversation {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    title: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    slug: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    url: Option<String>,
}

/// `payload.message` of `message_created` and `message_played`.
/// Documented and not read (serde skips them): `workflow`.
#[derive(Debug, Default, Deserialize)]
struct ZipMessageBody {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    conversation_title: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    message_type: Option<String>,
    #[serde(default, deserialize_with = "opt_f64")]
    recorded_duration_seconds: Option<f64>,
    #[serde(default, deserialize_with = "opt_text")]
    message_url: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    message_embed_url: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    text: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    message_created_time: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    author: Option<Author>,
    #[serde(default, deserialize_with = "opt_text")]
    download_media_url: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    access_media_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Author {
    #[serde(default, deserialize_with = "opt_text")]
    first_name: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    last_name: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    full_name: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    email: Option<String>,
}

impl Author {
    fn into_actor(self) -> Actor {
        let joined = match (non_empty(self.first_name), non_empty(self.last_name)) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (f, l) => f.or(l),
        };
        Actor {
            kind: Some("user".into()),
            name: non_empty(self.full_name).or(joined),
            email: non_empty(self.email),
            ..Actor::default()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct MessagePayload {
    #[serde(default, deserialize_with = "lenient")]
    message: Option<ZipMessageBody>,
    /// `message_played` only: `"anonymous"` or who played it.
    #[serde(default)]
    played_by: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ConversationPayload {
    #[serde(default, deserialize_with = "lenient")]
    conversation: Option<ZipConversation>,
}

/// Decodes a ZipMessage body.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let envelope: Envelope = parse_envelope("ZipMessage", body)?;
    let native_type = required_type("ZipMessage", "type", envelope.event_type.clone())?;
    let occurred_at = envelope.occurred_at.as_deref().and_then(timestamp::parse);
    let dedup_key = match non_empty(envelope.id) {
        Some(id) => format!("id:{id}"),
        None => body_dedup_key(body),
    };
    let missing = |field| DecodeError::MissingField {
        event_type: native_type.clone(),
        field,
    };

    let (event_type, conversation_key, normalized, fallback_time) = match native_type.as_str() {
        "conversation_created" => {
            let payload: ConversationPayload = payload(envelope.payload.as_deref());
            let conversation = payload
                .conversation
                .ok_or_else(|| missing("payload.conversation"))?;
            let key = non_empty(conversation.slug.clone())
                .or_else(|| conversation.url.as_deref().and_then(last_path_segment))
                .ok_or_else(|| missing("payload.conversation.slug"))?;
            let created = conversation
                .created_at
                .as_deref()
                .and_then(timestamp::parse);
            let normalized = Normalized {
                conversation: Some(Conversation {
                    key: key.clone(),
                    id: conversation.id,
                    title: non_empty(conversation.title),
                    url: non_empty(conversation.url),
                    created_at: created.map(timestamp::format),
                    ..Conversation::default()
                }),
                ..Normalized::default()
            };
            ("conversation.created", key, normalized, created)
        }
        "message_created" | "message_played" => {
            let payload: MessagePayload = payload(envelope.payload.as_deref());
            let message = payload.message.ok_or_else(|| missing("payload.message"))?;
            let key = conversation_slug(&message)
                .ok_or_else(|| missing("payload.message.message_url"))?;
            let created = message
                .message_created_time
                .as_deref()
                .and_then(timestamp::parse);
            let author = message.author.map(Author::into_actor);
            let (text, html) = match non_empty(message.text) {
                Some(t) if t.contains('<') => (Some(html::to_text(&t)), Some(t)),
                other => (other, None),
            };
            let conversation = Conversation {
                key: key.clone(),
                title: non_empty(message.conversation_title),
                url: message
                    .message_url
                    .as_deref()
                    .map(|u| u.split('#').next().unwrap_or(u).to_owned()),
                ..Conversation::default()
            };
            let played = native_type == "message_played";
            let actor = if played {
                payload.played_by.as_ref().map(player)
            } else {
                author.clone()
            };
            let normalized = Normalized {
                conversation: Some(conversation),
                message: Some(Message {
                    id: message.id,
                    kind: non_empty(message.message_type),
                    text,
                    html,
                    sender: author,
                    created_at: created.map(timestamp::format),
                    url: non_empty(message.message_url),
                    media_url: non_empty(message.download_media_url)
                        .or(non_empty(message.access_media_file)),
                    duration_seconds: message.recorded_duration_seconds,
                    ..Message::default()
                }),
                actor,
            };
            let event_type = if played {
                "message.played"
            } else {
                "message.created"
            };
            (
                event_type,
                key,
                normalized,
                if played { None } else { created },
            )
        }
        // Documented but not modelled (new_appointment, new_purchase, …):
        // accepted and delivered with their raw data.
        other => {
            return Ok(Decoded {
                event_type: passthrough_type(Provider::Zipmessage, other),
                native_type,
                dedup_key,
                account: None,
                conversation_key: None,
                occurred_at,
                normalized: Normalized::default(),
            })
        }
    };
    Ok(Decoded {
        event_type: event_type.to_owned(),
        native_type,
        dedup_key,
        account: None,
        conversation_key: Some(conversation_key),
        occurred_at: occurred_at.or(fallback_time),
        normalized,
    })
}

/// Who played a message: `"anonymous"`, a name or e-mail, or an object.
fn player(value: &Value) -> Actor {
    match value {
        Value::String(s) if s.eq_ignore_ascii_case("anonymous") || s.is_empty() => Actor {
            kind: Some("anonymous".into()),
            ..Actor::default()
        },
        Value::String(s) if s.contains('@') => Actor {
            kind: Some("user".into()),
            email: Some(s.clone()),
            ..Actor::default()
        },
        Value::String(s) => Actor {
            kind: Some("user".into()),
            name: Some(s.clone()),
            ..Actor::default()
        },
        Value::Object(_) => serde_json::from_value::<Author>(value.clone())
            .map(Author::into_actor)
            .unwrap_or_default(),
        _ => Actor {
            kind: Some("anonymous".into()),
            ..Actor::default()
        },
    }
}

/// The conversation slug of a message: `conversation_slug` in the embed URL's
/// query, else the last path segment of `message_url` (before `#message-N`).
fn conversation_slug(message: &ZipMessageBody) -> Option<String> {
    let from_embed = message.message_embed_url.as_deref().and_then(|url| {
        let query = url.split_once('?')?.1.split('#').next()?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("conversation_slug="))
            .filter(|slug| !slug.is_empty())
            .map(str::to_owned)
    });
    from_embed.or_else(|| {
        let url = message.message_url.as_deref()?;
        last_path_segment(url.split('#').next()?)
    })
}

fn last_path_segment(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, path) = after_scheme.split_once('/')?;
    path.rsplit('/').find(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_tokens_with_one_label_are_one_tenant() {
        // Rotation within a tenant: the old and the new token both name it.
        let tokens = crate::parse_credentials(
            &DESCRIPTOR,
            "acme:old-token-0123456789,acme:new-token-0123456789,plain-token-0123456789",
        )
        .expect("valid");
        let zip = Zipmessage::new(&tokens).expect("builds");
        let headers = http::HeaderMap::new();
        let tenant = |token: &str| {
            zip.authenticate(&Inbound::new(&headers, b"{}", Some(token)), Utc::now())
                .map(|t| t.map(str::to_owned))
        };
        assert_eq!(tenant("old-token-0123456789"), Ok(Some("acme".into())));
        assert_eq!(tenant("new-token-0123456789"), Ok(Some("acme".into())));
        assert_eq!(tenant("plain-token-0123456789"), Ok(None));
        // The label is not part of the token.
        assert_eq!(
            tenant("acme:old-token-0123456789"),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn slug_comes_from_embed_query_then_message_url() {
        let m = ZipMessageBody {
            message_embed_url: Some(
                "http://z.com/embeds/messages/co/330?conversation_slug=the-slug".into(),
            ),
            message_url: Some("http://z.com/co/other-slug#message-330".into()),
            ..ZipMessageBody::default()
        };
        assert_eq!(conversation_slug(&m).as_deref(), Some("the-slug"));
        let m = ZipMessageBody {
            message_url: Some("http://z.com/co/other-slug#message-330".into()),
            ..ZipMessageBody::default()
        };
        assert_eq!(conversation_slug(&m).as_deref(), Some("other-slug"));
        assert_eq!(conversation_slug(&ZipMessageBody::default()), None);
    }

    #[test]
    fn tokens_must_be_long_and_url_safe() {
        let one = |token: &str| Zipmessage::new(&[token]);
        assert!(Zipmessage::new::<&str>(&[]).is_err());
        assert!(one("short").is_err());
        assert!(one("has a space in it!!").is_err());
        assert!(one("0123456789abcdef").is_ok());
    }
}
