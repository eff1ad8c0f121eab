//! Bird's Channels events: the actual messages, `<channel>.inbound` and
//! `<channel>.outbound` (`whatsapp.inbound`, `sms.outbound`, …), envelope
//! `{service: "channels", event, payload}` with a channel message as payload.
//!
//! **Type.** From the payload alone: an inbound message is created once, with
//! status `delivered` (Bird: "an incoming message is created with status
//! delivered"), so `<channel>.inbound` is `message.created`. An outbound
//! message goes through Bird's lifecycle (`accepted`, then `sent`,
//! `delivered`, `sending_failed`, `delivery_failed`, …), one event per
//! status: `accepted` — Bird's answer to the send — is `message.created`,
//! any other status `message.updated`. Bird does not document that the
//! `accepted` event is always sent, so a consumer should treat a
//! `message.updated` for a message it has not seen as its creation.
//! An outbound event without a status is taken as its creation.
//!
//! **Conversation.** A channel message has no conversation id. Its
//! conversation is the **contact**: the sender for inbound, the (first)
//! receiver for outbound, so a reply lands in the conversation of the
//! message it answers — also across platforms, because a Bird contact spans
//! them (a WhatsApp message answered by SMS is one thread). The key is
//! `contact:<Bird contact id>`, or `<identifierKey>:<identifierValue>`
//! (`phonenumber:+31612345678`) when the payload names no contact id. The
//! platform is the message's `channel`, the channel id the conversation's.
//!
//! **Identity.** `(event, payload.id, payload.status, payload.updatedAt)`:
//! each status of a message is its own event, and a redelivery of one is a
//! duplicate; else the body's SHA-256.

use crate::json::{lenient, lenient_vec, non_empty, opt_id, opt_text, payload};
use crate::{body_dedup_key, timestamp, Decoded};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use switchboard_types::{Actor, Conversation, Message, Normalized};

/// The direction a Channels event's name says: `inbound` or `outbound`.
/// `None` for any other event (`<channel>.interaction` passes through).
pub(super) fn direction(event: &str) -> Option<(&str, Direction)> {
    let (platform, kind) = event.rsplit_once('.')?;
    let direction = match kind {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        _ => return None,
    };
    (!platform.is_empty() && !platform.contains('.')).then_some((platform, direction))
}

/// Which way a channel message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// From a contact to the business.
    Inbound,
    /// From the business to contacts.
    Outbound,
}

/// A contact or connector as a channel message names it.
/// Documented and not read (serde skips them): `identifiers`, `type`,
/// `platformAddressSelector`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Party {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    identifier_key: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    identifier_value: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    platform_address: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    annotations: Option<Annotations>,
}

#[derive(Debug, Default, Deserialize)]
struct Annotations {
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<String>,
}

impl Party {
    fn to_actor(&self, kind: &str) -> Actor {
        let address =
            non_empty(self.identifier_value.clone()).or(non_empty(self.platform_address.clone()));
        let is_email = self
            .identifier_key
            .as_deref()
            .map(|k| k.contains("email"))
            .unwrap_or_else(|| address.as_deref().is_some_and(|a| a.contains('@')));
        Actor {
            id: self.id.clone(),
            kind: Some(kind.to_owned()),
            name: self
                .annotations
                .as_ref()
                .and_then(|a| non_empty(a.name.clone())),
            email: if is_email { address.clone() } else { None },
            phone: if is_email { None } else { address },
        }
    }

    /// The conversation key of a contact: its Bird id, else its identifier.
    fn key(&self) -> Option<String> {
        if let Some(id) = non_empty(self.id.clone()) {
            return Some(format!("contact:{id}"));
        }
        let value = non_empty(self.identifier_value.clone())?;
        let key = non_empty(self.identifier_key.clone()).unwrap_or_else(|| "identifier".into());
        Some(format!("{key}:{value}"))
    }
}

/// One side of a message: a contact (inbound sender), a connector (inbound
/// receiver, outbound sender) or contacts (outbound receivers).
#[derive(Debug, Default, Deserialize)]
struct Side {
    #[serde(default, deserialize_with = "lenient")]
    contact: Option<Party>,
    #[serde(default, deserialize_with = "lenient_vec")]
    contacts: Vec<Party>,
    #[serde(default, deserialize_with = "lenient")]
    connector: Option<Party>,
}

impl Side {
    /// The contacts on this side: `contact`, then `contacts[]`.
    fn contacts(&self) -> impl Iterator<Item = &Party> {
        self.contact.iter().chain(self.contacts.iter())
    }
}

/// A channel message. Documented and not read (serde skips them): `parts`,
/// `reference`, `replyTo`, `reason`, `meta`, `chargeableUnits`,
/// `lastStatusAt`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelMessage {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    channel_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    sender: Option<Side>,
    #[serde(default, deserialize_with = "lenient")]
    receiver: Option<Side>,
    /// Kept as JSON: its shape depends on its `type` (text, image, file,
    /// location, list, carousel, …), and media URLs are read from any of them.
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "opt_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    direction: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    updated_at: Option<String>,
}

/// What a message body says: its type, its text and its media URLs.
#[derive(Debug, Default, PartialEq)]
struct Content {
    kind: Option<String>,
    text: Option<String>,
    media_urls: Vec<String>,
}

