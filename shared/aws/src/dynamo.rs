//! The DynamoDB event store: one conditional `PutItem` per event, and the
//! reads of the operator tools (by-day and by-conversation indexes, items by
//! key).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, HashMap};
use switchboard_pipeline::tools::selects;
use switchboard_pipeline::{EventArchive, EventStore, InsertOutcome, Page, Selection, StoreError};
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
        let item = attributes(event);
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
                _ => {
                    let message = aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string();
                    // DynamoDB's refusal of the request itself (a key or the
                    // item over its limits): the same write can never succeed.
                    let refused = error
                        .as_service_error()
                        .and_then(ProvideErrorMetadata::code)
                        == Some("ValidationException");
                    Err(if refused {
                        StoreError::permanent(message)
                    } else {
                        StoreError::transient(message)
                    })
                }
            },
        }
    }
}

/// The item's attributes: what `serde_dynamo::to_item` writes for a
/// [`StoredEvent`] (a test holds the two equal; the stream and the tools read
/// items back with `serde_dynamo`), built directly rather than through
/// serde's generic serializer, which costs more per event.
pub fn attributes(event: &StoredEvent) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::with_capacity(24);
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    let text = |value: &str| AttributeValue::S(value.to_owned());
    put("pk", text(&event.pk));
    put("event_id", text(&event.event_id));
    put("provider", text(event.provider.as_str()));
    put("tenant", text(&event.tenant));
    put("type", text(&event.event_type));
    put("native_type", text(&event.native_type));
    put("family", text(event.family.as_str()));
    put("conversation_key", text(&event.conversation_key));
    put("occurred_at", text(&event.occurred_at));
    put("received_at", text(&event.received_at));
    put("status", text(event.status.as_str()));
    put("dedup_key", text(&event.dedup_key));
    put("raw_sha256", text(&event.raw_sha256));
    put("day", text(&event.day));
    put("day_sk", text(&event.day_sk));
    let optional = [
        ("reason", &event.reason),
        ("raw", &event.raw),
        ("conv_pk", &event.conv_pk),
        ("conv_sk", &event.conv_sk),
        ("reprocessed_to", &event.reprocessed_to),
        ("delivery_id", &event.delivery_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            put(name, text(value));
        }
    }
    for (name, bytes) in [("raw_lz4", &event.raw_lz4), ("raw_gz", &event.raw_gz)] {
        if let Some(bytes) = bytes {
            put(name, AttributeValue::B(bytes.clone().into()));
        }
    }
    if event.test {
        put("test", AttributeValue::Bool(true));
    }
    if let Some(headers) = &event.headers {
        let map = headers
            .iter()
            .map(|(name, value)| (name.clone(), text(value)))
            .collect();
        put("headers", AttributeValue::M(map));
    }
    if let Some(expires_at) = event.expires_at {
        put("expires_at", AttributeValue::N(expires_at.to_string()));
    }
    item
}

/// Keys per `BatchGetItem` call (DynamoDB's limit).
const BATCH_GET: usize = 100;

/// Where a paged read stands: a day of a window (`by-day`), the last key
/// DynamoDB returned, or an offset into a list of ids.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    key: BTreeMap<String, String>,
    #[serde(default)]
    offset: usize,
}

impl Position {
    fn parse(text: Option<&str>) -> Result<Self, StoreError> {
        text.map_or(Ok(Self::default()), |t| {
            serde_json::from_str(t).map_err(|e| StoreError::transient(format!("bad position: {e}")))
        })
    }

    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// DynamoDB's `ExclusiveStartKey` (every key attribute is a string).
    fn start_key(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.key.is_empty()).then(|| {
            self.key
                .iter()
                .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                .collect()
        })
    }
}

fn key_of(last: Option<&HashMap<String, AttributeValue>>) -> BTreeMap<String, String> {
    last.into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
        .collect()
}

