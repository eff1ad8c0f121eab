//! Twilio (Programmable Messaging: SMS, MMS, WhatsApp; Conversations).
//!
//! **Authentication** (Twilio, "Webhooks security"; the official SDKs'
//! `RequestValidator`). `X-Twilio-Signature` is the base64 HMAC-SHA1, keyed
//! by the account's auth token, of the full URL Twilio requested (scheme,
//! host, port, path and query) followed by every POST parameter's name and
//! value, the names sorted, a name's values sorted. A JSON body is signed
//! instead through a `bodySHA256` query parameter (the hex SHA-256 of the
//! body), with no parameters after the URL. Where a Webhooks Rule applies,
//! Twilio signs the same text with the rule's shared key and HMAC-SHA256
//! (`X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256`):
//! a 32-byte signature is checked that way, with each configured key (list
//! the shared key beside the auth token). Twilio is inconsistent about
//! the port (it may sign `https://host:443/…` or `https://host/…`), so, as
//! the SDKs do, the URL is tried as it is, without its port and with the
//! scheme's default port. The URL is `TWILIO_WEBHOOK_URL` when set (it must
//! then hold any query string Twilio sends), else the one API Gateway
//! received the request at with the query string as received. Each
//! account has its own auth token; a token's label (`acme:TOKEN`) names its
//! tenant.
//!
//! **Bodies** are `application/x-www-form-urlencoded`, stored byte for byte
//! and decoded for the canonical model; `data.raw` is the form as a JSON
//! object of arrays (`{"Body": ["Hello"], …}`, names sorted, each name's
//! values in the order sent), since a form is not JSON ([`form_json`]).
//!
//! **Events.** An incoming message (`SmsStatus=received`, no
//! `MessageStatus`) is `message.created`, keyed by its `MessageSid`; a
//! status callback (`MessageStatus`) is `message.updated`, keyed by the sid
//! and the status, so each status of a message is its own event and a
//! redelivery of one is a duplicate. The conversation is the contact within
//! the business number: `<business address>:<contact address>`. The channel
//! is the addresses' prefix (`whatsapp:+1…` is `whatsapp`, a bare number
//! `sms`). A Conversations webhook (`EventType`) is `message.*` or
//! `conversation.*` for the message and conversation events, keyed by the
//! event, the resource's sid and its update time, in the conversation
//! `ConversationSid`; a call's status is `twilio.call.<status>`; anything
//! else passes through as `twilio.request`, keyed by the body's digest.
//! Twilio's messaging webhooks carry no time: an event's time is its
//! receipt (Conversations' `DateCreated` where sent).
//!
//! **Delivery habits** (Twilio, "Webhooks: connection overrides"): a
//! webhook times out after 15 s; Twilio does not retry a failed delivery
//! unless the URL's fragment asks it to (`#rc=…`, up to 5 times), so a 5xx
//! can lose the event unless those overrides are set. Any 2xx is success.
//! `I-Twilio-Idempotency-Token`, unsigned, names a delivery across its
//! attempts: kept as the delivery id, never as identity.

