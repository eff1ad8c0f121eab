//! Stored events → CloudEvents → queue messages.
//!
//! Input is the table's change stream. Only newly inserted accepted events
//! are published; everything else is skipped. Messages are grouped by queue
//! and sent in batches of ten. The report names every record that failed, so
//! the caller (Lambda's partial batch response, or the local poller) retries
//! exactly those. A record that cannot be turned into a CloudEvent is a
//! failure too — never silently dropped.

use crate::item::raw_body;
use crate::ports::Publisher;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use switchboard_providers::decode_body;
use switchboard_types::{CloudEvent, EventData, Family, Status, StoredEvent};

/// SQS's batch limit.
const BATCH: usize = 10;
/// SQS's limit for `MessageGroupId`.
const MAX_GROUP_ID: usize = 128;

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
    /// The CloudEvent JSON.
    pub body: String,
}

/// What a fanout run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FanoutReport {
    /// Messages accepted by the queues.
    pub published: usize,
    /// Records that were not for publishing (updates, removals, quarantined).
    pub skipped: usize,
    /// Ids of the records that failed and must be retried.
    pub failed: Vec<String>,
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

/// Publishes the accepted events among `records`.
pub async fn fanout(publisher: &dyn Publisher, records: &[StreamRecord]) -> FanoutReport {
    let mut report = FanoutReport::default();
    // family → (record id, message), in stream order
    let mut by_family = ByFamily::new();
    for record in records {
        if let Err(why) = &record.item {
            tracing::error!(record = %record.id, error = %why, "stream record has an unreadable image");
            report.failed.push(record.id.clone());
            continue;
        }
        let Some(item) = publishable(record) else {
            report.skipped += 1;
            continue;
        };
        match message_for(item) {
            Ok(message) => by_family
                .entry(item.family)
                .or_default()
                .push((record.id.clone(), message)),
            Err(why) => {
                tracing::error!(event_id = %item.event_id, error = %why, "cannot build the CloudEvent");
                report.failed.push(record.id.clone());
            }
        }
    }
    let (published, failed) = publish_batches(publisher, by_family).await;
    report.published += published;
    report.failed.extend(failed);
    tracing::info!(
        published = report.published,
        skipped = report.skipped,
        failed = report.failed.len(),
        "fanout done"
    );
    report
}

/// Messages keyed by the caller's id (a stream record, an event), per family.
pub(crate) type ByFamily = BTreeMap<Family, Vec<(String, OutgoingMessage)>>;

/// Sends each family's messages in batches of ten, in order. Returns how
/// many the queues accepted and the caller's ids of those they did not.
pub(crate) async fn publish_batches(
    publisher: &dyn Publisher,
    by_family: ByFamily,
) -> (usize, Vec<String>) {
    let (mut published, mut failed) = (0, Vec::new());
    for (family, entries) in by_family {
        for chunk in entries.chunks(BATCH) {
            let messages: Vec<OutgoingMessage> = chunk.iter().map(|(_, m)| m.clone()).collect();
            match publisher.send_batch(family, &messages).await {
                Ok(failed_ids) => {
                    for (id, message) in chunk {
                        if failed_ids.contains(&message.dedup_id) {
                            failed.push(id.clone());
                        } else {
                            published += 1;
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(family = family.as_str(), error = %error, "publishing a batch failed");
                    failed.extend(chunk.iter().map(|(id, _)| id.clone()));
                }
            }
        }
    }
    (published, failed)
}

/// The SQS message for a stored, accepted event.
pub fn message_for(item: &StoredEvent) -> Result<OutgoingMessage, String> {
    let event = cloudevent(item)?;
    let body = serde_json::to_string(&event).map_err(|e| e.to_string())?;
    Ok(OutgoingMessage {
        dedup_id: item.event_id.clone(),
        group_id: group_id(item),
        event_type: item.event_type.clone(),
        provider: item.provider.as_str().to_owned(),
        body,
    })
}

/// Rebuilds the CloudEvent from the stored item: attributes from the item,
/// `data` from decoding the stored raw body, `data.raw` the body verbatim.
pub fn cloudevent(item: &StoredEvent) -> Result<CloudEvent, String> {
    let body = raw_body(item).map_err(|e| e.to_string())?;
    let decoded = decode_body(item.provider, &body)
        .map_err(|e| format!("stored body no longer decodes: {e}"))?;
    let text = String::from_utf8(body).map_err(|_| "stored body is not UTF-8".to_owned())?;
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
        receivedat: item.received_at.clone(),
        deliveryid: item.delivery_id.clone(),
        test: item.test.then_some(true),
        data: EventData {
            normalized: decoded.normalized,
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
