//! Stored events → CloudEvents → queue messages.
//!
//! Input is the table's change stream. Only newly inserted accepted events
//! are published; everything else is skipped. Records are taken in stream
//! order; each queue's messages are sent in that order, in batches of at
//! most ten messages and [`MAX_MESSAGE_BYTES`] that hold at most one message
//! of a group, and sending stops at the first failure. The report
//! names the first record that could not be published and every record after
//! it — what Lambda's checkpoint retries anyway (it resumes from the lowest
//! failed sequence number) — so no message of a conversation can reach its
//! queue before an earlier one that failed. A record that cannot be turned
//! into a CloudEvent is a failure too — never silently dropped.
//!
//! The deliverability contract, kept where messages are built: every
//! message is one SQS takes. Its body holds only characters SQS allows
//! (the others, which JSON can only hold inside strings, are written as
//! `\uXXXX` escapes, so `data.raw` is still the same JSON value as the body
//! received); its attribute values are made safe by [`attribute_value`]; and
//! a message that would exceed [`MAX_MESSAGE_BYTES`] with its normalised
//! copies is sent without them, marked by `data.omitted`.

use crate::codec::raw_body;
use crate::ports::Publisher;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use switchboard_providers::decode_body;
use switchboard_providers::registry::descriptor;
use switchboard_types::{scoped_key, CloudEvent, EventData, Family, Status, StoredEvent};

/// SQS's batch limit.
const BATCH: usize = 10;
/// SQS's limit for `MessageGroupId`.
const MAX_GROUP_ID: usize = 128;
/// The largest message SQS takes, body and attributes counted: the
/// `MaximumMessageSize` template.yaml sets on the family queues (a test
/// holds the two equal). It is also the most a `SendMessageBatch` may carry
/// in all.
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;
/// The longest message attribute value we send (see [`attribute_value`]).
pub const MAX_ATTRIBUTE_BYTES: usize = 256;

/// One record of the change stream.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// The record's id for retry reporting (the stream sequence number).
    pub id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    /// The new image, when it parsed; `Err` carries why it did not.
    pub item: Result<Option<StoredEvent>, String>,
}

impl StreamRecord {
    /// A record whose new image is parsed only for inserts — the only
    /// records ever published — so updates and removals cost nothing.
    pub fn parse<E: std::fmt::Display>(
        id: String,
        event_name: String,
        image: impl FnOnce() -> Option<Result<StoredEvent, E>>,
    ) -> Self {
        let item = if event_name == "INSERT" {
            match image() {
                Some(parsed) => parsed.map(Some).map_err(|e| e.to_string()),
                None => Err("the record has no new image".to_owned()),
            }
        } else {
            Ok(None)
        };
        Self {
            id,
            event_name,
            item,
        }
    }
}

/// A message ready for SQS.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// `MessageDeduplicationId`: the event id.
    pub dedup_id: String,
    /// `MessageGroupId`: provider + conversation key.
    pub group_id: String,
    /// Message attribute `type`.
    pub event_type: String,
    /// Message attribute `provider`.
    pub provider: String,
    /// Message attribute `tenant`.
    pub tenant: String,
    /// The CloudEvent JSON.
    pub body: String,
}

impl OutgoingMessage {
    /// The message attributes, as sent: `(name, value)`, each a `String`.
    pub fn attributes(&self) -> [(&'static str, &str); 3] {
        [
            ("type", &self.event_type),
            ("provider", &self.provider),
            ("tenant", &self.tenant),
        ]
    }

    /// The size SQS counts against its limit: the body, and each attribute's
    /// name, data type (`String`) and value.
    pub fn size(&self) -> usize {
        let attributes: usize = self
            .attributes()
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum();
        self.body.len() + attributes
    }
}

/// Whether SQS takes `c` in a message body or attribute value: `#x9 #xA
/// #xD #x20–#xD7FF #xE000–#xFFFD #x10000–#x10FFFF`.
pub fn sqs_allows(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10_FFFF)
}

