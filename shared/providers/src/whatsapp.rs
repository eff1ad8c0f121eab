//! Meta's WhatsApp Business Platform (Cloud API) webhooks.
//!
//! **Authentication.** Meta signs every `POST` with `X-Hub-Signature-256:
//! sha256=<hex HMAC-SHA256 of the raw body, keyed by the app secret>`
//! (Graph API webhooks, "Validating payloads"). The signature is over the
//! bytes as sent, in which Meta writes non-ASCII characters as `\uXXXX`
//! escapes, so it is checked on the raw body before anything parses it.
//! Configured secrets carry no tenant label: one app secret can serve many
//! WhatsApp Business Accounts (a tech provider's customers), so whose event
//! it is comes from the body, as for Partoo. An event is published only
//! when its account (`entry[].id`, the WABA id) is listed in
//! `WHATSAPP_ACCOUNT_IDS`; the listed id is its tenant. Events of an
//! unlisted account are kept as quarantined (`org_not_allowed`).
//!
//! **The URL check.** When a webhook is configured, Meta sends a `GET` with
//! `hub.mode=subscribe`, `hub.verify_token` and `hub.challenge`, and expects
//! the challenge back with a 200 ([`WebhookProvider::handshake`]). The token
//! is compared in constant time with each of `WHATSAPP_VERIFY_TOKENS` (one
//! per Meta app that sends here); a wrong or missing one is a 403, Meta's
//! convention. Nothing is stored.
//!
//! **One request, many events.** Meta batches: a body's `entry[]` holds
//! accounts, each with `changes[]`, and a `messages` change's `value` holds
//! any number of `messages[]` and `statuses[]` (Graph API webhooks:
//! "aggregated and sent in a batch"). [`split`] cuts the body into one body
//! per event, byte for byte: the same envelope with each array narrowed to
//! the event's own item (`statuses: []` beside a message's part, and so on),
//! so every stored event is Meta's own JSON, decodes alone and names only
//! its own account. A change of any other field (`account_update`,
//! `message_template_status_update`, …) is one event, passed through as
//! `whatsapp.<field>`.
//!
//! **Identity, conversation and time.** An incoming message is
//! `message.created`, keyed by its `wamid`; a status is `message.updated`,
//! keyed by the message id, the status and its timestamp, so `sent`,
//! `delivered` and `read` of one message are three events and a redelivery
//! of one is a duplicate. Every other change is keyed by its part's digest.
//! The conversation is the contact (a group, where the event names one)
//! within the business number: `<phone_number_id>:<wa_id>`. The time is the
//! item's `timestamp` (Unix seconds, signed with the body).
//!
//! **Delivery habits** (WhatsApp Cloud API webhooks docs): anything but a
//! 200 is retried, "with decreasing frequency until the request succeeds,
//! for up to 7 days"; delivery is at least once and statuses may arrive out
//! of order (a `read` before its `delivered`, which Meta may skip). Meta
//! documents payloads of up to 3 MB; each event's part is held to the body
//! limit on its own.

use crate::json::{lenient, lenient_vec, non_empty, opt_id, opt_text};
use crate::registry::{
    Accounts, Credential, Credentials, Descriptor, DevCredential, Labels, LocalDefault, Setting,
    UrlCheck,
};
use crate::{
    body_dedup_key, form_encode, parse_envelope, passthrough_type, timestamp, AuthError,
    ConfigError, DecodeError, Decoded, Inbound, WebhookProvider,
};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use subtle::ConstantTimeEq;
use switchboard_types::{Actor, Conversation, Message, Normalized, Provider};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The header's name as Meta documents it, in messages.
const SIGNATURE_NAME: &str = "X-Hub-Signature-256";
/// What the signature covers, as an invalid one is reported.
pub const SIGNED: &str = "the body";
/// The setting that lists the WhatsApp Business Accounts whose events are
/// published.
pub const ACCOUNT_IDS: &str = "WHATSAPP_ACCOUNT_IDS";
/// The setting that lists the verify tokens a `GET` URL check may carry.
pub const VERIFY_TOKENS: &str = "WHATSAPP_VERIFY_TOKENS";
/// The verify token the local stack answers with unless one is set.
pub const LOCAL_VERIFY_TOKEN: &str = "switchboard-local";
/// The WhatsApp Business Account of Meta's documented examples, which the
/// committed fixtures use, so the local stack publishes them.
pub const EXAMPLE_ACCOUNT: &str = "102290129340398";

/// One app secret signs every account's webhooks: the listed accounts.
pub static ACCOUNTS: Accounts = Accounts {
    setting: ACCOUNT_IDS,
    what: "WhatsApp Business Account",
    field: "entry[].id",
};