impl DynamoStore {
    /// One page (at most `limit` entries) of a Query on `index` where
    /// `key_name = value`, from `start`: the entries and DynamoDB's last key.
    async fn query_page(
        &self,
        index: &str,
        key_name: &str,
        value: &str,
        start: Option<HashMap<String, AttributeValue>>,
        limit: usize,
    ) -> Result<
        (
            Vec<HashMap<String, AttributeValue>>,
            Option<HashMap<String, AttributeValue>>,
        ),
        StoreError,
    > {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key_name)
            .expression_attribute_values(":v", AttributeValue::S(value.to_owned()))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| {
                StoreError::transient(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
            })?;
        Ok((page.items().to_vec(), page.last_evaluated_key().cloned()))
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
                    .map_err(|e| StoreError::transient(e.to_string()))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| {
                        StoreError::transient(
                            aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
                        )
                    })?;
                for item in output
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    out.push(
                        serde_dynamo::from_item(item.clone())
                            .map_err(|e| StoreError::transient(format!("unreadable item: {e}")))?,
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
                return Err(StoreError::transient(format!(
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
    async fn page(
        &self,
        selection: &Selection,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let position = Position::parse(after)?;
        let (items, next) = match selection {
            Selection::Window { from, to, .. } => {
                // One `by-day` Query page of one UTC day (keys and a few
                // attributes), then the full items by key; the next page is
                // the rest of that day, or the next day of the window.
                let first = from.date_naive();
                let last = (*to - chrono::Duration::nanoseconds(1)).date_naive();
                let day = position
                    .day
                    .as_deref()
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .unwrap_or(first);
                let day_key = day.format("%Y-%m-%d").to_string();
                let (entries, last_key) = self
                    .query_page(index::BY_DAY, "day", &day_key, position.start_key(), limit)
                    .await?;
                let pks: Vec<String> = entries
                    .iter()
                    .filter(|entry| {
                        let received = text(entry, "day_sk");
                        let received = received.split('#').next().unwrap_or_default();
                        timestamp::parse(received).is_some_and(|t| t >= *from && t < *to)
                    })
                    .map(|entry| text(entry, "pk"))
                    .collect();
                let mut items = self.get_all(&pks).await?;
                // The tenant is not in the index: filtered on the items.
                items.retain(|item| selects(selection, item));
                // BatchGetItem answers in any order: keep the index's.
                items.sort_by(|a, b| a.day_sk.cmp(&b.day_sk));
                let next = match last_key {
                    Some(key) => Some(Position {
                        day: Some(day_key),
                        key: key_of(Some(&key)),
                        offset: 0,
                    }),
                    None => day.succ_opt().filter(|d| *d <= last).map(|d| Position {
                        day: Some(d.format("%Y-%m-%d").to_string()),
                        ..Position::default()
                    }),
                };
                (items, next)
            }
            Selection::Conversation { provider, key } => {
                let value = format!("{}#{key}", provider.as_str());
                let (entries, last_key) = self
                    .query_page(
                        index::BY_CONVERSATION,
                        "conv_pk",
                        &value,
                        position.start_key(),
                        limit,
                    )
                    .await?;
                let items = entries
                    .into_iter()
                    .map(|item| {
                        serde_dynamo::from_item(item)
                            .map_err(|e| StoreError::transient(format!("unreadable item: {e}")))
                    })
                    .collect::<Result<Vec<StoredEvent>, _>>()?;
                let next = last_key.map(|key| Position {
                    key: key_of(Some(&key)),
                    ..Position::default()
                });
                (items, next)
            }
            Selection::EventIds(ids) => {
                let start = position.offset.min(ids.len());
                // Each id is looked for under every provider's prefix.
                let step = (limit / Provider::ALL.len()).max(1);
                let end = (start + step).min(ids.len());
                let pks: Vec<String> = ids[start..end]
                    .iter()
                    .flat_map(|id| Provider::ALL.iter().map(move |&p| partition_key(p, id)))
                    .collect();
                let next = (end < ids.len()).then(|| Position {
                    offset: end,
                    ..Position::default()
                });
                (self.get_all(&pks).await?, next)
            }
        };
        Ok(Page {
            items: items
                .into_iter()
                .filter(|i| selects(selection, i))
                .collect(),
            next: next.map(|p| p.text()),
        })
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
            .map_err(|e| {
                StoreError::transient(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::attributes;
    use std::collections::HashMap;
    use switchboard_pipeline::item;
    use switchboard_providers::{decode_body, Delivery};
    use switchboard_types::{Provider, StoredEvent};

    fn stored(provider: Provider, body: &[u8]) -> StoredEvent {
        let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        item::build(
            provider,
            &decode_body(provider, body),
            &Delivery::default(),
            body,
            now,
        )
    }

    #[test]
    fn attributes_are_what_serde_dynamo_writes() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let read = |path: &str| std::fs::read(format!("{fixtures}/{path}")).expect("fixture");
        let large = format!(
            r#"{{"type":"message_created","id":"x","payload":{{"pad":"{}"}}}}"#,
            "z".repeat(9000)
        );
        let mut events = vec![
            stored(
                Provider::Zipmessage,
                &read("zipmessage/conversation_created.json"),
            ),
            stored(
                Provider::Zipmessage,
                &read("zipmessage/message_created.json"),
            ),
            stored(Provider::Partoo, &read("partoo/message_created.json")),
            stored(Provider::Bird, &read("bird/conversation.updated.json")),
            stored(Provider::Zipmessage, large.as_bytes()),
            stored(Provider::Partoo, b"not json"),
            stored(Provider::Bird, &[0xff, 0xfe, b'{']),
        ];
        let mut kept = stored(Provider::Partoo, b"{\"type\":\"x\"}");
        kept.expires_at = Some(1_800_000_000);
        kept.reprocessed_to = Some("another-id".into());
        events.push(kept);
        // A tryout with its delivery id, and a too_large item's headers.
        let mut delivered = stored(Provider::Partoo, b"{\"type\":\"y\"}");
        delivered.test = true;
        delivered.delivery_id = Some("req-1".into());
        delivered.headers = Some(
            [
                ("content-type", "text/plain"),
                ("x-partoo-signature-v1", "c2ln"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        );
        events.push(delivered);
        let forms = |e: &StoredEvent| {
            [
                e.raw.is_some(),
                e.raw_lz4.is_some(),
                e.raw_gz.is_some(),
                e.reason.is_some(),
            ]
        };
        for form in 0..4 {
            assert!(
                events.iter().any(|e| forms(e)[form]),
                "every stored form of the body and a quarantine reason are covered"
            );
        }
        for event in &events {
            let reference: HashMap<_, _> = serde_dynamo::to_item(event).expect("serde_dynamo");
            assert_eq!(attributes(event), reference, "{}", event.event_id);
        }
    }
}
