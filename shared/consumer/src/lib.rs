//! The consumer's side of switchboard: the event every queue message
//! carries, typed, and the SQS batch handling a FIFO consumer needs.
//!
//! Usable on its own: no AWS SDK and no switchboard internals, only serde,
//! schemars and `aws_lambda_events`' SQS types. [`CloudEvent`] is the very
//! type switchboard's fanout serialises (its JSON Schema,
//! `docs/cloudevent.schema.json`, is generated from it), so a consumer
//! built on this crate reads exactly what is sent.
//!
//! ```
//! use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
//! use switchboard_consumer::{process_fifo_batch, Event};
//!
//! # async fn example(batch: SqsEvent) {
//! let report = process_fifo_batch(&batch.records, |event| async move {
//!     match event.event() {
//!         Event::MessageCreated(m) => println!("new message {:?}", m.message.and_then(|m| m.text.as_deref())),
//!         other => println!("{} {}", event.id, other.event_type()),
//!     }
//!     Ok::<(), std::convert::Infallible>(())
//! })
//! .await;
//! // Return `report.response` from the Lambda handler.
//! # let _ = report;
//! # }
//! ```
#![forbid(unsafe_code)]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt::Display;
use std::future::Future;

/// The tenant of an event whose credential carries no label and whose body
/// names no account: a deployment that serves one account.
pub const DEFAULT_TENANT: &str = "default";

/// [`DEFAULT_TENANT`] as an owned value (a serde default).
pub fn default_tenant() -> String {
    DEFAULT_TENANT.to_owned()
}

/// A person or system taking part in a conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    /// Provider's id for the actor, when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `contact`, `user`, `bot`, `anonymous`, or the provider's own word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address, when the provider shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number or other platform address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// The conversation an event belongs to, as far as the provider told us.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Conversation {
    /// Provider-scoped conversation key within the event's tenant
    /// ([`scoped_key`]); equals the CloudEvent `subject`.
    pub key: String,
    /// Provider's own id (numeric ids are rendered as strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Title or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Provider status word (`active`, `Open`, …), passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Channel or messaging platform (`Facebook`, a Bird channel id, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Link to the conversation in the provider's UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When the conversation was created, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the conversation was last updated, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Participants the provider listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Actor>,
}

/// A message inside a conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Provider's message id (numeric ids are rendered as strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Content kind (`text`, `video`, `screencamera`, `Text`, …), passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Plain-text content (HTML converted to text where the provider sends HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The HTML content as sent, when the provider sends HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Provider status word (`delivered`, `Sending`, …), passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Who wrote the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Actor>,
    /// Who it was sent to, when the provider says (WhatsApp: the business
    /// number for an incoming message, the contact for an outgoing one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Actor>,
    /// When the message was created, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Link to the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Link to the message's media, when it has any (the first of
    /// `media_urls` where there are several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    /// Links to every media item of the message (images, files), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_urls: Vec<String>,
    /// `incoming` (from a contact to the business) or `outgoing` (sent by
    /// the business), when the provider says (Bird Channels, WhatsApp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The messaging platform it went over (`whatsapp`, `sms`, `email`, …),
    /// when the provider says (Bird Channels: from the event name; WhatsApp
    /// Cloud API: always `whatsapp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Recorded duration of audio/video media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Whether the message was deleted (Partoo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    /// Whether an automation sent it (Partoo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<bool>,
}

/// The provider-neutral content of an event, without the raw payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Normalized {
    /// The conversation, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    /// The message, for `message.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// Who caused the event (author, sender, the person who played a message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
}

/// `data` of the CloudEvent: the normalised fields plus the raw payload.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventData {
    /// Normalised conversation/message/actor.
    #[serde(flatten)]
    pub normalized: Normalized,
    /// What was left out so the message fits SQS's size limit: the names of
    /// the normalised fields (`conversation`, `message`, `actor`) that
    /// `data.raw` still holds. Absent when nothing was left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<String>,
    /// The provider's JSON body as received: the same JSON value (characters
    /// SQS refuses are written as `\uXXXX` escapes in the message). A form
    /// body (Twilio's) is its JSON object of arrays (`{"Body": ["Hi"]}`); a
    /// body of several events (WhatsApp's), the event's own part of it.
    #[schemars(with = "serde_json::Value")]
    pub raw: Box<RawValue>,
}