/// WhatsApp in the registry.
pub static DESCRIPTOR: Descriptor = Descriptor {
    provider: Provider::Whatsapp,
    display_name: "WhatsApp",
    route: "/webhooks/whatsapp",
    function: "whatsapp-webhook",
    credentials: Credentials {
        inline: "WHATSAPP_APP_SECRETS",
        secret: "WHATSAPP_SECRET_ID",
        dev_variable: "WHATSAPP_APP_SECRET",
        // A Meta app secret is 32 lowercase hex digits.
        dev: |seed| DevCredential::shared(hex::encode(&seed[..16])),
    },
    labels: Labels::None,
    settings: &[
        Setting {
            name: ACCOUNT_IDS,
            default: Some(""),
            local: LocalDefault::Value(EXAMPLE_ACCOUNT),
            reprocess: true,
        },
        Setting {
            name: VERIFY_TOKENS,
            default: Some(""),
            local: LocalDefault::Value(LOCAL_VERIFY_TOKEN),
            reprocess: false,
        },
    ],
    build: |keys, settings| {
        let tokens = crate::split_key_list(settings.get(VERIFY_TOKENS).unwrap_or_default());
        Ok(Box::new(Whatsapp::new(keys, &tokens)?))
    },
    check: |settings| ACCOUNTS.check(settings),
    split,
    decode,
    data_raw: crate::registry::json_body,
    accounts: Some(&ACCOUNTS),
    sign: |request| Ok(vec![(SIGNATURE_HEADER, sign(request.key, request.body))]),
    signature_header: Some(SIGNATURE_HEADER),
    url_check: Some(UrlCheck {
        tokens: VERIFY_TOKENS,
        query: url_check_query,
    }),
    fixtures: &["text.json", "image.json", "status.json", "batch.json"],
};

/// The query of Meta's URL check (Graph API webhooks, "Verification
/// Requests"), percent-encoded.
pub fn url_check_query(token: &str, challenge: &str) -> String {
    format!(
        "hub.mode=subscribe&hub.challenge={}&hub.verify_token={}",
        form_encode(challenge),
        form_encode(token)
    )
}

/// `X-Hub-Signature-256` for `body`, as Meta computes it.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    let mut mac = keyed(app_secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn keyed(secret: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// The WhatsApp provider: its app secrets and verify tokens.
pub struct Whatsapp {
    secrets: Vec<Hmac<Sha256>>,
    /// SHA-256 of each verify token: compared in constant time whatever the
    /// candidate's length.
    verify_tokens: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Whatsapp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Whatsapp")
            .field("secrets", &self.secrets.len())
            .field("verify_tokens", &self.verify_tokens.len())
            .finish()
    }
}

impl Whatsapp {
    /// Builds the provider from its app secrets and verify tokens.
    pub fn new(secrets: &[Credential], verify_tokens: &[String]) -> Result<Self, ConfigError> {
        if secrets.is_empty() {
            return Err(ConfigError::Empty("WhatsApp app secrets"));
        }
        Ok(Self {
            secrets: secrets.iter().map(|c| keyed(c.key.trim())).collect(),
            verify_tokens: verify_tokens
                .iter()
                .map(|t| Sha256::digest(t.as_bytes()).into())
                .collect(),
        })
    }
}

impl WebhookProvider for Whatsapp {
    fn provider(&self) -> Provider {
        Provider::Whatsapp
    }

    /// App secrets carry no label: the tenant is the body's account.
    fn authenticate(
        &self,
        request: &Inbound<'_>,
        _now: DateTime<Utc>,
    ) -> Result<Option<&str>, AuthError> {
        let header = request.signature(SIGNATURE_HEADER, SIGNATURE_NAME)?;
        // `sha256=` then 64 hex digits; Meta sends lowercase, either case
        // is read.
        let signature = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("sha256="))
            .and_then(|_| hex::decode(&header[7..]).ok())
            .filter(|bytes| bytes.len() == 32)
            .ok_or(AuthError::MalformedSignature(SIGNATURE_NAME))?;
        let matches = |secret: &Hmac<Sha256>| {
            let mut mac = secret.clone();
            mac.update(request.body);
            // verify_slice compares in constant time.
            mac.verify_slice(&signature).is_ok()
        };
        if self.secrets.iter().any(matches) {
            Ok(None)
        } else {
            Err(AuthError::InvalidSignature(SIGNED))
        }
    }

    /// Meta's URL check: `hub.mode=subscribe` with a `hub.challenge` is
    /// answered with the challenge when `hub.verify_token` is configured.
    fn handshake(&self, request: &Inbound<'_>) -> Option<Result<String, AuthError>> {
        let pairs = request.query_pairs();
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if param("hub.mode") != Some("subscribe") {
            return None;
        }
        let challenge = param("hub.challenge")?;
        let token = param("hub.verify_token").unwrap_or_default();
        let candidate: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every token is compared, so the time does not say which matched.
        let matched = self
            .verify_tokens
            .iter()
            .fold(subtle::Choice::from(0), |found, token| {
                found | token.ct_eq(&candidate)
            });
        Some(if bool::from(matched) {
            Ok(challenge.to_owned())
        } else {
            Err(AuthError::InvalidVerifyToken)
        })
    }
}

/// Where a value sits in the body: its text is a slice of the body's.
fn offset(outer: &str, inner: &str) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