use crate::json::non_empty;
use crate::registry::{
    one_event, public_url, Credential, Credentials, Descriptor, DevCredential, Labels,
    LocalDefault, Setting,
};
use crate::{
    body_dedup_key, form_decode, passthrough_type, timestamp, AuthError, ConfigError, DecodeError,
    Decoded, Delivery, Inbound, WebhookProvider,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_types::{Actor, Conversation, Message, Normalized, Provider};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
const SIGNATURE_NAME: &str = "X-Twilio-Signature";
/// What Twilio's signature covers, as an invalid one is reported.
pub const SIGNED: &str =
    "the URL (TWILIO_WEBHOOK_URL, else the one the request was sent to, with its query) and the POST parameters";
/// The setting naming the exact URL Twilio posts to, where it is not the
/// one API Gateway received the request at.
pub const WEBHOOK_URL: &str = "TWILIO_WEBHOOK_URL";
/// Twilio's id of one delivery across its attempts (not signed).
pub const IDEMPOTENCY_HEADER: &str = "i-twilio-idempotency-token";

/// Twilio in the registry.
pub static DESCRIPTOR: Descriptor = Descriptor {
    provider: Provider::Twilio,
    display_name: "Twilio",
    route: "/webhooks/twilio",
    function: "twilio-webhook",
    credentials: Credentials {
        inline: "TWILIO_AUTH_TOKENS",
        secret: "TWILIO_SECRET_ID",
        dev_variable: "TWILIO_AUTH_TOKEN",
        // An auth token is 32 lowercase hex digits.
        dev: |seed| DevCredential::shared(hex::encode(&seed[..16])),
    },
    labels: Labels::Prefix,
    settings: &[Setting {
        name: WEBHOOK_URL,
        default: Some(""),
        local: LocalDefault::Derived,
        reprocess: false,
    }],
    build: |keys, settings| {
        let url = settings.get(WEBHOOK_URL).unwrap_or_default();
        Ok(Box::new(Twilio::new(keys, url)?))
    },
    check: |settings| {
        let url = settings.get(WEBHOOK_URL).unwrap_or_default();
        if !url.trim().is_empty() {
            public_url(WEBHOOK_URL, url)?;
        }
        Ok(None)
    },
    split: one_event,
    decode,
    data_raw: form_json,
    accounts: None,
    sign: |request| {
        Ok(vec![(
            SIGNATURE_HEADER,
            sign(request.key, request.url, request.body),
        )])
    },
    signature_header: Some(SIGNATURE_HEADER),
    url_check: None,
    fixtures: &[
        "sms.inbound.form",
        "mms.inbound.form",
        "whatsapp.inbound.form",
        "status.delivered.form",
    ],
};

/// The parameters of a form body, in the order sent (`+` is a space,
/// `%XX` a byte).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// The query parameters of a URL.
fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_pairs(query.as_bytes())
}

/// What Twilio signs: the URL, then each parameter name and value, names
/// sorted and each name's values sorted (the SDKs' rule). With `dedup`, a
/// value repeated under one name counts once (the Python SDK's sets);
/// without, every copy counts (the Node SDK's).
fn signed_text(url: &str, params: &[(String, String)], dedup: bool) -> String {
    let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut text = url.to_owned();
    for name in names {
        let mut values: Vec<&str> = params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort_unstable();
        if dedup {
            values.dedup();
        }
        for value in values {
            text.push_str(name);
            text.push_str(value);
        }
    }
    text
}