impl EventData {
    /// Leaves the normalised copies out, naming them in `omitted`.
    pub fn omit_normalized(&mut self) {
        let normalized = std::mem::take(&mut self.normalized);
        for (name, present) in [
            ("conversation", normalized.conversation.is_some()),
            ("message", normalized.message.is_some()),
            ("actor", normalized.actor.is_some()),
        ] {
            if present {
                self.omitted.push(name.to_owned());
            }
        }
    }
}

/// A CloudEvents 1.0 event in structured JSON mode: the body of every SQS
/// message switchboard publishes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "switchboard CloudEvent")]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// Stable id derived from provider + dedup key: a redelivery has the same id.
    pub id: String,
    /// `urn:switchboard:<provider>`.
    pub source: String,
    /// Canonical type (`message.created`, …) or `<provider>.<native type>`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The provider-scoped conversation key within the event's tenant:
    /// the provider's key for tenant `default` (`default/<key>` when the
    /// key has a `/`), else `<tenant>/<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When the event occurred, RFC 3339 in UTC.
    pub time: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Extension: the provider name (`zipmessage`, `partoo`, `bird`,
    /// `messagebird`, `whatsapp`, `twilio`).
    pub provider: String,
    /// Extension: the provider's own event type, as sent.
    pub nativetype: String,
    /// Extension: whose event it is. The label of the credential that
    /// authenticated it (a ZipMessage token, a Bird signing key), or the
    /// account its body names (Partoo's `org_id`, WhatsApp's business
    /// account); `default` when neither says. Also the SQS message attribute `tenant`.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Extension: when switchboard received the event, RFC 3339 in UTC.
    pub receivedat: String,
    /// Extension: the sender's id of the delivery that was stored (Bird's
    /// `messagebird-request-id`), when it sent one. Metadata only: a
    /// redelivery under another id is the same event (same `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveryid: Option<String>,
    /// Extension: `true` on a provider's test delivery (a Partoo tryout,
    /// which carries real-looking data); absent on genuine events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<bool>,
    /// Normalised fields plus `raw`.
    pub data: EventData,
}

/// The JSON Schema of [`CloudEvent`], as committed in `docs/cloudevent.schema.json`.
pub fn cloudevent_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(CloudEvent)).unwrap_or_default()
}

/// The same schema in JSON Schema draft-07, which AsyncAPI 3.0 reads
/// (`docs/cloudevent.draft-07.schema.json`, the payload of
/// `docs/asyncapi.yaml`).
pub fn cloudevent_schema_draft07() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    serde_json::to_value(generator.into_root_schema_for::<CloudEvent>()).unwrap_or_default()
}

