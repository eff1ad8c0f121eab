//! Operator tools over stored events: `replay` re-publishes them, and
//! `reprocess` re-decodes quarantined ones (after a parser fix) and accepts
//! those that now decode. Both run as Lambdas (`sam remote invoke`) and
//! locally (`switchboard-local replay|reprocess`), report counts, and are
//! idempotent.

use crate::fanout::{message_for, publish_batches, ByFamily};
use crate::item::{self, raw_body};
use crate::ports::{EventStore, InsertOutcome, Publisher, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_providers::{decode_event, sha256_hex, timestamp, Admission};
use switchboard_types::{Provider, Status, StoredEvent};

/// Which stored events a tool works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Received in `[from, to)`.
    Window {
        /// Inclusive start.
        from: DateTime<Utc>,
        /// Exclusive end.
        to: DateTime<Utc>,
    },
    /// One conversation, in time order.
    Conversation {
        /// Its provider.
        provider: Provider,
        /// The provider-scoped conversation key.
        key: String,
    },
    /// These events.
    EventIds(Vec<String>),
}

/// A tool's input as JSON (the Lambda's event): exactly one of `window`,
/// `conversation` or `event_ids`, e.g.
/// `{"window": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"}}`,
/// `{"conversation": {"provider": "partoo", "key": "123"}}`,
/// `{"event_ids": ["…"]}`; `replay_id` is optional (replay only).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRequest {
    /// A receive-time window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowRequest>,
    /// A conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationRequest>,
    /// Event ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_ids: Option<Vec<String>>,
    /// Names a replay; replaying the same request twice within SQS's
    /// 5-minute deduplication window publishes once. Default: derived from
    /// the selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_id: Option<String>,
}

/// `{"from": …, "to": …}`, RFC 3339.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    /// Inclusive start.
    pub from: String,
    /// Exclusive end.
    pub to: String,
}

/// `{"provider": …, "key": …}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationRequest {
    /// `zipmessage`, `partoo` or `bird`.
    pub provider: String,
    /// The conversation key (the CloudEvent `subject`).
    pub key: String,
}

/// A request that does not say what to select.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {0}")]
pub struct RequestError(pub String);

impl ToolRequest {
    /// The selection this request names.
    pub fn selection(&self) -> Result<Selection, RequestError> {
        let given = [
            self.window.is_some(),
            self.conversation.is_some(),
            self.event_ids.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err(RequestError(
                "give exactly one of `window`, `conversation` or `event_ids`".into(),
            ));
        }
        if let Some(w) = &self.window {
            let parse = |name: &str, text: &str| {
                timestamp::parse(text).ok_or_else(|| {
                    RequestError(format!("window.{name} is not a timestamp: {text:?}"))
                })
            };
            let (from, to) = (parse("from", &w.from)?, parse("to", &w.to)?);
            if from >= to {
                return Err(RequestError("window.from must be before window.to".into()));
            }
            if to - from > chrono::Duration::days(366) {
                return Err(RequestError("a window spans at most 366 days".into()));
            }
            return Ok(Selection::Window { from, to });
        }
        if let Some(c) = &self.conversation {
            let provider = Provider::from_name(&c.provider)
                .ok_or_else(|| RequestError(format!("unknown provider {:?}", c.provider)))?;
            if c.key.is_empty() {
                return Err(RequestError("conversation.key is empty".into()));
            }
            return Ok(Selection::Conversation {
                provider,
                key: c.key.clone(),
            });
        }
        let ids = self.event_ids.clone().unwrap_or_default();
        if ids.is_empty() || ids.iter().any(|id| id.trim().is_empty()) {
            return Err(RequestError("event_ids must list non-empty ids".into()));
        }
        Ok(Selection::EventIds(ids))
    }

    /// The replay id: the given one (checked), or one derived from the request.
    pub fn replay_id(&self) -> Result<String, RequestError> {
        match &self.replay_id {
            Some(id) => {
                let ok = !id.is_empty()
                    && id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if ok {
                    Ok(id.clone())
                } else {
                    Err(RequestError(
                        "replay_id: 1 to 64 characters of A-Z a-z 0-9 - _".into(),
                    ))
                }
            }
            None => {
                let mut request = self.clone();
                request.replay_id = None;
                let text = serde_json::to_string(&request).unwrap_or_default();
                Ok(hex::encode(&Sha256::digest(text.as_bytes())[..8]))
            }
        }
    }
}

/// Reads stored events for the tools, and marks reprocessed ones.
#[async_trait]
pub trait EventArchive: Send + Sync {
    /// The full stored items of `selection`, each once, in no particular order.
    async fn select(&self, selection: &Selection) -> Result<Vec<StoredEvent>, StoreError>;
    /// Records on the quarantined item `pk` that it was accepted as `event_id`.
    async fn mark_reprocessed(&self, pk: &str, event_id: &str) -> Result<(), StoreError>;
}

/// Whether `item` falls in `selection` (the archive's own filter, and what
/// an index query cannot express exactly).
pub fn selects(selection: &Selection, item: &StoredEvent) -> bool {
    match selection {
        Selection::Window { from, to } => {
            timestamp::parse(&item.received_at).is_some_and(|t| t >= *from && t < *to)
        }
        Selection::Conversation { provider, key } => {
            item.provider == *provider && item.conversation_key == *key
        }
        Selection::EventIds(ids) => ids.contains(&item.event_id),
    }
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Stored events the selection matched.
    pub matched: usize,
    /// Messages the queues accepted.
    pub published: usize,
    /// Quarantined events, never published.
    pub skipped_quarantined: usize,
    /// Event ids that could not be published (retry the replay).
    pub failed: Vec<String>,
    /// The replay id used in each message's deduplication id.
    pub replay_id: String,
}

