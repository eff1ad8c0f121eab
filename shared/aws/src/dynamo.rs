//! The DynamoDB event store: one conditional `PutItem` per event, and the
//! reads of the operator tools (by-day and by-conversation indexes, items by
//! key).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use switchboard_pipeline::tools::selects;
use switchboard_pipeline::{EventArchive, EventStore, InsertOutcome, Selection, StoreError};
use switchboard_providers::timestamp;
use switchboard_types::{index, partition_key, Provider, StoredEvent};

/// Stores events in the events table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn insert(&self, event: &StoredEvent) -> Result<InsertOutcome, StoreError> {
        let item = serde_dynamo::to_item(event)
            .map_err(|e| StoreError(format!("cannot encode item: {e}")))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // Atomic: of two concurrent copies exactly one creates the item.
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(InsertOutcome::Created),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Ok(InsertOutcome::Duplicate)
                }
                _ => Err(StoreError(
                    aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
                )),
            },
        }
    }
}

/// Keys per `BatchGetItem` call (DynamoDB's limit).
const BATCH_GET: usize = 100;

impl DynamoStore {
    /// Every page of a Query on `index` where `key_name = value`.
    async fn query_index(
        &self,
        index: &str,
        key_name: &str,
        value: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", key_name)
                .expression_attribute_values(":v", AttributeValue::S(value.to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    StoreError(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
                })?;
            out.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// The full items of `pks` that exist (BatchGetItem, unprocessed keys retried).
    async fn get_all(&self, pks: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for chunk in pks.chunks(BATCH_GET) {
            let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|pk| HashMap::from([("pk".to_owned(), AttributeValue::S(pk.clone()))]))
                .collect();
            for attempt in 0..8u32 {
                if keys.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys.clone()))
                    .build()
                    .map_err(|e| StoreError(e.to_string()))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| {
                        StoreError(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
                    })?;
                for item in output
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    out.push(
                        serde_dynamo::from_item(item.clone())
                            .map_err(|e| StoreError(format!("unreadable item: {e}")))?,
                    );
                }
                keys = output
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if !keys.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
            if !keys.is_empty() {
                return Err(StoreError(format!(
                    "{} keys stayed unprocessed after retries",
                    keys.len()
                )));
            }
        }
        Ok(out)
    }
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

#[async_trait]
impl EventArchive for DynamoStore {
    async fn select(&self, selection: &Selection) -> Result<Vec<StoredEvent>, StoreError> {
        let items = match selection {
            Selection::Window { from, to } => {
                // One Query per UTC day on `by-day` (keys and a few
                // attributes), then the full items by key.
                let mut pks = Vec::new();
                let mut day = from.date_naive();
                let last = (*to - chrono::Duration::nanoseconds(1)).date_naive();
                while day <= last {
                    let day_key = day.format("%Y-%m-%d").to_string();
                    for entry in self.query_index(index::BY_DAY, "day", &day_key).await? {
                        let received = text(&entry, "day_sk");
                        let received = received.split('#').next().unwrap_or_default();
                        let inside =
                            timestamp::parse(received).is_some_and(|t| t >= *from && t < *to);
                        if inside {
                            pks.push(text(&entry, "pk"));
                        }
                    }
                    day = day.succ_opt().unwrap_or(last + chrono::Duration::days(1));
                }
                self.get_all(&pks).await?
            }
            Selection::Conversation { provider, key } => {
                let value = format!("{}#{key}", provider.as_str());
                self.query_index(index::BY_CONVERSATION, "conv_pk", &value)
                    .await?
                    .into_iter()
                    .map(|item| {
                        serde_dynamo::from_item(item)
                            .map_err(|e| StoreError(format!("unreadable item: {e}")))
                    })
                    .collect::<Result<Vec<StoredEvent>, _>>()?
            }
            Selection::EventIds(ids) => {
                let pks: Vec<String> = ids
                    .iter()
                    .flat_map(|id| Provider::ALL.map(|p| partition_key(p, id)))
                    .collect();
                self.get_all(&pks).await?
            }
        };
        Ok(items
            .into_iter()
            .filter(|i| selects(selection, i))
            .collect())
    }

    async fn mark_reprocessed(&self, pk: &str, event_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .update_expression("SET reprocessed_to = :id")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":id", AttributeValue::S(event_id.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))
    }
}