/// `outer` with each `(inner, replacement)` put in place of `inner`, a slice
/// of `outer`; the slices do not overlap.
fn splice(outer: &str, mut replacements: Vec<(&str, String)>) -> String {
    replacements.sort_by_key(|(inner, _)| offset(outer, inner));
    let mut out = String::with_capacity(outer.len());
    let mut at = 0;
    for (inner, replacement) in replacements {
        let start = offset(outer, inner);
        out.push_str(&outer[at..start]);
        out.push_str(&replacement);
        at = start + inner.len();
    }
    out.push_str(&outer[at..]);
    out
}

#[derive(Deserialize)]
struct EntrySpans<'a> {
    #[serde(borrow, default)]
    entry: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChangeSpans<'a> {
    #[serde(borrow, default)]
    changes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ValueSpans<'a> {
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

/// The arrays of a `messages` change's value that [`split`] narrows.
#[derive(Deserialize)]
struct ItemSpans<'a> {
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    statuses: Option<&'a RawValue>,
    #[serde(borrow, default)]
    contacts: Option<&'a RawValue>,
}

/// The ids a message, a status or a contact names its contact by.
#[derive(Default, Deserialize)]
struct ContactIds {
    #[serde(default, deserialize_with = "opt_id")]
    from: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    from_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    recipient_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    recipient_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    wa_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    user_id: Option<String>,
}

impl ContactIds {
    fn of(item: &RawValue) -> Self {
        serde_json::from_str(item.get()).unwrap_or_default()
    }

    fn ids(&self) -> impl Iterator<Item = &str> {
        [
            &self.from,
            &self.from_user_id,
            &self.recipient_id,
            &self.recipient_user_id,
            &self.wa_id,
            &self.user_id,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
    }

    fn shares_one_with(&self, other: &ContactIds) -> bool {
        self.ids().any(|id| other.ids().any(|o| o == id))
    }
}

/// The items of a JSON array's text; `None` when it is not an array.
fn items(array: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(array.get()).ok()
}

/// `[a,b]` of the items' texts.
fn array_of<'a>(items: impl Iterator<Item = &'a RawValue>) -> String {
    let texts: Vec<&str> = items.map(RawValue::get).collect();
    format!("[{}]", texts.join(","))
}

/// One body per event, byte for byte (see the module's documentation), in
/// the body's order. Each event's part keeps the contacts it names (and any
/// contact no event of its change names). A body, entry or change whose
/// shape is not Meta's is kept whole at that level: its part then fails to
/// decode and is kept as quarantined, with nothing lost.
pub fn split(body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let whole = || crate::registry::one_event(body);
    let Ok(text) = std::str::from_utf8(body) else {
        return whole();
    };
    let Some(entry_array) = serde_json::from_str::<EntrySpans<'_>>(text)
        .ok()
        .and_then(|e| e.entry)
    else {
        return whole();
    };
    let Some(entries) = items(entry_array).filter(|e| !e.is_empty()) else {
        return whole();
    };
    let mut parts = Vec::new();
    let alone = entries.len() == 1;
    for &entry in &entries {
        let in_body = |entry_text: String| {
            if alone {
                // The array holds this entry only: kept as sent.
                splice(text, vec![(entry.get(), entry_text)]).into_bytes()
            } else {
                splice(text, vec![(entry_array.get(), format!("[{entry_text}]"))]).into_bytes()
            }
        };
        let entry_text = entry.get();
        let change_array = serde_json::from_str::<ChangeSpans<'_>>(entry_text)
            .ok()
            .and_then(|c| c.changes);
        let changes = change_array.and_then(items).unwrap_or_default();
        let (Some(change_array), false) = (change_array, changes.is_empty()) else {
            parts.push(Cow::Owned(in_body(entry_text.to_owned())));
            continue;
        };
        let alone = changes.len() == 1;
        for &change in &changes {
            let in_entry = |change_text: String| {
                in_body(if alone {
                    splice(entry_text, vec![(change.get(), change_text)])
                } else {
                    splice(
                        entry_text,
                        vec![(change_array.get(), format!("[{change_text}]"))],
                    )
                })
            };
            let change_text = change.get();
            for value_text in split_value(change_text) {
                parts.push(Cow::Owned(in_entry(value_text)));
            }
        }
    }
    parts
}