/// What an event is, with the typed data its type carries. The normalised
/// parts are `None` when the provider did not send them, or when they were
/// left out to fit SQS's size limit (`data.omitted` names them, and
/// `data.raw` still holds them).
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// `conversation.created`.
    ConversationCreated(ConversationEvent<'a>),
    /// `conversation.updated`.
    ConversationUpdated(ConversationEvent<'a>),
    /// `conversation.deleted`.
    ConversationDeleted(ConversationEvent<'a>),
    /// `message.created`.
    MessageCreated(MessageEvent<'a>),
    /// `message.updated`.
    MessageUpdated(MessageEvent<'a>),
    /// `message.played`.
    MessagePlayed(MessageEvent<'a>),
    /// Any other type, `<provider>.<native type>`: the provider's payload
    /// as it was sent.
    Other {
        /// The CloudEvent `type`.
        event_type: &'a str,
        /// The provider's JSON body.
        raw: &'a RawValue,
    },
}

/// The data of a `conversation.*` event.
#[derive(Debug, Clone, Copy)]
pub struct ConversationEvent<'a> {
    /// The conversation.
    pub conversation: Option<&'a Conversation>,
    /// Who caused the event.
    pub actor: Option<&'a Actor>,
    /// The provider's JSON body.
    pub raw: &'a RawValue,
}

/// The data of a `message.*` event.
#[derive(Debug, Clone, Copy)]
pub struct MessageEvent<'a> {
    /// The message.
    pub message: Option<&'a Message>,
    /// The conversation it belongs to.
    pub conversation: Option<&'a Conversation>,
    /// Who caused the event (its author, or who played it).
    pub actor: Option<&'a Actor>,
    /// The provider's JSON body.
    pub raw: &'a RawValue,
}

impl Event<'_> {
    /// The CloudEvent `type` it was read from.
    pub fn event_type(&self) -> &str {
        match self {
            Event::ConversationCreated(_) => "conversation.created",
            Event::ConversationUpdated(_) => "conversation.updated",
            Event::ConversationDeleted(_) => "conversation.deleted",
            Event::MessageCreated(_) => "message.created",
            Event::MessageUpdated(_) => "message.updated",
            Event::MessagePlayed(_) => "message.played",
            Event::Other { event_type, .. } => event_type,
        }
    }
}

impl CloudEvent {
    /// Its type with the data that type carries.
    pub fn event(&self) -> Event<'_> {
        let n = &self.data.normalized;
        let conversation = || ConversationEvent {
            conversation: n.conversation.as_ref(),
            actor: n.actor.as_ref(),
            raw: &self.data.raw,
        };
        let message = || MessageEvent {
            message: n.message.as_ref(),
            conversation: n.conversation.as_ref(),
            actor: n.actor.as_ref(),
            raw: &self.data.raw,
        };
        match self.event_type.as_str() {
            "conversation.created" => Event::ConversationCreated(conversation()),
            "conversation.updated" => Event::ConversationUpdated(conversation()),
            "conversation.deleted" => Event::ConversationDeleted(conversation()),
            "message.created" => Event::MessageCreated(message()),
            "message.updated" => Event::MessageUpdated(message()),
            "message.played" => Event::MessagePlayed(message()),
            other => Event::Other {
                event_type: other,
                raw: &self.data.raw,
            },
        }
    }

    /// Reads a queue message's body.
    pub fn from_json(body: &str) -> Result<Self, ParseError> {
        let event: Self = serde_json::from_str(body).map_err(ParseError::NotCloudEvent)?;
        if event.specversion != "1.0" {
            return Err(ParseError::UnsupportedVersion(event.specversion));
        }
        Ok(event)
    }

    /// Reads the CloudEvent of a message Lambda's SQS event source delivered.
    pub fn from_sqs(message: &SqsMessage) -> Result<Self, ParseError> {
        Self::from_json(message.body.as_deref().ok_or(ParseError::NoBody)?)
    }
}

/// Why a queue message is not a switchboard CloudEvent.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The message has no body.
    #[error("the message has no body")]
    NoBody,
    /// The body is not JSON, or not a CloudEvent switchboard sends.
    #[error("the body is not a switchboard CloudEvent: {0}")]
    NotCloudEvent(#[source] serde_json::Error),
    /// A CloudEvents version other than 1.0.
    #[error("the body is CloudEvents {0:?}; this crate reads 1.0")]
    UnsupportedVersion(String),
}

/// The first message of a batch that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Its SQS message id.
    pub message_id: String,
    /// Why: a [`ParseError`] or the handler's error, as text.
    pub error: String,
}

/// What [`process_fifo_batch`] did.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// Messages handled, in order, before any failure.
    pub processed: usize,
    /// The first failure, if any.
    pub failure: Option<BatchFailure>,
    /// Lambda's partial batch response: the failed message and every later
    /// one. Return it from the handler (`FunctionResponseTypes:
    /// [ReportBatchItemFailures]`).
    pub response: SqsBatchResponse,
}

