//! The DynamoDB event store: one conditional `PutItem` per event, and the
//! reads of the operator tools (a window by a parallel Scan, quarantined
//! events on the sparse by-day index, a conversation's partition, items by
//! key).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, HashMap};
use switchboard_pipeline::tools::selects;
use switchboard_pipeline::{
    EventArchive, EventRef, EventStore, InsertOutcome, Page, Selection, StoreError,
};
use switchboard_providers::timestamp;
use switchboard_types::{index, key, StoredEvent, StoredItem};

/// Stores events in the events table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Items a window's Scan page reads per segment, when not
    /// [`SCAN_ITEMS_PER_EVENT`] times the events a tool's page asks for.
    scan_page: Option<usize>,
}

impl DynamoStore {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            scan_page: None,
        }
    }

    /// The same store, reading `items` per segment in each page of a
    /// window's Scan (paging through a small table in tests).
    pub fn with_scan_page(mut self, items: usize) -> Self {
        self.scan_page = Some(items.max(1));
        self
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
/// [`StoredEvent`] (its [`StoredItem`] form; a test holds the two equal; the
/// stream and the tools read items back with `serde_dynamo`), built directly
/// rather than through serde's generic serializer, which costs more per event.
pub fn attributes(event: &StoredEvent) -> HashMap<String, AttributeValue> {
    let item = StoredItem::from(event.clone());
    let mut out = HashMap::with_capacity(12);
    let mut put = |name: &str, value: AttributeValue| {
        out.insert(name.to_owned(), value);
    };
    put("pk", AttributeValue::S(item.pk));
    put("sk", AttributeValue::S(item.sk));
    put("status", AttributeValue::S(item.status.as_str().to_owned()));
    put("type", AttributeValue::S(item.event_type));
    put("native_type", AttributeValue::S(item.native_type));
    put("received_at", AttributeValue::S(item.received_at));
    let optional = [
        ("day", item.day),
        ("reason", item.reason),
        ("raw", item.raw),
        ("raw_sha256", item.raw_sha256),
        ("reprocessed_to", item.reprocessed_to),
        ("delivery_id", item.delivery_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            put(name, AttributeValue::S(value));
        }
    }
    if let Some(bytes) = item.raw_gz {
        put("raw_gz", AttributeValue::B(bytes.into()));
    }
    if item.test {
        put("test", AttributeValue::Bool(true));
    }
    if let Some(headers) = item.headers {
        let map = headers
            .into_iter()
            .map(|(name, value)| (name, AttributeValue::S(value)))
            .collect();
        put("headers", AttributeValue::M(map));
    }
    if let Some(expires_at) = item.expires_at {
        put("expires_at", AttributeValue::N(expires_at.to_string()));
    }
    out
}

/// Keys per `BatchGetItem` call (DynamoDB's limit).
const BATCH_GET: usize = 100;

type Item = HashMap<String, AttributeValue>;

/// Where a paged read stands: a day of a window (`by-day`), the last key
/// DynamoDB returned, an offset into a list of events, or each Scan
/// segment's place.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    key: BTreeMap<String, String>,
    #[serde(default)]
    offset: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    segments: Vec<SegmentAt>,
}

/// Where one segment of a window's parallel Scan stands.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct SegmentAt {
    /// The key the next Scan page starts after (empty: the beginning).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    key: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    done: bool,
}

/// Segments of a window's parallel Scan, read at once.
pub const SCAN_SEGMENTS: usize = 4;
/// Items a segment's Scan page reads per event a tool's page asks for: a
/// window's events are a fraction of the table, and every item scanned is
/// read (and paid for) whether or not it is in the window. With the tools'
/// 25 events a page, 1,000 items (about 1 MB, DynamoDB's largest page):
/// the fewest round trips, and the least rounding up to 4 KB per page.
pub const SCAN_ITEMS_PER_EVENT: usize = 40;

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
    fn start_key(&self) -> Option<Item> {
        (!self.key.is_empty()).then(|| {
            self.key
                .iter()
                .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                .collect()
        })
    }
}

/// The day of a window a position names, within the window's days: a
/// cursor is a position, not a credential, and one edited to a day outside
/// its window (years before it: a query a day until the window) is brought
/// back into it. No day, or none readable: the window's first.
fn window_day(
    day: Option<&str>,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
) -> chrono::NaiveDate {
    day.and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(first)
        .clamp(first, last)
}