/// A change's text once per event of its value, each with the value's
/// arrays narrowed to that event; the change whole when it holds none.
fn split_value(change_text: &str) -> Vec<String> {
    let whole = || vec![change_text.to_owned()];
    let Some(value) = serde_json::from_str::<ValueSpans<'_>>(change_text)
        .ok()
        .and_then(|v| v.value)
    else {
        return whole();
    };
    let Ok(spans) = serde_json::from_str::<ItemSpans<'_>>(value.get()) else {
        return whole();
    };
    // Each event array with its items, once.
    let lists: Vec<(&RawValue, Vec<&RawValue>)> = [spans.messages, spans.statuses]
        .into_iter()
        .flatten()
        .map(|array| (array, items(array).unwrap_or_default()))
        .collect();
    // Every event of the value, in the order the body has them.
    let mut events: Vec<(usize, &RawValue)> = lists
        .iter()
        .enumerate()
        .flat_map(|(list, (_, items))| items.iter().map(move |item| (list, *item)))
        .collect();
    if events.is_empty() {
        return whole();
    }
    events.sort_by_key(|(_, item)| offset(value.get(), item.get()));
    let contacts: Vec<(&RawValue, ContactIds)> = spans
        .contacts
        .and_then(items)
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c, ContactIds::of(c)))
        .collect();
    let named: Vec<ContactIds> = events
        .iter()
        .map(|(_, item)| ContactIds::of(item))
        .collect();
    events
        .iter()
        .zip(&named)
        .map(|((own, item), ids)| {
            // An array that keeps all it holds is kept as sent.
            let mut narrowed: Vec<(&str, String)> = lists
                .iter()
                .enumerate()
                .filter_map(|(list, (array, items))| match (list == *own, items.len()) {
                    (true, 1) | (false, 0) => None,
                    (true, _) => Some((array.get(), format!("[{}]", item.get()))),
                    (false, _) => Some((array.get(), "[]".to_owned())),
                })
                .collect();
            if let Some(array) = spans.contacts {
                let kept: Vec<&RawValue> = contacts
                    .iter()
                    .filter(|(_, contact)| {
                        contact.shares_one_with(ids)
                            || !named.iter().any(|n| contact.shares_one_with(n))
                    })
                    .map(|(c, _)| *c)
                    .collect();
                if kept.len() < contacts.len() {
                    narrowed.push((array.get(), array_of(kept.into_iter())));
                }
            }
            let value_text = splice(value.get(), narrowed);
            splice(change_text, vec![(value.get(), value_text)])
        })
        .collect()
}

/// Documented and not read: `object` beyond its presence.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "opt_text")]
    object: Option<String>,
    #[serde(default)]
    entry: Option<Vec<Box<RawValue>>>,
}

#[derive(Debug, Default, Deserialize)]
struct Entry {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default)]
    changes: Option<Vec<Box<RawValue>>>,
}

#[derive(Debug, Default, Deserialize)]
struct Change {
    #[serde(default, deserialize_with = "opt_text")]
    field: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    value: Option<Value>,
}

/// A `messages` change's value. Documented and not read (serde skips them):
/// `messaging_product`, `errors`.
#[derive(Debug, Default, Deserialize)]
struct Value {
    #[serde(default, deserialize_with = "lenient")]
    metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "lenient_vec")]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    statuses: Option<Vec<Box<RawValue>>>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "opt_id")]
    display_phone_number: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    phone_number_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Contact {
    #[serde(default, deserialize_with = "lenient")]
    profile: Option<Profile>,
    #[serde(default, deserialize_with = "opt_id")]
    wa_id: Option<String>,
    /// The business-scoped user id, sent beside or instead of `wa_id` for
    /// users whose phone number is not shared.
    #[serde(default, deserialize_with = "opt_id")]
    user_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Profile {
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<String>,
}

/// An incoming message. Documented and not read (serde skips them):
/// `context`, `referral`, `errors`, `identity`, and the content objects of
/// the types without text or media (`location`, `contacts`, `order`, …).
#[derive(Debug, Default, Deserialize)]
struct WaMessage {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    from: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    from_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    group_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    timestamp: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "opt_text")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    text: Option<Text>,
    #[serde(default, deserialize_with = "lenient")]
    image: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    video: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    audio: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    document: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    sticker: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    button: Option<Text>,
    #[serde(default, deserialize_with = "lenient")]
    interactive: Option<Interactive>,
    #[serde(default, deserialize_with = "lenient")]
    reaction: Option<Reaction>,
}

#[derive(Debug, Default, Deserialize)]
struct Text {
    #[serde(default, deserialize_with = "opt_text")]
    body: Option<String>,
    /// A quick-reply button's text.
    #[serde(default, deserialize_with = "opt_text")]
    text: Option<String>,
}