/// Reads a body of any type: `type`; the text of `text.text`, else the
/// `text` of the typed part (an image's caption); every `mediaUrl` in it,
/// in document order. Liberal: Bird documents more body types than any
/// list here would keep up with.
fn content(body: Option<&RawValue>) -> Content {
    let Some(value) = body.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok()) else {
        return Content::default();
    };
    let text_of = |v: &Value| {
        v.get("text")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .and_then(|t| non_empty(Some(t)))
    };
    let kind = value.get("type").and_then(Value::as_str).map(str::to_owned);
    let typed = kind.as_deref().and_then(|k| value.get(k));
    let text = typed.and_then(text_of);
    let mut media_urls = Vec::new();
    collect_media(&value, &mut media_urls);
    Content {
        kind: non_empty(kind),
        text,
        media_urls,
    }
}

fn collect_media(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(url) if key == "mediaUrl" && !url.is_empty() => {
                        out.push(url.clone())
                    }
                    _ => collect_media(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_media(v, out)),
        _ => {}
    }
}

/// Decodes a `<platform>.inbound` / `<platform>.outbound` payload.
pub(super) fn decode(
    body: &[u8],
    raw: Option<&RawValue>,
    native_type: String,
    platform: &str,
    direction: Direction,
) -> Decoded {
    let message: ChannelMessage = payload(raw);
    let (event_type, contact, author) = match direction {
        Direction::Inbound => {
            let sender = message.sender.as_ref();
            let contact = sender.and_then(|s| s.contacts().next());
            (
                "message.created",
                contact,
                contact.map(|c| c.to_actor("contact")),
            )
        }
        Direction::Outbound => {
            let contact = message.receiver.as_ref().and_then(|r| r.contacts().next());
            let connector = message.sender.as_ref().and_then(|s| s.connector.as_ref());
            let created = message
                .status
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("accepted"));
            let event_type = if created {
                "message.created"
            } else {
                "message.updated"
            };
            (
                event_type,
                contact,
                connector.map(|c| c.to_actor("connector")),
            )
        }
    };
    let created = message.created_at.as_deref().and_then(timestamp::parse);
    let updated = message.updated_at.as_deref().and_then(timestamp::parse);
    let dedup_key = match (&message.id, &message.updated_at) {
        (Some(id), Some(at)) => {
            let status = message.status.as_deref().unwrap_or_default();
            format!("{native_type}:{id}:{status}:{at}")
        }
        _ => body_dedup_key(body),
    };
    let key = contact.and_then(Party::key);
    let content = content(message.body.as_deref());
    let normalized = Normalized {
        conversation: key.clone().map(|key| Conversation {
            key,
            channel: message.channel_id.clone(),
            participants: contact.map(|c| c.to_actor("contact")).into_iter().collect(),
            ..Conversation::default()
        }),
        message: Some(Message {
            id: message.id.clone(),
            kind: content.kind,
            text: content.text,
            status: non_empty(message.status.clone()),
            sender: author.clone(),
            created_at: created.map(timestamp::format),
            media_url: content.media_urls.first().cloned(),
            media_urls: content.media_urls,
            direction: non_empty(message.direction.clone()).or_else(|| {
                Some(match direction {
                    Direction::Inbound => "incoming".to_owned(),
                    Direction::Outbound => "outgoing".to_owned(),
                })
            }),
            channel: Some(platform.to_owned()),
            ..Message::default()
        }),
        actor: author,
    };
    Decoded {
        native_type,
        event_type: event_type.to_owned(),
        dedup_key,
        account: None,
        conversation_key: key,
        occurred_at: match event_type {
            "message.created" => created.or(updated),
            _ => updated.or(created),
        },
        normalized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inbound_and_outbound_events_are_channel_messages() {
        assert_eq!(
            direction("whatsapp.inbound"),
            Some(("whatsapp", Direction::Inbound))
        );
        assert_eq!(
            direction("sms.outbound"),
            Some(("sms", Direction::Outbound))
        );
        for other in [
            "sms.interaction",
            "conversation.updated",
            "inbound",
            ".inbound",
            "a.b.inbound",
        ] {
            assert_eq!(direction(other), None, "{other}");
        }
    }

    #[test]
    fn media_urls_are_read_from_any_body_type_in_order() {
        let raw = |v: Value| RawValue::from_string(v.to_string()).expect("json");
        let body = raw(serde_json::json!({
            "type": "file",
            "file": {"files": [
                {"mediaUrl": "https://m/1", "contentType": "application/pdf"},
                {"mediaUrl": ""},
                {"mediaUrl": "https://m/2"}
            ]}
        }));
        assert_eq!(
            content(Some(&body)),
            Content {
                kind: Some("file".into()),
                text: None,
                media_urls: vec!["https://m/1".into(), "https://m/2".into()],
            }
        );
        let text = raw(serde_json::json!({"type": "text", "text": {"text": "hi"}}));
        assert_eq!(content(Some(&text)).text.as_deref(), Some("hi"));
        assert_eq!(content(None), Content::default());
    }

    #[test]
    fn a_contact_without_an_id_is_keyed_by_its_identifier() {
        let party = Party {
            identifier_key: Some("phonenumber".into()),
            identifier_value: Some("+31612345678".into()),
            ..Party::default()
        };
        assert_eq!(party.key().as_deref(), Some("phonenumber:+31612345678"));
        assert_eq!(Party::default().key(), None);
    }
}