fn key_of(last: Option<&Item>) -> BTreeMap<String, String> {
    last.into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
        .collect()
}

fn transient<E: std::error::Error>(e: E) -> StoreError {
    StoreError::transient(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
}

/// A stored item as an event, or — for an item this version cannot read
/// (written by another version, or damaged) — its key and why, so one such
/// item is reported and skipped instead of failing a page of others.
fn event_of(item: Item) -> Result<StoredEvent, String> {
    let name = |attribute: &str| {
        item.get(attribute)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let key = format!("{} {}", name("pk"), name("sk"));
    serde_dynamo::from_item(item).map_err(|e: serde_dynamo::Error| {
        tracing::error!(item = %key, error = %e, "skipping an unreadable stored item");
        format!("{key}: {e}")
    })
}

/// Readable events, and what could not be read.
type Read = (Vec<StoredEvent>, Vec<String>);

/// One Query: the partition (or index partition) `hash`, optionally a range
/// of the sort key.
struct Query<'a> {
    index: Option<&'a str>,
    hash: (&'a str, String),
    range: Option<(&'a str, String, String)>,
}

impl DynamoStore {
    /// One page (at most `limit` entries) of `query` from `start`: the
    /// entries and DynamoDB's last key.
    async fn query_page(
        &self,
        query: &Query<'_>,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(query.index.map(str::to_owned))
            .expression_attribute_names("#h", query.hash.0)
            .expression_attribute_values(":h", AttributeValue::S(query.hash.1.clone()))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        request = match &query.range {
            Some((name, low, high)) => request
                .key_condition_expression("#h = :h AND #r BETWEEN :low AND :high")
                .expression_attribute_names("#r", *name)
                .expression_attribute_values(":low", AttributeValue::S(low.clone()))
                .expression_attribute_values(":high", AttributeValue::S(high.clone())),
            None => request.key_condition_expression("#h = :h"),
        };
        let page = request.send().await.map_err(transient)?;
        Ok((page.items().to_vec(), page.last_evaluated_key().cloned()))
    }

    /// One Scan page of `segment` from after `start`: at most `limit`
    /// items, whole (no filter: every item read is returned, so where a
    /// partition starts is known; a filter would not lower the read cost).
    async fn scan_page(
        &self,
        segment: usize,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let page = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(i32::try_from(segment).unwrap_or(0))
            .total_segments(i32::try_from(SCAN_SEGMENTS).unwrap_or(1))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(transient)?;
        Ok((page.items().to_vec(), page.last_evaluated_key().cloned()))
    }

    /// Every item of partition `pk` and its last key, by Query: a partition
    /// larger than one Scan page.
    async fn whole_partition(&self, pk: &str) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let query = Query {
            index: None,
            hash: ("pk", pk.to_owned()),
            range: None,
        };
        let (mut items, mut start) = (Vec::new(), None);
        loop {
            let (page, last) = self.query_page(&query, start, 1000).await?;
            items.extend(page);
            match last {
                Some(last) => start = Some(last),
                None => {
                    let last_key = items.last().map(table_key);
                    return Ok((items, last_key));
                }
            }
        }
    }

    /// One page of every unfinished segment, at once: the items of the
    /// partitions each read whole, and where each goes on.
    async fn scan_window_page(
        &self,
        mut segments: Vec<SegmentAt>,
        limit: usize,
    ) -> Result<(Vec<Item>, Vec<SegmentAt>), StoreError> {
        let mut reads = tokio::task::JoinSet::new();
        for (n, at) in segments.iter().enumerate().filter(|(_, at)| !at.done) {
            let store = self.clone();
            let start = (!at.key.is_empty()).then(|| {
                at.key
                    .iter()
                    .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                    .collect::<Item>()
            });
            reads.spawn(async move {
                let (items, last) = store.scan_page(n, start, limit).await?;
                let mut scanned = whole_partitions(items, last.clone());
                if let Some(pk) = scanned.oversized.take() {
                    let (items, last_key) = store.whole_partition(&pk).await?;
                    scanned.whole = items;
                    // After the partition's last item; were it emptied
                    // meanwhile (its items expired), after this page.
                    scanned.resume = last_key.or(last);
                }
                Ok::<_, StoreError>((n, scanned))
            });
        }
        let mut by_segment = Vec::new();
        while let Some(joined) = reads.join_next().await {
            let (n, scanned) = joined
                .map_err(|e| StoreError::transient(format!("a Scan segment failed: {e}")))??;
            by_segment.push((n, scanned));
        }
        // Segment order, so a page reads the same whatever answered first.
        by_segment.sort_by_key(|(n, _)| *n);
        let mut items = Vec::new();
        for (n, scanned) in by_segment {
            segments[n] = match scanned.resume {
                Some(key) => SegmentAt {
                    key: key_of(Some(&key)),
                    done: false,
                },
                None => SegmentAt {
                    done: true,
                    ..SegmentAt::default()
                },
            };
            items.extend(scanned.whole);
        }
        Ok((items, segments))
    }

    /// `(received_at, sk)` of every item of partition `pk`, as stored
    /// (receive times in their sortable form).
    async fn stored_order(&self, pk: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .projection_expression("sk, received_at")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(transient)?;
            for item in page.items() {
                let text = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                out.push((text("received_at"), text("sk")));
            }
            match page.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(out),
            }
        }
    }

    /// The full items of `keys` (`pk`, `sk`) that exist (BatchGetItem,
    /// unprocessed keys retried).
    async fn get_all(&self, keys: Vec<Item>) -> Result<Read, StoreError> {
        let mut out = Read::default();
        for chunk in keys.chunks(BATCH_GET) {
            let mut keys = chunk.to_vec();
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
                    .map_err(transient)?;
                for item in output
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    match event_of(item.clone()) {
                        Ok(event) => out.0.push(event),
                        Err(why) => out.1.push(why),
                    }
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

    /// The item of `event` in its partition: a Query of the partition, read
    /// until the id is found (a conversation's partition holds its events;
    /// an event without one is alone in its own).
    async fn find(
        &self,
        event: &EventRef,
    ) -> Result<Option<Result<StoredEvent, String>>, StoreError> {
        let query = Query {
            index: None,
            hash: ("pk", event.partition()),
            range: None,
        };
        let mut start = None;
        loop {
            let (items, last) = self.query_page(&query, start, 100).await?;
            for item in items {
                let found = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| key::parse_sort(sk))
                    .is_some_and(|(_, id)| id == event.id);
                if found {
                    return Ok(Some(event_of(item)));
                }
            }
            match last {
                Some(last) => start = Some(last),
                None => return Ok(None),
            }
        }
    }
}

/// Items read from one Scan page, split into the partitions it read whole
/// and where the segment goes on.
struct Scanned {
    /// The items of every partition the page read to its end, in scan order.
    whole: Vec<Item>,
    /// A partition the page filled entirely without reaching its end: read
    /// it by Query instead.
    oversized: Option<String>,
    /// Where the segment's next page starts after; `None` when done.
    resume: Option<Item>,
}

fn text_of(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// Splits a Scan page so each partition is handed on whole. A partition's
/// items are contiguous in a Scan, in sort-key order, so only the page's
/// last partition can go on past it: it is held back and read again from
/// its start by the next page (after the previous partition's last item).
fn whole_partitions(mut items: Vec<Item>, last: Option<Item>) -> Scanned {
    let Some(last) = last else {
        return Scanned {
            whole: items,
            oversized: None,
            resume: None,
        };
    };
    let tail = text_of(&last, "pk");
    let first_of_tail = items
        .iter()
        .position(|i| text_of(i, "pk") == tail)
        .unwrap_or(items.len());
    if first_of_tail == 0 {
        return Scanned {
            whole: Vec::new(),
            oversized: Some(tail),
            resume: None,
        };
    }
    items.truncate(first_of_tail);
    let resume = items.last().map(table_key);
    Scanned {
        whole: items,
        oversized: None,
        resume,
    }
}

fn table_key(entry: &Item) -> Item {
    entry
        .iter()
        .filter(|(name, _)| *name == "pk" || *name == "sk")
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
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
        let ((items, unreadable), next) = match selection {
            Selection::Window { from, to, .. } => {
                // One page of each segment of a parallel Scan of the table:
                // no index pays a write for every event so that a window,
                // selected a few times a year, is found without a Scan.
                // Each partition (a conversation) is handed on whole, its
                // window's events in stored order, as a conversation's
                // replay reads them.
                let segments = if position.segments.len() == SCAN_SEGMENTS {
                    position.segments
                } else {
                    vec![SegmentAt::default(); SCAN_SEGMENTS]
                };
                let (items, segments) = self
                    .scan_window_page(
                        segments,
                        self.scan_page
                            .unwrap_or(limit.max(1) * SCAN_ITEMS_PER_EVENT),
                    )
                    .await?;
                let (low, high) = (
                    key::sortable_time(*from),
                    key::sortable_time(*to - chrono::Duration::nanoseconds(1)),
                );
                let mut read = Read::default();
                for item in items {
                    let received = text_of(&item, "received_at");
                    if received.as_str() < low.as_str() || received.as_str() > high.as_str() {
                        continue;
                    }
                    match event_of(item) {
                        Ok(event) => read.0.push(event),
                        Err(why) => read.1.push(why),
                    }
                }
                // Partitions in scan order; each one's events as stored.
                let mut rank = HashMap::new();
                for event in &read.0 {
                    let next = rank.len();
                    rank.entry(event.pk.clone()).or_insert(next);
                }
                read.0.sort_by_cached_key(|e| {
                    (
                        rank.get(&e.pk).copied(),
                        timestamp::parse(&e.received_at),
                        e.sk.clone(),
                    )
                });
                let next = segments.iter().any(|s| !s.done).then(|| Position {
                    segments,
                    ..Position::default()
                });
                (read, next)
            }
            Selection::QuarantinedWindow { from, to, .. } => {
                // One `by-day` Query page of one UTC day (keys only; only
                // quarantined items write the index), then the full items
                // by key; the next page is the rest of that day, or the
                // next day of the window.
                let first = from.date_naive();
                let last_instant = *to - chrono::Duration::nanoseconds(1);
                let last = last_instant.date_naive();
                let day = window_day(position.day.as_deref(), first, last);
                let day_key = day.format("%Y-%m-%d").to_string();
                let query = Query {
                    index: Some(index::BY_DAY),
                    hash: ("day", day_key.clone()),
                    range: Some((
                        "received_at",
                        key::sortable_time(*from),
                        key::sortable_time(last_instant),
                    )),
                };
                let (entries, last_key) =
                    self.query_page(&query, position.start_key(), limit).await?;
                let (mut items, unreadable) = self
                    .get_all(entries.iter().map(table_key).collect())
                    .await?;
                // BatchGetItem answers in any order: keep the index's.
                items
                    .sort_by_cached_key(|e| (timestamp::parse(&e.received_at), e.event_id.clone()));
                let next = match last_key {
                    Some(key) => Some(Position {
                        day: Some(day_key),
                        key: key_of(Some(&key)),
                        ..Position::default()
                    }),
                    None => day.succ_opt().filter(|d| *d <= last).map(|d| Position {
                        day: Some(d.format("%Y-%m-%d").to_string()),
                        ..Position::default()
                    }),
                };
                ((items, unreadable), next)
            }
            Selection::Conversation {
                provider,
                tenant,
                key: conversation,
            } => {
                // In the order the events were stored (and published): by
                // receive time, then sort key. The sort key holds the
                // signed time, which an event without one lacks, so it is
                // not that order. The partition's keys and receive times
                // are read whole (~100 bytes an event), then one page of
                // items in full: a conversation's replay reads it twice.
                let pk = key::partition(*provider, tenant, Some(conversation), "");
                let mut order = self.stored_order(&pk).await?;
                order.sort();
                let start = match (position.key.get("received_at"), position.key.get("sk")) {
                    (Some(received), Some(sk)) => {
                        order.partition_point(|(r, s)| (r.as_str(), s.as_str()) <= (received, sk))
                    }
                    _ => 0,
                };
                let end = (start + limit.max(1)).min(order.len());
                let page = &order[start..end];
                let keys = page
                    .iter()
                    .map(|(_, sk)| {
                        Item::from([
                            ("pk".to_owned(), AttributeValue::S(pk.clone())),
                            ("sk".to_owned(), AttributeValue::S(sk.clone())),
                        ])
                    })
                    .collect();
                let (mut items, unreadable) = self.get_all(keys).await?;
                // BatchGetItem answers in any order: keep the stored one.
                let rank: HashMap<&str, usize> = page
                    .iter()
                    .enumerate()
                    .map(|(i, (_, sk))| (sk.as_str(), i))
                    .collect();
                items.sort_by_key(|e| rank.get(e.sk.as_str()).copied());
                let next = (end < order.len()).then(|| Position {
                    key: BTreeMap::from([
                        ("received_at".to_owned(), page[page.len() - 1].0.clone()),
                        ("sk".to_owned(), page[page.len() - 1].1.clone()),
                    ]),
                    ..Position::default()
                });
                ((items, unreadable), next)
            }
            Selection::Events(events) => {
                let start = position.offset.min(events.len());
                let end = (start + limit.max(1)).min(events.len());
                let mut read = Read::default();
                for event in &events[start..end] {
                    match self.find(event).await? {
                        Some(Ok(item)) => read.0.push(item),
                        Some(Err(why)) => read.1.push(why),
                        None => {}
                    }
                }
                let next = (end < events.len()).then(|| Position {
                    offset: end,
                    ..Position::default()
                });
                (read, next)
            }
        };
        Ok(Page {
            items: items
                .into_iter()
                .filter(|i| selects(selection, i))
                .collect(),
            next: next.map(|p| p.text()),
            unreadable,
        })
    }

    async fn mark_reprocessed(&self, item: &StoredEvent, event_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(item.pk.clone()))
            .key("sk", AttributeValue::S(item.sk.clone()))
            .update_expression("SET reprocessed_to = :id")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":id", AttributeValue::S(event_id.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(transient)
    }
}

#[cfg(test)]
mod tests {
    use super::attributes;

    fn item(pk: &str, sk: &str) -> super::Item {
        use aws_sdk_dynamodb::types::AttributeValue;
        super::Item::from([
            ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
            ("raw".to_owned(), AttributeValue::S("{}".to_owned())),
        ])
    }

    #[test]
    fn a_scan_page_hands_on_whole_partitions_only() {
        let keys = |items: &[super::Item]| -> Vec<String> {
            items
                .iter()
                .map(|i| format!("{}/{}", super::text_of(i, "pk"), super::text_of(i, "sk")))
                .collect()
        };
        // The segment's last page: every partition is whole.
        let done = super::whole_partitions(vec![item("a", "1"), item("b", "1")], None);
        assert_eq!(keys(&done.whole), ["a/1", "b/1"]);
        assert!(done.resume.is_none() && done.oversized.is_none());
        // A page that ends within `b`: `b` is read again by the next page,
        // which starts after `a`'s last item.
        let page = vec![item("a", "1"), item("a", "2"), item("b", "1")];
        let last = Some(super::table_key(&item("b", "1")));
        let held = super::whole_partitions(page, last);
        assert_eq!(keys(&held.whole), ["a/1", "a/2"]);
        assert_eq!(held.resume, Some(super::table_key(&item("a", "2"))));
        assert!(held.oversized.is_none());
        // A page `b` fills alone: too large for a page, read by Query.
        let page = vec![item("b", "1"), item("b", "2")];
        let last = Some(super::table_key(&item("b", "2")));
        let large = super::whole_partitions(page, last);
        assert!(large.whole.is_empty() && large.resume.is_none());
        assert_eq!(large.oversized.as_deref(), Some("b"));
    }

    #[test]
    fn a_cursors_day_stays_within_its_window() {
        let date = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("a date");
        let (first, last) = (date("2026-12-30"), date("2027-01-02"));
        for (given, read) in [
            (None, "2026-12-30"),
            (Some("1990-01-01"), "2026-12-30"),
            (Some("2026-12-31"), "2026-12-31"),
            (Some("2099-01-01"), "2027-01-02"),
            (Some("not a day"), "2026-12-30"),
        ] {
            assert_eq!(
                super::window_day(given, first, last),
                date(read),
                "{given:?}"
            );
        }
    }
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
        let forms = |e: &StoredEvent| [e.raw.is_some(), e.raw_gz.is_some(), e.reason.is_some()];
        for form in 0..3 {
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