/// JSON text with every character SQS refuses written as a `\uXXXX`
/// escape. Outside strings, JSON text is ASCII structure and whitespace,
/// which SQS takes, so such a character can only be inside a string, where
/// the escape stands for the same character: the text is the same JSON
/// value. (serde_json already escapes control characters; what remains is
/// U+FFFE and U+FFFF.)
pub fn sqs_safe_json(text: String) -> String {
    // A byte scan first: a refused character is a control byte or starts
    // with 0xEF (U+F000–U+FFFF); text with neither, nearly every body, is
    // returned as it is.
    let suspect = |b: &u8| (*b < 0x20 && !matches!(*b, b'\t' | b'\n' | b'\r')) || *b == 0xEF;
    if !text.as_bytes().iter().any(suspect) || text.chars().all(sqs_allows) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if sqs_allows(c) {
            out.push(c);
        } else {
            // Only BMP characters are refused (all of U+10000.. is allowed).
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
    out
}

/// A message attribute value SQS takes, by this rule: each character SQS
/// refuses becomes U+FFFD, the value is cut to [`MAX_ATTRIBUTE_BYTES`] at a
/// character boundary, and an empty value becomes `-` (SQS refuses empty
/// values). Attributes are for filtering; the CloudEvent in the body keeps
/// the value exactly.
pub fn attribute_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_ATTRIBUTE_BYTES));
    for c in value.chars() {
        let c = if sqs_allows(c) { c } else { '\u{fffd}' };
        if out.len() + c.len_utf8() > MAX_ATTRIBUTE_BYTES {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// What a fanout run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FanoutReport {
    /// Messages accepted by the queues.
    pub published: usize,
    /// Records that were not for publishing (updates, removals, quarantined).
    pub skipped: usize,
    /// Ids of the records that failed and must be retried: the first that
    /// could not be published and every later one.
    pub failed: Vec<String>,
    /// Whether the first failed record can never be published as it is
    /// stored (its image or body is unreadable), as opposed to a queue's
    /// refusal that a retry may get past.
    pub poisoned: bool,
}

impl FanoutReport {
    /// Whether the invocation should fail as a whole rather than report
    /// its failed records: when its first record is one that can never be
    /// published and others follow it. Lambda then bisects the batch
    /// (`BisectBatchOnFunctionError`) until that record is alone, so that
    /// only it exhausts its retries and goes to the on-failure queue, and
    /// the records behind it are published.
    pub fn isolate_poison(&self, batch_len: usize) -> bool {
        self.poisoned && batch_len > 1 && self.failed.len() == batch_len
    }
}

/// Whether a stream record is one to publish.
fn publishable(record: &StreamRecord) -> Option<&StoredEvent> {
    match &record.item {
        Ok(Some(item)) if record.event_name == "INSERT" && item.status == Status::Accepted => {
            Some(item)
        }
        _ => None,
    }
}

/// Publishes the accepted events among `records`, in order (see the
/// module's documentation).
pub async fn fanout(publisher: &dyn Publisher, records: &[StreamRecord]) -> FanoutReport {
    let mut report = FanoutReport::default();
    // The first record that cannot become a message ends what is sent.
    let mut stop = records.len();
    let mut poisoned = false;
    let mut by_family = ByFamily::new();
    for (position, record) in records.iter().enumerate() {
        if let Err(why) = &record.item {
            tracing::error!(record = %record.id, error = %why, "stream record has an unreadable image");
            (stop, poisoned) = (position, true);
            break;
        }
        let Some(item) = publishable(record) else {
            report.skipped += 1;
            continue;
        };
        match message_for(item) {
            Ok(message) => by_family
                .entry(item.family)
                .or_default()
                .push((position, message)),
            Err(why) => {
                tracing::error!(event_id = %item.event_id, error = %why, "cannot build the CloudEvent");
                (stop, poisoned) = (position, true);
                break;
            }
        }
    }
    let sent = publish_in_order(publisher, by_family).await;
    report.published = sent.published.len();
    if let Some(first) = sent.failed.iter().min() {
        if *first < stop {
            (stop, poisoned) = (*first, false);
        }
    }
    report.poisoned = poisoned;
    report.failed = records[stop..].iter().map(|r| r.id.clone()).collect();
    // The fanout function's metrics line says the same (one line a batch).
    tracing::debug!(
        published = report.published,
        skipped = report.skipped,
        failed = report.failed.len(),
        "fanout done"
    );
    report
}

/// Messages with the caller's position of each (a stream record's, an
/// event's), per family, in the caller's order.
pub(crate) type ByFamily = BTreeMap<Family, Vec<(usize, OutgoingMessage)>>;

/// Splits messages, in order, into batches SQS takes — at most ten, and at
/// most [`MAX_MESSAGE_BYTES`] in all (every message is at most that alone)
/// — holding at most one message of each group, so that a failed entry
/// never has a later message of its group accepted beside it.
pub fn batches<T>(entries: &[(T, OutgoingMessage)]) -> Vec<&[(T, OutgoingMessage)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    let mut groups = std::collections::HashSet::new();
    for (i, (_, message)) in entries.iter().enumerate() {
        let size = message.size();
        let repeats = groups.contains(message.group_id.as_str());
        if i > start && (i - start == BATCH || bytes + size > MAX_MESSAGE_BYTES || repeats) {
            out.push(&entries[start..i]);
            (start, bytes) = (i, 0);
            groups.clear();
        }
        bytes += size;
        groups.insert(message.group_id.as_str());
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// What [`publish_in_order`] did, by the caller's positions.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Accepted by their queue.
    pub(crate) published: Vec<usize>,
    /// Refused, or not sent because a message before them was refused.
    pub(crate) failed: Vec<usize>,
}

/// Sends every family's messages in [`batches`], the batches in the order
/// of their first message, and stops at the first failure: the refused
/// message and every later one not yet sent are failed, and nothing after
/// it is sent — so no message overtakes it in its queue, and a failure
/// costs at most the batches already under way. (A batch of another queue
/// that starts before the failure is still sent: its first messages come
/// before it.)
pub(crate) async fn publish_in_order(publisher: &dyn Publisher, by_family: ByFamily) -> Sent {
    let mut sent = Sent::default();
    let mut chunks: Vec<(Family, &[(usize, OutgoingMessage)])> = by_family
        .iter()
        .flat_map(|(family, entries)| batches(entries).into_iter().map(|c| (*family, c)))
        .collect();
    chunks.sort_by_key(|(_, chunk)| chunk[0].0);
    let mut stop = usize::MAX;
    for (family, chunk) in chunks {
        if chunk[0].0 > stop {
            sent.failed
                .extend(chunk.iter().map(|(position, _)| *position));
            continue;
        }
        let messages: Vec<OutgoingMessage> = chunk.iter().map(|(_, m)| m.clone()).collect();
        let refused = match publisher.send_batch(family, &messages).await {
            Ok(refused) => refused,
            Err(error) => {
                tracing::error!(family = family.as_str(), error = %error, "publishing a batch failed");
                messages.iter().map(|m| m.dedup_id.clone()).collect()
            }
        };
        for (position, message) in chunk {
            if refused.contains(&message.dedup_id) {
                stop = stop.min(*position);
                sent.failed.push(*position);
            } else {
                sent.published.push(*position);
            }
        }
    }
    sent
}

/// The SQS message for a stored, accepted event, within the
/// deliverability contract (see the module's documentation). When the
/// CloudEvent with its normalised copies would exceed
/// [`MAX_MESSAGE_BYTES`], it is sent without them and `data.omitted` names
/// what was left out; `data.raw` always stays.
pub fn message_for(item: &StoredEvent) -> Result<OutgoingMessage, String> {
    let mut event = cloudevent(item)?;
    let mut message = OutgoingMessage {
        dedup_id: item.event_id.clone(),
        group_id: group_id(item),
        event_type: attribute_value(&item.event_type),
        provider: attribute_value(item.provider.as_str()),
        tenant: attribute_value(&item.tenant),
        body: body_of(&event)?,
    };
    if message.size() > MAX_MESSAGE_BYTES {
        event.data.omit_normalized();
        message.body = body_of(&event)?;
        tracing::warn!(
            event_id = %item.event_id,
            "the CloudEvent is sent without its normalised copies: it would exceed SQS's limit"
        );
    }
    if message.size() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the message is {} bytes even without its normalised copies, over SQS's {MAX_MESSAGE_BYTES}",
            message.size()
        ));
    }
    Ok(message)
}