/// Media as the webhook names it: an id to fetch it by, and in current
/// API versions a `url` (downloaded with the app's access token).
#[derive(Debug, Default, Deserialize)]
struct Media {
    #[serde(default, deserialize_with = "opt_text")]
    url: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    caption: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Interactive {
    #[serde(default, deserialize_with = "lenient")]
    button_reply: Option<Reply>,
    #[serde(default, deserialize_with = "lenient")]
    list_reply: Option<Reply>,
}

#[derive(Debug, Default, Deserialize)]
struct Reply {
    #[serde(default, deserialize_with = "opt_text")]
    title: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Reaction {
    #[serde(default, deserialize_with = "opt_text")]
    emoji: Option<String>,
}

/// A status of a message the business sent. Documented and not read:
/// `conversation`, `pricing`, `errors`, `biz_opaque_callback_data`.
#[derive(Debug, Default, Deserialize)]
struct WaStatus {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    timestamp: Option<String>,
    /// The contact's phone number, or the group's id for a group message.
    #[serde(default, deserialize_with = "opt_id")]
    recipient_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    recipient_user_id: Option<String>,
}

const NAME: &str = "whatsapp";

fn no_envelope(detail: impl Into<String>) -> DecodeError {
    DecodeError::NoEnvelope {
        provider: NAME,
        detail: detail.into(),
    }
}

/// The one item of a list that must hold exactly one: what a part holds.
fn only<T>(list: Option<Vec<T>>, what: &str) -> Result<T, DecodeError> {
    let mut list = list.ok_or_else(|| no_envelope(format!("it has no {what} list")))?;
    match list.len() {
        1 => Ok(list.remove(0)),
        0 => Err(no_envelope(format!("its {what} list is empty"))),
        n => Err(no_envelope(format!(
            "it has {n} items in {what}; the webhook stores each as its own event"
        ))),
    }
}

/// Decodes one event's body: a part [`split`] made.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let envelope: Envelope = parse_envelope(NAME, body)?;
    if non_empty(envelope.object).is_none() {
        return Err(no_envelope("`object` is missing"));
    }
    let entry: Entry = read(&only(envelope.entry, "entry")?)?;
    let account = non_empty(entry.id);
    let change: Change = read(&only(entry.changes, "entry[].changes")?)?;
    let field = non_empty(change.field).ok_or_else(|| no_envelope("the change has no `field`"))?;
    let value = change.value.unwrap_or_default();
    let messages = value.messages.as_deref().unwrap_or_default();
    let statuses = value.statuses.as_deref().unwrap_or_default();
    let mut decoded = match (field.as_str(), messages, statuses) {
        ("messages", [item], []) => message(&value, read(item)?)?,
        ("messages", [], [item]) => status(&value, read(item)?)?,
        (_, m, s) if m.len() + s.len() <= 1 => Decoded {
            event_type: passthrough_type(Provider::Whatsapp, &field),
            native_type: field,
            dedup_key: body_dedup_key(body),
            account: None,
            conversation_key: None,
            occurred_at: None,
            normalized: Normalized::default(),
        },
        (_, m, s) => {
            return Err(no_envelope(format!(
                "it has {} events; the webhook stores each as its own event",
                m.len() + s.len()
            )))
        }
    };
    decoded.account = account;
    Ok(decoded)
}

/// An object of the envelope, read strictly: an item of the wrong shape is
/// not Meta's envelope.
fn read<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, DecodeError> {
    if !raw.get().trim_start().starts_with('{') {
        return Err(no_envelope("an entry, change or item is not an object"));
    }
    serde_json::from_str(raw.get()).map_err(|e| no_envelope(e.to_string()))
}

/// The business number of a change, as the party on the business's side.
fn business(value: &Value) -> Option<Actor> {
    let metadata = value.metadata.as_ref()?;
    Some(Actor {
        id: metadata.phone_number_id.clone(),
        kind: Some("business".into()),
        phone: metadata.display_phone_number.clone(),
        ..Actor::default()
    })
}

/// The contact `id` names (a `wa_id` or business-scoped user id), with
/// its profile name when the change lists it.
fn contact(value: &Value, id: &str, phone: Option<&str>) -> Actor {
    let profile = value
        .contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(id) || c.user_id.as_deref() == Some(id));
    Actor {
        id: Some(id.to_owned()),
        kind: Some("contact".into()),
        name: profile
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| non_empty(p.name.clone())),
        phone: phone.map(str::to_owned),
        ..Actor::default()
    }
}

/// The conversation key: the contact within the business number.
fn conversation_key(value: &Value, contact: &str) -> String {
    match value
        .metadata
        .as_ref()
        .and_then(|m| non_empty(m.phone_number_id.clone()))
    {
        Some(number) => format!("{number}:{contact}"),
        None => contact.to_owned(),
    }
}

/// A Unix-seconds `timestamp`, within years 0000–9999.
fn unix_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text?
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(timestamp::from_unix)
}

fn conversation(key: Option<String>, contact: Option<Actor>) -> Option<Conversation> {
    key.map(|key| Conversation {
        key,
        channel: Some(NAME.into()),
        participants: contact.into_iter().collect(),
        ..Conversation::default()
    })
}

