//! The pipeline's two ports — storing an event once, publishing messages —
//! and in-memory adapters used by unit tests and benchmarks.

use crate::fanout::OutgoingMessage;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use switchboard_types::{Family, StoredEvent};

/// Result of a conditional insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The item did not exist and is now durably stored.
    Created,
    /// An item with the same key already exists: a redelivery.
    Duplicate,
}

/// A storage failure: transient (throttling, timeouts, 5xx: the webhook
/// answers 503 so the provider retries) or permanent (the service refused
/// the request itself, such as DynamoDB's `ValidationException`: retrying
/// cannot succeed, so the webhook keeps the event as quarantined instead).
#[derive(Debug, thiserror::Error)]
#[error("storage failed{}: {message}", if *.permanent { " for good" } else { "" })]
pub struct StoreError {
    /// What went wrong.
    pub message: String,
    /// Whether the same request can never succeed.
    pub permanent: bool,
}

impl StoreError {
    /// A failure a retry may get past.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    /// A refusal of the request itself: no retry can succeed.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Stores each event once, keyed by its table key (`pk`, `sk`).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes the item unless one with the same key exists, atomically.
    async fn insert(&self, event: &StoredEvent) -> Result<InsertOutcome, StoreError>;
}

/// A publishing failure that affected a whole batch.
#[derive(Debug, thiserror::Error)]
#[error("publishing failed: {0}")]
pub struct PublishError(pub String);

/// Publishes messages to the queue of a family.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Sends up to 10 messages to `family`'s queue. Returns the
    /// `dedup_id`s of the messages that failed; `Err` means all failed.
    async fn send_batch(
        &self,
        family: Family,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<String>, PublishError>;
}

/// An in-memory [`EventStore`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<BTreeMap<(String, String), StoredEvent>>,
}

impl MemoryStore {
    /// Changes the stored item keyed (`pk`, `sk`) in place.
    pub fn update(
        &self,
        pk: &str,
        sk: &str,
        change: impl FnOnce(&mut StoredEvent),
    ) -> Result<(), StoreError> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| StoreError::transient("memory store poisoned"))?;
        let item = items
            .get_mut(&(pk.to_owned(), sk.to_owned()))
            .ok_or_else(|| StoreError::transient(format!("no item {pk} {sk}")))?;
        change(item);
        Ok(())
    }

    /// All stored items, in key order.
    pub fn items(&self) -> Vec<StoredEvent> {
        self.items
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert(&self, event: &StoredEvent) -> Result<InsertOutcome, StoreError> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| StoreError::transient("memory store poisoned"))?;
        let key = (event.pk.clone(), event.sk.clone());
        if items.contains_key(&key) {
            return Ok(InsertOutcome::Duplicate);
        }
        items.insert(key, event.clone());
        Ok(InsertOutcome::Created)
    }
}

/// An in-memory [`Publisher`] that records what it was given and can be
/// told to fail chosen messages.
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    sent: Mutex<Vec<(Family, OutgoingMessage)>>,
    fail_ids: Mutex<HashSet<String>>,
}

impl MemoryPublisher {
    /// Everything published so far.
    pub fn sent(&self) -> Vec<(Family, OutgoingMessage)> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Makes every later send of this message id fail.
    pub fn fail_message(&self, dedup_id: &str) {
        if let Ok(mut ids) = self.fail_ids.lock() {
            ids.insert(dedup_id.to_owned());
        }
    }
}

#[async_trait]
impl Publisher for MemoryPublisher {
    async fn send_batch(
        &self,
        family: Family,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<String>, PublishError> {
        let fail_ids = self.fail_ids.lock().map(|f| f.clone()).unwrap_or_default();
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| PublishError("memory publisher poisoned".into()))?;
        let mut failed = Vec::new();
        for message in messages {
            if fail_ids.contains(&message.dedup_id) {
                failed.push(message.dedup_id.clone());
            } else {
                sent.push((family, message.clone()));
            }
        }
        Ok(failed)
    }
}