/// Re-publishes the accepted events of `selection` to their normal queues.
/// Consumers see the same CloudEvent (same `id`); the SQS deduplication id
/// is `<event id>:replay:<replay id>`, so the replay is not swallowed by the
/// original send's deduplication window, and repeating the same replay
/// within 5 minutes publishes nothing more. Stored items are not changed.
pub async fn replay(
    archive: &dyn EventArchive,
    publisher: &dyn Publisher,
    selection: &Selection,
    replay_id: &str,
) -> Result<ReplayReport, StoreError> {
    let mut items = archive.select(selection).await?;
    items.sort_by(|a, b| {
        (a.occurred_at.as_str(), a.event_id.as_str())
            .cmp(&(b.occurred_at.as_str(), b.event_id.as_str()))
    });
    let mut report = ReplayReport {
        matched: items.len(),
        replay_id: replay_id.to_owned(),
        ..ReplayReport::default()
    };
    let mut by_family = ByFamily::new();
    for item in &items {
        if item.status != Status::Accepted {
            report.skipped_quarantined += 1;
            continue;
        }
        match message_for(item) {
            Ok(mut message) => {
                message.dedup_id = format!("{}:replay:{replay_id}", item.event_id);
                by_family
                    .entry(item.family)
                    .or_default()
                    .push((item.event_id.clone(), message));
            }
            Err(why) => {
                tracing::error!(event_id = %item.event_id, error = %why, "cannot replay");
                report.failed.push(item.event_id.clone());
            }
        }
    }
    let (published, failed) = publish_batches(publisher, by_family).await;
    report.published = published;
    report.failed.extend(failed);
    tracing::info!(
        matched = report.matched,
        published = report.published,
        skipped_quarantined = report.skipped_quarantined,
        failed = report.failed.len(),
        replay_id,
        "replay done"
    );
    Ok(report)
}

/// What a reprocessing did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReprocessReport {
    /// Quarantined events examined (not yet reprocessed).
    pub examined: usize,
    /// Newly accepted: `(quarantined event id, accepted event id)`.
    pub accepted: Vec<(String, String)>,
    /// Now decodable, but the accepted event already existed (the provider
    /// redelivered it after the fix, or an earlier run stored it).
    pub already_accepted: usize,
    /// Still not decodable.
    pub still_quarantined: usize,
    /// Quarantined event ids that failed (storage errors; retry).
    pub failed: Vec<String>,
}

/// Re-decodes the quarantined events of `selection` with today's decoders
/// and admission settings (a Partoo organisation listed since). Each one
/// that now decodes and is admitted is stored as an accepted event (the
/// usual conditional insert, so the stream publishes it exactly like a fresh
/// webhook), with the delivery facts the webhook stored (a tryout stays a
/// tryout), and its quarantined item is marked with the accepted id, so a
/// second run skips it. A body kept only in part (`too_large`) is never
/// decoded. Idempotent: repeating it accepts nothing twice.
pub async fn reprocess(
    archive: &dyn EventArchive,
    store: &dyn EventStore,
    admission: &Admission,
    selection: &Selection,
) -> Result<ReprocessReport, StoreError> {
    let items = archive.select(selection).await?;
    let mut report = ReprocessReport::default();
    for item in items
        .iter()
        .filter(|i| i.status == Status::Quarantined && i.reprocessed_to.is_none())
    {
        report.examined += 1;
        // Only the whole body as received: its digest is what was stored.
        let Some(body) = raw_body(item)
            .ok()
            .filter(|body| sha256_hex(body) == item.raw_sha256)
        else {
            report.still_quarantined += 1;
            continue;
        };
        let decoded = decode_event(item.provider, &body, admission);
        if decoded.is_err() {
            report.still_quarantined += 1;
            continue;
        }
        let received = timestamp::parse(&item.received_at).unwrap_or_else(Utc::now);
        let mut accepted = item::build(
            item.provider,
            &decoded,
            &item::delivery_of(item),
            &body,
            received,
        );
        accepted.expires_at = item.expires_at;
        let outcome = match store.insert(&accepted).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(event_id = %item.event_id, error = %error, "reprocess: store failed");
                report.failed.push(item.event_id.clone());
                continue;
            }
        };
        if let Err(error) = archive.mark_reprocessed(&item.pk, &accepted.event_id).await {
            tracing::error!(event_id = %item.event_id, error = %error, "reprocess: mark failed");
            report.failed.push(item.event_id.clone());
            continue;
        }
        match outcome {
            InsertOutcome::Created => report
                .accepted
                .push((item.event_id.clone(), accepted.event_id.clone())),
            InsertOutcome::Duplicate => report.already_accepted += 1,
        }
    }
    tracing::info!(
        examined = report.examined,
        accepted = report.accepted.len(),
        already_accepted = report.already_accepted,
        still_quarantined = report.still_quarantined,
        failed = report.failed.len(),
        "reprocess done"
    );
    Ok(report)
}

#[async_trait]
impl EventArchive for crate::ports::MemoryStore {
    async fn select(&self, selection: &Selection) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .items()
            .into_iter()
            .filter(|i| selects(selection, i))
            .collect())
    }

    async fn mark_reprocessed(&self, pk: &str, event_id: &str) -> Result<(), StoreError> {
        self.update(pk, |item| item.reprocessed_to = Some(event_id.to_owned()))
    }
}