fn body_of(event: &CloudEvent) -> Result<String, String> {
    serde_json::to_string(event)
        .map(sqs_safe_json)
        .map_err(|e| e.to_string())
}

/// Rebuilds the CloudEvent from the stored item: attributes from the item,
/// `data` from decoding the stored raw body, `data.raw` the body verbatim.
pub fn cloudevent(item: &StoredEvent) -> Result<CloudEvent, String> {
    let body = raw_body(item).map_err(|e| e.to_string())?;
    let mut decoded = decode_body(item.provider, &body)
        .map_err(|e| format!("stored body no longer decodes: {e}"))?;
    if let Some(conversation) = decoded.normalized.conversation.as_mut() {
        // The subject is the key within the tenant; so is its copy here.
        conversation.key = scoped_key(&item.tenant, &conversation.key);
    }
    // A body that is not JSON (a Twilio form) is published as its JSON
    // rendering; every other body as it is.
    let text = match (descriptor(item.provider).data_raw)(&body) {
        Some(json) => json,
        None => String::from_utf8(body).map_err(|_| "stored body is not UTF-8".to_owned())?,
    };
    let raw = RawValue::from_string(text).map_err(|e| format!("stored body is not JSON: {e}"))?;
    Ok(CloudEvent {
        specversion: "1.0".into(),
        id: item.event_id.clone(),
        source: item.provider.cloudevent_source(),
        event_type: item.event_type.clone(),
        subject: Some(item.conversation_key.clone()).filter(|k| !k.is_empty()),
        time: item.occurred_at.clone(),
        datacontenttype: "application/json".into(),
        provider: item.provider.as_str().into(),
        nativetype: item.native_type.clone(),
        tenant: item.tenant.clone(),
        receivedat: item.received_at.clone(),
        deliveryid: item.delivery_id.clone(),
        test: item.test.then_some(true),
        data: EventData {
            normalized: decoded.normalized,
            omitted: Vec::new(),
            raw,
        },
    })
}