fn keyed(token: &str) -> Hmac<Sha1> {
    // HMAC takes a key of any length.
    <Hmac<Sha1> as Mac>::new_from_slice(token.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// `X-Twilio-Signature` for a request to `url` with `body`, as Twilio
/// computes it: over the form's parameters, or, when the URL carries
/// `bodySHA256`, over the URL alone.
pub fn sign(token: &str, url: &str, body: &[u8]) -> String {
    let params = if query_pairs(url).iter().any(|(n, _)| n == "bodySHA256") {
        Vec::new()
    } else {
        form_pairs(body)
    };
    let mut mac = keyed(token);
    mac.update(signed_text(url, &params, true).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL as signed, as Twilio may have signed it: as it is, without its
/// port, and with its scheme's default port; a configured URL with a
/// fragment (Twilio's connection overrides, `#rc=…`, never sent with the
/// request), with and without it.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = port_variants(url);
    if let Some((bare, _)) = url.split_once('#') {
        variants.extend(port_variants(bare));
    }
    variants
}

fn port_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port is what follows the last ':' after any user info and an
    // IPv6 literal's closing bracket.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_part = &authority[host_start..];
    let port_at = host_part
        .rfind(':')
        .filter(|&colon| !host_part[colon..].contains(']'));
    match port_at {
        Some(colon) => {
            let host = &authority[..host_start + colon];
            variants.push(format!("{scheme}://{host}{tail}"));
        }
        None => {
            let port = match scheme.to_ascii_lowercase().as_str() {
                "https" => Some(443),
                "http" => Some(80),
                _ => None,
            };
            if let Some(port) = port {
                variants.push(format!("{scheme}://{authority}:{port}{tail}"));
            }
        }
    }
    variants
}

/// The Twilio provider: each account's auth token (or a Webhooks Rule's
/// shared key), with its tenant label.
pub struct Twilio {
    tokens: Vec<(Option<String>, Hmac<Sha1>, Hmac<Sha256>)>,
    url: Option<String>,
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Twilio")
            .field("tokens", &self.tokens.len())
            .field("url", &self.url)
            .finish()
    }
}

impl Twilio {
    /// Builds the provider from its auth tokens and the configured URL
    /// (empty: each request's own).
    pub fn new(tokens: &[Credential], url: &str) -> Result<Self, ConfigError> {
        if tokens.is_empty() {
            return Err(ConfigError::Empty("Twilio auth tokens"));
        }
        let url = match url.trim() {
            "" => None,
            set => Some(public_url(WEBHOOK_URL, set)?.to_owned()),
        };
        Ok(Self {
            tokens: tokens
                .iter()
                .map(|c| {
                    let key = c.key.trim().as_bytes();
                    // HMAC takes a key of any length.
                    let sha256 = <Hmac<Sha256> as Mac>::new_from_slice(key)
                        .unwrap_or_else(|_| unreachable!());
                    (c.tenant.clone(), keyed(c.key.trim()), sha256)
                })
                .collect(),
            url,
        })
    }
}

impl WebhookProvider for Twilio {
    fn provider(&self) -> Provider {
        Provider::Twilio
    }

    fn authenticate(
        &self,
        request: &Inbound<'_>,
        _now: DateTime<Utc>,
    ) -> Result<Option<&str>, AuthError> {
        let header = request.signature(SIGNATURE_HEADER, SIGNATURE_NAME)?;
        // HMAC-SHA1 (20 bytes), or a Webhooks Rule's HMAC-SHA256 (32).
        let signature = STANDARD
            .decode(header)
            .ok()
            .filter(|bytes| matches!(bytes.len(), 20 | 32))
            .ok_or(AuthError::MalformedSignature(SIGNATURE_NAME))?;
        let url = match (&self.url, request.url) {
            (Some(configured), _) => configured.clone(),
            (None, Some(received)) => match request.query {
                Some(query) => format!("{received}?{query}"),
                None => received.to_owned(),
            },
            // No URL to check against: nothing can match.
            (None, None) => return Err(AuthError::InvalidSignature(SIGNED)),
        };
        // A JSON body is signed through its digest in the URL.
        let params = match query_pairs(&url)
            .into_iter()
            .find(|(n, _)| n == "bodySHA256")
        {
            Some((_, claimed)) => {
                let actual = hex::encode(Sha256::digest(request.body));
                let claimed = claimed.to_ascii_lowercase();
                let same = claimed.len() == actual.len()
                    && bool::from(claimed.as_bytes().ct_eq(actual.as_bytes()));
                if !same {
                    return Err(AuthError::InvalidSignature(SIGNED));
                }
                Vec::new()
            }
            None => form_pairs(request.body),
        };
        let mut texts = Vec::new();
        for variant in url_variants(&url) {
            for dedup in [true, false] {
                let text = signed_text(&variant, &params, dedup);
                if !texts.contains(&text) {
                    texts.push(text);
                }
            }
        }
        for (tenant, sha1, sha256) in &self.tokens {
            for text in &texts {
                // verify_slice compares in constant time.
                let valid = if signature.len() == 20 {
                    let mut mac = sha1.clone();
                    mac.update(text.as_bytes());
                    mac.verify_slice(&signature).is_ok()
                } else {
                    let mut mac = sha256.clone();
                    mac.update(text.as_bytes());
                    mac.verify_slice(&signature).is_ok()
                };
                if valid {
                    return Ok(tenant.as_deref());
                }
            }
        }
        Err(AuthError::InvalidSignature(SIGNED))
    }

    fn delivery(&self, request: &Inbound<'_>) -> Delivery {
        Delivery {
            delivery_id: request
                .header(IDEMPOTENCY_HEADER)
                .map(str::trim)
                .filter(|id| !id.is_empty() && id.len() <= Delivery::MAX_ID_LEN)
                .map(str::to_owned),
            ..Delivery::default()
        }
    }
}

/// [`Descriptor::data_raw`]: a form body as a JSON object of arrays (names
/// sorted, each name's values in the order sent); a JSON body as it is.
pub fn form_json(body: &[u8]) -> Option<String> {
    if is_json(body) {
        return None;
    }
    let mut form: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in form_pairs(body) {
        form.entry(name).or_default().push(value);
    }
    serde_json::to_string(&form).ok()
}

/// Whether a body is JSON (signed through `bodySHA256`) rather than a form.
fn is_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

const NAME: &str = "twilio";

/// A form's parameters, by name.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .and_then(|v| non_empty(Some(v)))
    }
}