fn message(value: &Value, item: WaMessage) -> Result<Decoded, DecodeError> {
    let kind = non_empty(item.kind.clone()).unwrap_or_else(|| "unknown".into());
    let native_type = format!("messages.{kind}");
    let id = non_empty(item.id.clone()).ok_or_else(|| DecodeError::MissingField {
        event_type: native_type.clone(),
        field: "messages[].id",
    })?;
    let from = non_empty(item.from.clone()).or(non_empty(item.from_user_id.clone()));
    let phone = non_empty(item.from.clone());
    let sender = from.as_deref().map(|f| contact(value, f, phone.as_deref()));
    // A group's messages are one conversation; a contact's, another.
    let key = non_empty(item.group_id.clone())
        .or(from)
        .map(|c| conversation_key(value, &c));
    let media = [
        &item.image,
        &item.video,
        &item.audio,
        &item.document,
        &item.sticker,
    ]
    .into_iter()
    .flatten()
    .next();
    let text = item
        .text
        .as_ref()
        .and_then(|t| non_empty(t.body.clone()))
        .or_else(|| media.and_then(|m| non_empty(m.caption.clone())))
        .or_else(|| item.button.as_ref().and_then(|b| non_empty(b.text.clone())))
        .or_else(|| {
            let interactive = item.interactive.as_ref()?;
            [&interactive.button_reply, &interactive.list_reply]
                .into_iter()
                .flatten()
                .find_map(|r| non_empty(r.title.clone()))
        })
        .or_else(|| {
            item.reaction
                .as_ref()
                .and_then(|r| non_empty(r.emoji.clone()))
        });
    let media_urls: Vec<String> = media
        .and_then(|m| non_empty(m.url.clone()))
        .into_iter()
        .collect();
    let occurred_at = unix_time(item.timestamp.as_deref());
    Ok(Decoded {
        event_type: "message.created".into(),
        dedup_key: format!("message:{id}"),
        account: None,
        conversation_key: key.clone(),
        occurred_at,
        normalized: Normalized {
            conversation: conversation(key, sender.clone()),
            message: Some(Message {
                id: Some(id),
                kind: Some(kind),
                text,
                sender: sender.clone(),
                recipient: business(value),
                created_at: occurred_at.map(timestamp::format),
                media_url: media_urls.first().cloned(),
                media_urls,
                direction: Some("incoming".into()),
                channel: Some(NAME.into()),
                ..Message::default()
            }),
            actor: sender,
        },
        native_type,
    })
}