/// `MessageGroupId`: one group per conversation, so a conversation's events
/// stay in order. Events without a conversation get a group of their own
/// (no ordering to keep, no head-of-line blocking). Keys that SQS would
/// refuse (too long, other characters) are replaced by their digest.
pub fn group_id(item: &StoredEvent) -> String {
    let provider = item.provider.as_str();
    let candidate = if item.conversation_key.is_empty() {
        format!("{provider}:event:{}", item.event_id)
    } else {
        format!("{provider}:{}", item.conversation_key)
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || c.is_ascii_punctuation();
    if candidate.len() <= MAX_GROUP_ID && candidate.chars().all(allowed) {
        candidate
    } else {
        let digest = hex::encode(Sha256::digest(item.conversation_key.as_bytes()));
        format!("{provider}:sha256:{digest}")
    }
}

#[cfg(test)]
mod tests {
    use super::{attribute_value, sqs_safe_json};

    #[test]
    fn refused_characters_are_escaped_and_the_json_value_kept() {
        for text in [
            r#"{"a":"plain"}"#,
            "{\"a\":\"\u{ff01} fullwidth, allowed\"}",
            "{\"a\":\"\u{ffff}\u{fffe} refused\"}",
        ] {
            let safe = sqs_safe_json(text.to_owned());
            assert!(!safe.contains(['\u{ffff}', '\u{fffe}']), "{safe}");
            let (before, after): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(text).expect("json"),
                serde_json::from_str(&safe).expect("still json"),
            );
            assert_eq!(before, after);
        }
        assert_eq!(
            sqs_safe_json("{\"a\":\"\u{ffff}\"}".into()),
            r#"{"a":"\uffff"}"#
        );
    }

    #[test]
    fn attribute_values_follow_the_documented_rule() {
        assert_eq!(attribute_value("a\u{1}b\u{ffff}"), "a\u{fffd}b\u{fffd}");
        assert_eq!(attribute_value(""), "-");
        let long = "é".repeat(200); // 400 bytes
        let cut = attribute_value(&long);
        assert!(cut.len() <= 256 && long.starts_with(&cut), "{}", cut.len());
    }
}