/// Decodes a Twilio body: a form, or a JSON body passed through.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    if is_json(body) {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| DecodeError::MalformedJson(e.to_string()))?;
        if !value.is_object() {
            return Err(DecodeError::NoEnvelope {
                provider: NAME,
                detail: "a JSON body is not an object".into(),
            });
        }
        let native = value
            .get("type")
            .and_then(|t| t.as_str())
            .filter(|t| !t.trim().is_empty())
            .unwrap_or("json")
            .to_owned();
        return Ok(passthrough(native, body));
    }
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::NoEnvelope {
        provider: NAME,
        detail: format!(
            "a form body is ASCII; invalid UTF-8 at byte {}",
            e.valid_up_to()
        ),
    })?;
    let form = Form(form_pairs(text.as_bytes()));
    if let Some(event) = form.get("EventType") {
        return Ok(conversations(&form, event, body));
    }
    if let Some(sid) = form.get("MessageSid").or_else(|| form.get("SmsSid")) {
        return Ok(message(&form, sid));
    }
    if let Some(call) = form.get("CallSid") {
        let status = form.get("CallStatus").unwrap_or_else(|| "unknown".into());
        let mut decoded = passthrough(format!("call.{status}"), body);
        decoded.dedup_key = format!("call:{call}:{status}");
        return Ok(decoded);
    }
    Ok(passthrough("request".into(), body))
}

fn passthrough(native_type: String, body: &[u8]) -> Decoded {
    Decoded {
        event_type: passthrough_type(Provider::Twilio, &native_type),
        native_type,
        dedup_key: body_dedup_key(body),
        account: None,
        conversation_key: None,
        occurred_at: None,
        normalized: Normalized::default(),
    }
}

/// The platform an address names (`whatsapp:+1…`), `sms` for a number.
fn channel(address: &str) -> String {
    match address.split_once(':') {
        Some((platform, _)) if !platform.is_empty() && !platform.starts_with('+') => {
            platform.to_ascii_lowercase()
        }
        _ => "sms".to_owned(),
    }
}

fn party(address: Option<&str>, kind: &str, name: Option<String>) -> Option<Actor> {
    let address = address?;
    Some(Actor {
        id: Some(address.to_owned()),
        kind: Some(kind.to_owned()),
        name,
        phone: Some(
            address
                .split_once(':')
                .filter(|(p, _)| !p.starts_with('+'))
                .map_or(address, |(_, number)| number)
                .to_owned(),
        ),
        ..Actor::default()
    })
}

fn message(form: &Form, sid: String) -> Decoded {
    let (from, to) = (form.get("From"), form.get("To"));
    let status = form.get("MessageStatus");
    // A status callback reports a message the business sent; an incoming
    // message comes with `SmsStatus=received` and no `MessageStatus`.
    let incoming = status.is_none();
    let (business, contact) = if incoming { (&to, &from) } else { (&from, &to) };
    let contact_actor = party(contact.as_deref(), "contact", form.get("ProfileName"));
    let business_actor = party(business.as_deref(), "business", None);
    let key = match (business, contact) {
        (Some(b), Some(c)) => Some(format!("{b}:{c}")),
        (None, Some(c)) => Some(c.clone()),
        _ => None,
    };
    let channel = from
        .as_deref()
        .or(to.as_deref())
        .map_or_else(|| "sms".to_owned(), channel);
    let media_count: usize = form
        .get("NumMedia")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let media_urls: Vec<String> = (0..media_count.min(100))
        .filter_map(|i| form.get(&format!("MediaUrl{i}")))
        .collect();
    let (event_type, native_type, dedup_key, word, sender, recipient, direction) = if incoming {
        (
            "message.created",
            format!(
                "message.{}",
                form.get("SmsStatus").unwrap_or_else(|| "received".into())
            ),
            format!("message:{sid}"),
            form.get("SmsStatus"),
            contact_actor.clone(),
            business_actor.clone(),
            "incoming",
        )
    } else {
        let word = status.unwrap_or_default();
        (
            "message.updated",
            format!("message.{word}"),
            format!("status:{sid}:{word}"),
            Some(word),
            business_actor.clone(),
            contact_actor.clone(),
            "outgoing",
        )
    };
    Decoded {
        event_type: event_type.into(),
        native_type,
        dedup_key,
        account: None,
        conversation_key: key.clone(),
        occurred_at: None,
        normalized: Normalized {
            conversation: key.map(|key| Conversation {
                key,
                channel: Some(channel.clone()),
                participants: contact_actor.into_iter().collect(),
                ..Conversation::default()
            }),
            message: Some(Message {
                id: Some(sid),
                kind: Some(
                    if media_urls.is_empty() {
                        "text"
                    } else {
                        "media"
                    }
                    .into(),
                ),
                text: form.get("Body"),
                status: word,
                sender: sender.clone(),
                recipient,
                media_url: media_urls.first().cloned(),
                media_urls,
                direction: Some(direction.into()),
                channel: Some(channel),
                ..Message::default()
            }),
            actor: sender,
        },
    }
}