fn status(value: &Value, item: WaStatus) -> Result<Decoded, DecodeError> {
    let word = non_empty(item.status.clone());
    let native_type = format!("statuses.{}", word.as_deref().unwrap_or("unknown"));
    let missing = |field| DecodeError::MissingField {
        event_type: native_type.clone(),
        field,
    };
    let id = non_empty(item.id.clone()).ok_or_else(|| missing("statuses[].id"))?;
    let word = word.ok_or_else(|| missing("statuses[].status"))?;
    let to = non_empty(item.recipient_id.clone()).or(non_empty(item.recipient_user_id.clone()));
    let recipient = to.as_deref().map(|r| {
        let phone = non_empty(item.recipient_id.clone());
        contact(value, r, phone.as_deref())
    });
    let key = to.map(|c| conversation_key(value, &c));
    let at = item
        .timestamp
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let business = business(value);
    Ok(Decoded {
        event_type: "message.updated".into(),
        dedup_key: format!("status:{id}:{word}:{at}"),
        account: None,
        conversation_key: key.clone(),
        occurred_at: unix_time(Some(&at)),
        normalized: Normalized {
            conversation: conversation(key, recipient.clone()),
            message: Some(Message {
                id: Some(id),
                status: Some(word),
                sender: business.clone(),
                recipient,
                direction: Some("outgoing".into()),
                channel: Some(NAME.into()),
                ..Message::default()
            }),
            actor: business,
        },
        native_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/whatsapp/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn provider(tokens: &[&str]) -> Whatsapp {
        let tokens: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        Whatsapp::new(&[Credential::unlabelled("Jefe")], &tokens).expect("builds")
    }

    fn headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().expect("value"));
        headers
    }

    fn check(provider: &Whatsapp, signature: &str, body: &[u8]) -> Result<(), AuthError> {
        let headers = headers(signature);
        let request = Inbound::new(&headers, body, None);
        provider.authenticate(&request, Utc::now()).map(|_| ())
    }

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_raw_body_in_lowercase_hex() {
        // RFC 4231, test case 2: HMAC-SHA256("Jefe", "what do ya want for
        // nothing?"), the construction Meta documents (`sha256=` then the
        // hex digest, keyed by the app secret, over the payload as sent).
        let body = b"what do ya want for nothing?";
        let expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(sign("Jefe", body), expected);
        let wa = provider(&[]);
        assert_eq!(check(&wa, expected, body), Ok(()));
        // Uppercase digits and scheme are read too: the bytes compared are
        // the same.
        assert_eq!(check(&wa, &expected.to_uppercase(), body), Ok(()));
        // Each invalid case fails for its own reason.
        for (signature, why) in [
            ("", AuthError::MissingSignature(SIGNATURE_NAME)),
            (
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                AuthError::MalformedSignature(SIGNATURE_NAME),
            ),
            (
                "sha1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                AuthError::MalformedSignature(SIGNATURE_NAME),
            ),
            (
                "sha256=5bdcc146",
                AuthError::MalformedSignature(SIGNATURE_NAME),
            ),
            (
                "sha256=zzdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                AuthError::MalformedSignature(SIGNATURE_NAME),
            ),
            (
                "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3844",
                AuthError::InvalidSignature(SIGNED),
            ),
        ] {
            let result = if signature.is_empty() {
                let headers = HeaderMap::new();
                wa.authenticate(&Inbound::new(&headers, body, None), Utc::now())
                    .map(|_| ())
            } else {
                check(&wa, signature, body)
            };
            assert_eq!(result, Err(why), "{signature}");
        }
        // Another body under the same signature.
        assert_eq!(
            check(&wa, expected, b"what do ya want for nothing!"),
            Err(AuthError::InvalidSignature(SIGNED))
        );
    }

    #[test]
    fn the_signature_covers_the_escaped_text_meta_sends_not_its_decoding() {
        // Meta signs "an escaped unicode version of the payload": äöå is
        // sent as \u00e4\u00f6\u00e5. The same JSON value written with the
        // characters themselves is other bytes, and fails.
        let sent = br#"{"text":{"body":"\u00e4\u00f6\u00e5"}}"#;
        let decoded = "{\"text\":{\"body\":\"\u{e4}\u{f6}\u{e5}\"}}".as_bytes();
        let signature = sign("Jefe", sent);
        let wa = provider(&[]);
        assert_eq!(check(&wa, &signature, sent), Ok(()));
        assert_eq!(
            check(&wa, &signature, decoded),
            Err(AuthError::InvalidSignature(SIGNED))
        );
    }

    fn handshake(wa: &Whatsapp, query: &str) -> Option<Result<String, AuthError>> {
        let headers = HeaderMap::new();
        wa.handshake(&Inbound::new(&headers, b"", None).with_query(Some(query)))
    }

    #[test]
    fn the_url_check_echoes_the_challenge_for_a_configured_token_only() {
        // Meta's sample verification request.
        let sample = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
        let wa = provider(&["other", "meatyhamhock"]);
        assert_eq!(handshake(&wa, sample), Some(Ok("1158201444".to_owned())));
        // Percent-encoded parameters read as the characters they stand for.
        let encoded = "hub.verify_token=meaty%68amhock&hub.mode=subscribe&hub.challenge=a%20b";
        assert_eq!(handshake(&wa, encoded), Some(Ok("a b".to_owned())));
        for wrong in [
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyham",
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=",
            "hub.mode=subscribe&hub.challenge=1158201444",
        ] {
            assert_eq!(
                handshake(&wa, wrong),
                Some(Err(AuthError::InvalidVerifyToken)),
                "{wrong}"
            );
        }
        // No token configured: no check passes.
        assert_eq!(
            handshake(&provider(&[]), sample),
            Some(Err(AuthError::InvalidVerifyToken))
        );
        // The query the local tools build is one this check reads.
        let built = url_check_query("meaty hamhock&x", "42");
        let spaced = provider(&["meaty hamhock&x"]);
        assert_eq!(handshake(&spaced, &built), Some(Ok("42".to_owned())));
        // Not a subscription check at all: not this provider's GET.
        for other in [
            "",
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatyhamhock",
            "hub.mode=subscribe&hub.verify_token=meatyhamhock",
        ] {
            assert_eq!(handshake(&wa, other), None, "{other}");
        }
    }

    #[test]
    fn a_batch_splits_into_one_body_per_event_in_the_body_order() {
        let body = fixture("batch.json");
        let parts = split(&body);
        assert_eq!(parts.len(), 3);
        let decoded: Vec<Decoded> = parts
            .iter()
            .map(|p| decode(p).expect("a part decodes alone"))
            .collect();
        let summary: Vec<(&str, &str, Option<&str>)> = decoded
            .iter()
            .map(|d| {
                (
                    d.event_type.as_str(),
                    d.native_type.as_str(),
                    d.conversation_key.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "message.created",
                    "messages.text",
                    Some("106540352242922:16505551234")
                ),
                (
                    "message.created",
                    "messages.text",
                    Some("106540352242922:16315551181")
                ),
                (
                    "message.updated",
                    "statuses.read",
                    Some("106540352242922:16505551234")
                ),
            ]
        );
        for d in &decoded {
            assert_eq!(d.account.as_deref(), Some(EXAMPLE_ACCOUNT));
        }
        // Each part is the body with its arrays narrowed: Meta's bytes.
        let text = std::str::from_utf8(&parts[1]).expect("utf-8");
        assert!(text.contains("Is the store open on Sunday?"), "{text}");
        assert!(!text.contains("And in green?"), "{text}");
        assert!(text.contains("\"statuses\": []"), "{text}");
        // A message's part keeps its sender's contact, not the others'.
        assert!(text.contains("Pablo Morales") && !text.contains("Sheena Nelson"));
        let json: serde_json::Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(json["entry"][0]["changes"][0]["field"], "messages");
        // The whole body is no one event: it says so.
        let whole = decode(&body).expect_err("three events");
        assert!(whole.to_string().contains("3 events"), "{whole}");
    }

    #[test]
    fn a_one_event_body_is_its_own_part_byte_for_byte_apart_from_siblings() {
        for name in ["text.json", "image.json", "status.json"] {
            let body = fixture(name);
            let parts = split(&body);
            assert_eq!(parts.len(), 1, "{name}");
            // Nothing to narrow: the part is the body (a status change has
            // no contacts to keep).
            assert_eq!(&*parts[0], &body[..], "{name}");
        }
    }

    #[test]
    fn every_change_of_every_entry_is_its_own_part() {
        let body = br#"{"object":"whatsapp_business_account","entry":[
            {"id":"1","changes":[
                {"field":"account_update","value":{"event":"VERIFIED_ACCOUNT"}},
                {"field":"messages","value":{"metadata":{"phone_number_id":"9"},
                  "statuses":[{"id":"w1","status":"sent","timestamp":"1749416512","recipient_id":"5"},
                              {"id":"w1","status":"delivered","timestamp":"1749416513","recipient_id":"5"}]}}]},
            {"id":"2","changes":[{"field":"messages","value":{"messages":[
                {"from":"7","id":"w2","timestamp":"1749416514","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        let decoded: Vec<Decoded> = split(body)
            .iter()
            .map(|p| decode(p).expect("decodes"))
            .collect();
        let seen: Vec<(&str, &str, Option<&str>)> = decoded
            .iter()
            .map(|d| {
                (
                    d.event_type.as_str(),
                    d.dedup_key.as_str(),
                    d.account.as_deref(),
                )
            })
            .collect();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].0, "whatsapp.account_update");
        assert!(seen[0].1.starts_with("sha256:"));
        assert_eq!(
            &seen[1..],
            [
                ("message.updated", "status:w1:sent:1749416512", Some("1")),
                (
                    "message.updated",
                    "status:w1:delivered:1749416513",
                    Some("1")
                ),
                ("message.created", "message:w2", Some("2")),
            ]
        );
        // The message without a business number is keyed by its contact.
        assert_eq!(decoded[3].conversation_key.as_deref(), Some("7"));
    }

    #[test]
    fn a_body_not_of_metas_shape_is_one_part_that_says_why() {
        for body in [
            &b"not json"[..],
            br#"{"object":"whatsapp_business_account"}"#,
            br#"{"object":"whatsapp_business_account","entry":[]}"#,
            br#"{"object":"whatsapp_business_account","entry":{"id":"1"}}"#,
            br#"[1,2]"#,
        ] {
            let parts = split(body);
            assert_eq!(parts.len(), 1);
            assert_eq!(&*parts[0], body);
            let error = decode(body).expect_err("not an event");
            assert!(
                ["malformed_json", "no_envelope"].contains(&error.code()),
                "{error}"
            );
        }
        // An entry without changes, a change without items: kept whole.
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1"},{"id":"2","changes":[{"field":"messages","value":{"errors":[{"code":131000}]}}]}]}"#;
        let parts = split(body);
        assert_eq!(parts.len(), 2);
        assert!(decode(&parts[0]).is_err());
        let errors = decode(&parts[1]).expect("a change of errors passes through");
        assert_eq!(errors.event_type, "whatsapp.messages");
    }

    #[test]
    fn a_message_names_its_sender_recipient_text_and_media() {
        let image = decode(&fixture("image.json")).expect("decodes");
        let message = image.normalized.message.expect("a message");
        assert_eq!(message.kind.as_deref(), Some("image"));
        assert_eq!(message.text.as_deref(), Some("This one, but in blue?"));
        assert!(message
            .media_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://lookaside.fbsbx.com/")));
        assert_eq!(message.direction.as_deref(), Some("incoming"));
        assert_eq!(message.channel.as_deref(), Some("whatsapp"));
        let sender = message.sender.expect("sender");
        assert_eq!(
            (
                sender.id.as_deref(),
                sender.name.as_deref(),
                sender.phone.as_deref()
            ),
            (
                Some("16505551234"),
                Some("Sheena Nelson"),
                Some("16505551234")
            )
        );
        let recipient = message.recipient.expect("recipient");
        assert_eq!(
            (recipient.id.as_deref(), recipient.phone.as_deref()),
            (Some("106540352242922"), Some("15550783881"))
        );
        assert_eq!(
            image.occurred_at.map(|t| t.timestamp()),
            Some(1_749_416_451)
        );

        let status = decode(&fixture("status.json")).expect("decodes");
        assert_eq!(status.event_type, "message.updated");
        let message = status.normalized.message.expect("a message");
        assert_eq!(message.status.as_deref(), Some("delivered"));
        assert_eq!(message.direction.as_deref(), Some("outgoing"));
        assert_eq!(
            message.recipient.and_then(|r| r.id).as_deref(),
            Some("16505551234")
        );
        assert_eq!(
            status.dedup_key,
            "status:wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NDFBRDc0RjcxODY4MUQwNDkA:delivered:1749416512"
        );
    }

    #[test]
    fn an_item_without_its_identity_is_a_missing_field() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"status":"read","timestamp":"1"}]}}]}]}"#;
        assert_eq!(
            decode(body),
            Err(DecodeError::MissingField {
                event_type: "statuses.read".into(),
                field: "statuses[].id",
            })
        );
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"type":"text"}]}}]}]}"#;
        assert_eq!(decode(body).map_err(|e| e.code()), Err("missing_field"));
    }
}