/// Handles a FIFO queue's batch in order, as Lambda's rule for FIFO queues
/// asks: at the first message that is not a CloudEvent or that `handle`
/// fails, stop, and report that message and every later one of the batch,
/// so that none overtakes it in its message group. Lambda returns those
/// to the queue; after the queue's `maxReceiveCount` receives the message
/// goes to its dead-letter queue, and its group moves on.
///
/// `handle` must be idempotent on the event's `id`: a message is delivered
/// at least once (exactly once only within SQS's 5-minute deduplication
/// window).
pub async fn process_fifo_batch<F, Fut, E>(records: &[SqsMessage], mut handle: F) -> BatchReport
where
    F: FnMut(CloudEvent) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut report = BatchReport::default();
    for (i, message) in records.iter().enumerate() {
        let outcome = match CloudEvent::from_sqs(message) {
            Ok(event) => handle(event).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = outcome {
            report.failure = Some(BatchFailure {
                message_id: message.message_id.clone().unwrap_or_default(),
                error,
            });
            report.response.set_failures(
                records[i..]
                    .iter()
                    .map(|m| m.message_id.clone().unwrap_or_default()),
            );
            return report;
        }
        report.processed += 1;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_owned());
        m.body = Some(body.to_owned());
        m
    }

    const EVENT: &str = r#"{"specversion":"1.0","id":"e1","source":"urn:switchboard:zipmessage",
        "type":"message.created","subject":"c1","time":"2022-04-01T14:24:14.196Z",
        "datacontenttype":"application/json","provider":"zipmessage","nativetype":"message_created",
        "tenant":"default","receivedat":"2026-12-02T00:00:00Z",
        "data":{"message":{"id":"330","text":"asdf"},"conversation":{"key":"c1"},"raw":{"type":"message_created"}}}"#;

    #[test]
    fn each_canonical_type_is_typed_and_the_rest_is_raw() {
        let event = CloudEvent::from_json(EVENT).expect("a CloudEvent");
        let Event::MessageCreated(m) = event.event() else {
            panic!("message.created");
        };
        assert_eq!(m.message.and_then(|m| m.text.as_deref()), Some("asdf"));
        assert_eq!(m.conversation.map(|c| c.key.as_str()), Some("c1"));
        for t in [
            "conversation.created",
            "conversation.updated",
            "conversation.deleted",
            "message.created",
            "message.updated",
            "message.played",
            "bird.channel.updated",
        ] {
            let other = EVENT.replace("\"message.created\"", &format!("{t:?}"));
            let event = CloudEvent::from_json(&other).expect("a CloudEvent");
            assert_eq!(event.event().event_type(), t);
            let is_other = matches!(event.event(), Event::Other { .. });
            assert_eq!(is_other, t.starts_with("bird."), "{t}");
        }
    }

    #[test]
    fn what_is_not_a_cloudevent_is_a_clear_error() {
        assert!(matches!(
            CloudEvent::from_sqs(&SqsMessage::default()),
            Err(ParseError::NoBody)
        ));
        let not_json = CloudEvent::from_json("{nope").expect_err("not JSON");
        assert!(not_json
            .to_string()
            .starts_with("the body is not a switchboard CloudEvent"));
        let v2 = EVENT.replace("\"1.0\"", "\"2.0\"");
        assert!(matches!(
            CloudEvent::from_json(&v2),
            Err(ParseError::UnsupportedVersion(v)) if v == "2.0"
        ));
    }

    fn ids(report: &BatchReport) -> Vec<&str> {
        report
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn a_fifo_batch_stops_at_its_first_failure_and_reports_the_rest() {
        let batch = [
            message("m1", EVENT),
            message("m2", &EVENT.replace("\"e1\"", "\"fails\"")),
            message("m3", EVENT),
            message("m4", "not json"),
        ];
        let mut seen = Vec::new();
        let report = process_fifo_batch(&batch, |event| {
            seen.push(event.id.clone());
            async move {
                if event.id == "fails" {
                    Err("the database is down")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(
            seen,
            ["e1", "fails"],
            "nothing after the failure is handled"
        );
        assert_eq!(report.processed, 1);
        assert_eq!(ids(&report), ["m2", "m3", "m4"]);
        let failure = report.failure.expect("a failure");
        assert_eq!(
            (failure.message_id.as_str(), failure.error.as_str()),
            ("m2", "the database is down")
        );

        // A body that is not a CloudEvent fails like a handler error.
        let report = process_fifo_batch(&batch[2..], |_| async { Ok::<(), String>(()) }).await;
        assert_eq!(ids(&report), ["m4"]);
        assert!(report
            .failure
            .expect("a failure")
            .error
            .contains("not a switchboard CloudEvent"));

        // All handled: nothing reported.
        let report = process_fifo_batch(&batch[..1], |_| async { Ok::<(), String>(()) }).await;
        assert!(report.response.batch_item_failures.is_empty());
        assert_eq!(report.processed, 1);
    }
}