/// A Conversations webhook (`EventType`).
fn conversations(form: &Form, event: String, body: &[u8]) -> Decoded {
    let canonical = match event.as_str() {
        "onMessageAdded" => Some("message.created"),
        "onMessageUpdated" => Some("message.updated"),
        "onConversationAdded" => Some("conversation.created"),
        "onConversationUpdated" => Some("conversation.updated"),
        "onConversationRemoved" => Some("conversation.deleted"),
        _ => None,
    };
    let conversation = form.get("ConversationSid");
    let resource = form
        .get("MessageSid")
        .or_else(|| form.get("ParticipantSid"))
        .or_else(|| conversation.clone());
    let updated = form.get("DateUpdated").or_else(|| form.get("DateCreated"));
    let dedup_key = match (&resource, &updated) {
        (Some(sid), Some(at)) => format!("{event}:{sid}:{at}"),
        (Some(sid), None) if event.ends_with("Added") => format!("{event}:{sid}"),
        _ => body_dedup_key(body),
    };
    let created = form
        .get("DateCreated")
        .as_deref()
        .and_then(timestamp::parse);
    let author = form.get("Author").map(|author| Actor {
        id: Some(author.clone()),
        kind: Some("participant".into()),
        name: Some(author),
        ..Actor::default()
    });
    let is_message = event.starts_with("onMessage");
    Decoded {
        event_type: canonical
            .map_or_else(|| passthrough_type(Provider::Twilio, &event), str::to_owned),
        native_type: event,
        dedup_key,
        account: None,
        conversation_key: conversation.clone(),
        occurred_at: created,
        normalized: Normalized {
            conversation: conversation.clone().map(|key| Conversation {
                id: Some(key.clone()),
                key,
                title: form.get("FriendlyName"),
                status: form.get("State"),
                created_at: (!is_message)
                    .then(|| created.map(timestamp::format))
                    .flatten(),
                ..Conversation::default()
            }),
            message: is_message.then(|| Message {
                id: form.get("MessageSid"),
                text: form.get("Body"),
                sender: author.clone(),
                created_at: created.map(timestamp::format),
                channel: form.get("Source").map(|s| s.to_ascii_lowercase()),
                ..Message::default()
            }),
            actor: author,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form_encode;
    use http::HeaderMap;

    /// The official SDKs' request-validator cases (twilio-python's
    /// `tests/unit/test_request_validator.py`, MIT; the same values are in
    /// Twilio's documented examples): token, URL and parameters.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .to_vec()
    }

    fn form(params: &[(String, String)]) -> Vec<u8> {
        params
            .iter()
            .map(|(n, v)| format!("{}={}", form_encode(n), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    }

    /// Authenticates a POST of `body` received at `url` (query included).
    fn check(signature: &str, url: &str, body: &[u8]) -> Result<Option<String>, AuthError> {
        let twilio = Twilio::new(&[Credential::unlabelled(TOKEN)], "").expect("builds");
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().expect("value"));
        let (base, query) = url
            .split_once('?')
            .map_or((url, None), |(b, q)| (b, Some(q)));
        let request = Inbound::new(&headers, body, None)
            .with_url(Some(base))
            .with_query(query);
        twilio
            .authenticate(&request, Utc::now())
            .map(|t| t.map(str::to_owned))
    }

    #[test]
    fn the_official_sdk_cases_pass() {
        let body = form(&params());
        // compute_signature / validation
        assert_eq!(sign(TOKEN, URL, &body), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(check("RSOYDt4T1cUTdK1PDd93/VVr8B8=", URL, &body), Ok(None));
        // removes the port on https: signed without it, received with it
        let with_port = URL.replace(".com", ".com:1234");
        assert_eq!(
            check("RSOYDt4T1cUTdK1PDd93/VVr8B8=", &with_port, &body),
            Ok(None)
        );
        // keeps the port on http (the hash of the URL with port 1234)
        let http_port = with_port.replace("https", "http");
        assert_eq!(
            check("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", &http_port, &body),
            Ok(None)
        );
        // adds the default port: signed with :443 / :80, received without
        assert_eq!(check("kvajT1Ptam85bY51eRf/AJRuM3w=", URL, &body), Ok(None));
        let http = URL.replace("https", "http");
        assert_eq!(
            check("0ZXoZLH/DfblKGATFgpif+LLRf4=", &http, &body),
            Ok(None)
        );
        // a name's several values, sorted
        let duplicate: Vec<(String, String)> = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .to_vec();
        let body = form(&duplicate);
        assert_eq!(sign(TOKEN, URL, &body), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        assert_eq!(check("IK+Dwps556ElfBT0I3Rgjkr1wJU=", URL, &body), Ok(None));
        // a JSON body, through bodySHA256
        let json = br#"{"property": "value", "boolean": true}"#;
        assert_eq!(
            hex::encode(Sha256::digest(json)),
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let with_body = format!(
            "{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        assert_eq!(
            sign(TOKEN, &with_body, json),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        );
        assert_eq!(
            check("a9nBmqA0ju/hNViExpshrM61xv4=", &with_body, json),
            Ok(None)
        );
    }

    #[test]
    fn each_invalid_case_fails_for_its_reason() {
        let body = form(&params());
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let invalid = Err(AuthError::InvalidSignature(SIGNED));
        // Another parameter value, another query, another path.
        let mut tampered = params();
        tampered[1].1 = "9999".into();
        assert_eq!(check(good, URL, &form(&tampered)), invalid);
        assert_eq!(check(good, &URL.replace("foo=1", "foo=2"), &body), invalid);
        assert_eq!(check(good, &URL.replace("myapp", "other"), &body), invalid);
        // A body whose digest is not the one the URL names.
        let with_body = format!(
            "{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        assert_eq!(
            check(
                "a9nBmqA0ju/hNViExpshrM61xv4=",
                &with_body,
                br#"{"property": "other"}"#
            ),
            invalid
        );
        // Not base64 of an HMAC-SHA1.
        for malformed in ["not base64!", "RSOYDt4T1cUTdK1P", "c2hvcnQ="] {
            assert_eq!(
                check(malformed, URL, &body),
                Err(AuthError::MalformedSignature(SIGNATURE_NAME)),
                "{malformed}"
            );
        }
        let twilio = Twilio::new(&[Credential::unlabelled(TOKEN)], "").expect("builds");
        let headers = HeaderMap::new();
        assert_eq!(
            twilio.authenticate(&Inbound::new(&headers, &body, None), Utc::now()),
            Err(AuthError::MissingSignature(SIGNATURE_NAME))
        );
    }

    #[test]
    fn a_labelled_token_names_its_tenant_and_a_configured_url_wins() {
        let body = form(&params());
        let twilio = Twilio::new(
            &[
                Credential::unlabelled("other"),
                Credential {
                    tenant: Some("acme".into()),
                    key: TOKEN.into(),
                },
            ],
            URL,
        )
        .expect("builds");
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=".parse().expect("value"),
        );
        // Received elsewhere (a proxy): the configured URL is what is signed.
        let request = Inbound::new(&headers, &body, None)
            .with_url(Some("https://internal.example/webhooks/twilio"));
        assert_eq!(twilio.authenticate(&request, Utc::now()), Ok(Some("acme")));
        assert!(Twilio::new(&[Credential::unlabelled(TOKEN)], "mycompany.com").is_err());
    }

    #[test]
    fn a_webhooks_rule_signs_the_same_text_with_hmac_sha256() {
        // Twilio's Webhooks Rules: the signed string is unchanged, only the
        // hash (twilio-node's WebhookSignatureValidation example).
        let body = form(&params());
        let text = signed_text(URL, &params(), true);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(TOKEN.as_bytes()).expect("key");
        mac.update(text.as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(check(&signature, URL, &body), Ok(None));
        assert_eq!(
            check(&signature, &URL.replace("foo=1", "foo=3"), &body),
            Err(AuthError::InvalidSignature(SIGNED))
        );
    }

    #[test]
    fn url_variants_drop_or_add_the_port_as_the_sdks_do() {
        assert_eq!(
            url_variants("https://h.example/p?q=1"),
            ["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
        );
        assert_eq!(
            url_variants("http://h.example:8080/p"),
            ["http://h.example:8080/p", "http://h.example/p"]
        );
        assert_eq!(
            url_variants("https://[::1]/p"),
            ["https://[::1]/p", "https://[::1]:443/p"]
        );
        assert_eq!(url_variants("not a url"), ["not a url"]);
        assert_eq!(
            url_variants("https://h.example/p#rc=2"),
            [
                "https://h.example/p#rc=2",
                "https://h.example:443/p#rc=2",
                "https://h.example/p",
                "https://h.example:443/p"
            ]
        );
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/twilio/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn messages_and_status_callbacks_decode_into_the_model() {
        let inbound = decode(&fixture("sms.inbound.form")).expect("decodes");
        assert_eq!(
            (inbound.event_type.as_str(), inbound.native_type.as_str()),
            ("message.created", "message.received")
        );
        let message = inbound.normalized.message.expect("a message");
        assert_eq!(message.direction.as_deref(), Some("incoming"));
        assert_eq!(message.channel.as_deref(), Some("sms"));
        assert!(message.text.is_some());
        let key = inbound.conversation_key.expect("a conversation");
        let status = decode(&fixture("status.delivered.form")).expect("decodes");
        assert_eq!(status.event_type, "message.updated");
        assert!(
            status.dedup_key.ends_with(":delivered"),
            "{}",
            status.dedup_key
        );
        // The business's message to the contact is in the contact's
        // conversation with the business number, as their messages are.
        assert_eq!(status.conversation_key.as_deref(), Some(key.as_str()));
        let mms = decode(&fixture("mms.inbound.form")).expect("decodes");
        let message = mms.normalized.message.expect("a message");
        assert_eq!(message.media_urls.len(), 1);
        assert!(message
            .media_url
            .is_some_and(|u| u.starts_with("https://api.twilio.com/")));
        let whatsapp = decode(&fixture("whatsapp.inbound.form")).expect("decodes");
        let message = whatsapp.normalized.message.expect("a message");
        assert_eq!(message.channel.as_deref(), Some("whatsapp"));
        let sender = message.sender.expect("sender");
        assert!(sender.phone.is_some_and(|p| p.starts_with('+')));
        assert!(sender.name.is_some(), "WhatsApp's ProfileName");
    }

    #[test]
    fn a_form_is_published_as_a_json_object_of_arrays() {
        let raw = form_json(b"Body=Hi+there&MediaUrl0=a&Body=again").expect("a form");
        assert_eq!(raw, r#"{"Body":["Hi there","again"],"MediaUrl0":["a"]}"#);
        assert_eq!(
            form_json(br#" {"a":1}"#),
            None,
            "JSON is published as it is"
        );
        assert_eq!(form_json(b""), Some("{}".into()));
    }

    #[test]
    fn conversations_and_other_requests_have_their_types() {
        let added = decode(
            b"EventType=onMessageAdded&ConversationSid=CH1&MessageSid=IM1&Author=alice&Body=hi&DateCreated=2026-12-07T10%3A00%3A00Z&Source=SDK",
        )
        .expect("decodes");
        assert_eq!(added.event_type, "message.created");
        assert_eq!(added.conversation_key.as_deref(), Some("CH1"));
        assert_eq!(added.dedup_key, "onMessageAdded:IM1:2026-12-07T10:00:00Z");
        assert_eq!(
            added.occurred_at.map(|t| t.timestamp()),
            Some(1_796_637_600)
        );
        let other = decode(b"EventType=onParticipantAdded&ConversationSid=CH1&ParticipantSid=MB1")
            .expect("decodes");
        assert_eq!(other.event_type, "twilio.onParticipantAdded");
        let call = decode(b"CallSid=CA1&CallStatus=completed").expect("decodes");
        assert_eq!(
            (call.event_type.as_str(), call.dedup_key.as_str()),
            ("twilio.call.completed", "call:CA1:completed")
        );
        assert_eq!(
            decode(b"x=1").expect("decodes").event_type,
            "twilio.request"
        );
        assert_eq!(
            decode(br#"{"type":"com.twilio.x"}"#)
                .expect("decodes")
                .event_type,
            "twilio.com.twilio.x"
        );
        assert_eq!(
            decode(b"{not json").map_err(|e| e.code()),
            Err("malformed_json")
        );
    }
}
