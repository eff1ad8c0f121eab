//! `scan-bench` (step 3 of `make bench`): what selecting a time window
//! costs now that no index lists every event — a parallel Scan of the
//! table, read as `replay` reads it.
//!
//! Writes `--items N` (default 100,000) items shaped like the seeds (every
//! provider's, in turn; three events a conversation), received over the
//! default retention (14 days), straight into a table provisioned from
//! template.yaml; then selects the window of one hour through
//! `DynamoStore` (the replay function's archive), page by page, as a replay
//! does, and prints: the table's bytes by DynamoDB's size rules, the read
//! units a full pass costs (eventually consistent: half a unit per 4 KB a
//! Scan page reads, each page rounded up), the pages, the wall time
//! against moto, and the events found — and the same read cost at 10 and
//! 100 million items. moto's Scan sorts and hashes the whole table on every
//! page, so the local time grows with the square of the table: it says
//! nothing about DynamoDB's, which the output bounds by the table's read
//! throughput instead.
//!
//! Needs moto at AWS_ENDPOINT_URL (`infra/scripts/bench.sh` starts one).

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use chrono::{Duration, Utc};
use futures::stream::{self, StreamExt};
use std::time::Instant;
use switchboard_aws::dynamo::{attributes, SCAN_ITEMS_PER_EVENT, SCAN_SEGMENTS};
use switchboard_aws::DynamoStore;
use switchboard_pipeline::{EventArchive, Selection, PAGE_SIZE};
use switchboard_tests::cost::{item_size, seed_item};
use switchboard_tests::{distinct, provision_only, seed_parts};
use switchboard_types::key;

/// Items a BatchWriteItem takes.
const BATCH_WRITE: usize = 25;
/// Days the items are spread over (the default retention).
const DAYS: i64 = 14;
/// Read units a new on-demand table serves at once (warm throughput).
const WARM_READ_UNITS_PER_SECOND: f64 = 12_000.0;
/// $ per million read request units (infra/prices.json).
fn read_price() -> Result<f64> {
    let text = std::fs::read_to_string(switchboard_tests::root().join("infra/prices.json"))?;
    let prices: serde_json::Value = serde_json::from_str(&text)?;
    prices["prices"]["dynamodb_on_demand_per_million_read_units"]["usd"]
        .as_f64()
        .context("infra/prices.json has the read unit price")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let items: usize = args
        .iter()
        .position(|a| a == "--items")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (sdk, provisioned) = provision_only().await;
    let table = provisioned
        .tables
        .get("EventsTable")
        .cloned()
        .context("template.yaml has EventsTable")?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    // One item per event: a seed that carries several is split as the
    // webhook splits it.
    let seeds: Vec<_> = seed_parts()
        .into_iter()
        .map(|(provider, _, body)| (provider, body))
        .collect();
    let now = Utc::now();
    let (from, to) = (now - Duration::hours(2), now - Duration::hours(1));

    // The items: seed-shaped, spread evenly over the days.
    let started = Instant::now();
    let mut table_bytes = 0usize;
    let mut in_window = 0usize;
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    for i in 0..items {
        let (provider, seed) = &seeds[i % seeds.len()];
        let mut event = seed_item(*provider, &distinct(seed, &format!("scan-{i:08}")));
        let received = now - Duration::seconds((i as i64 * DAYS * 86_400) / items as i64);
        event.received_at = key::sortable_time(received);
        event.pk = key::partition(
            *provider,
            &event.tenant,
            Some(&format!("scan-conversation-{}", i / 3)),
            &event.event_id,
        );
        event.expires_at = Some((now + Duration::days(DAYS)).timestamp());
        in_window += usize::from(received >= from && received < to);
        let item = attributes(&event);
        table_bytes += item_size(&item);
        batch.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                .build(),
        );
        if batch.len() == BATCH_WRITE {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let written: Vec<Result<()>> = stream::iter(batches)
        .map(|mut requests| {
            let (client, table) = (client.clone(), table.clone());
            async move {
                while !requests.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(&table, requests)
                        .send()
                        .await?;
                    requests = out
                        .unprocessed_items()
                        .and_then(|u| u.get(&table))
                        .cloned()
                        .unwrap_or_default();
                }
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    written.into_iter().collect::<Result<Vec<()>>>()?;
    println!(
        "== {items} seed-shaped items over {DAYS} days written in {:.1} s: {:.1} MB by DynamoDB's size rules ({} B an item on average)",
        started.elapsed().as_secs_f64(),
        table_bytes as f64 / 1e6,
        table_bytes / items.max(1),
    );

    // The window, page by page, as replay reads it.
    // moto answers a Scan of a large table slowly (see above): no timeout
    // of the SDK's may cut a page short.
    let slow = sdk
        .to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(600))
                .operation_timeout(std::time::Duration::from_secs(1800))
                .build(),
        )
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&slow), &table);
    let selection = Selection::Window {
        from,
        to,
        tenant: None,
    };
    let started = Instant::now();
    let (mut pages, mut found, mut unreadable) = (0usize, 0usize, 0usize);
    let mut at: Option<String> = None;
    loop {
        let page = store.page(&selection, at.as_deref(), PAGE_SIZE).await?;
        pages += 1;
        found += page.items.len();
        unreadable += page.unreadable.len();
        match page.next {
            Some(next) => at = Some(next),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(
        found == in_window && unreadable == 0,
        "the window holds {in_window} events; the Scan found {found} ({unreadable} unreadable)"
    );

    // What DynamoDB charges for the pass: each Scan page's bytes rounded up
    // to 4 KB, half a unit each (eventually consistent). Pages of
    // SCAN_ITEMS_PER_EVENT x PAGE_SIZE items per segment.
    let per_page = SCAN_ITEMS_PER_EVENT * PAGE_SIZE;
    let average = table_bytes as f64 / items as f64;
    let units = |n: f64| {
        let page_bytes = per_page as f64 * average;
        (n / per_page as f64).ceil() * (page_bytes / 4096.0).ceil() * 0.5
    };
    let price = read_price()?;
    println!(
        "== a one-hour window ({in_window} events) selected in {pages} pages of {SCAN_SEGMENTS} segments x {per_page} items: {:.1} s against moto; {:.0} read units (${:.4})",
        elapsed.as_secs_f64(),
        units(items as f64),
        units(items as f64) * price / 1e6,
    );
    println!(
        "   per 100,000 items: {:.0} read units; pages at a partition's end read it again from its start (at most one conversation a segment page)",
        units(100_000.0)
    );
    for n in [10e6, 100e6] {
        println!(
            "   {:>4.0} million items: {:.2} million read units, ${:.2} a window; at least {:.0} s at a new on-demand table's {WARM_READ_UNITS_PER_SECOND:.0} read units a second",
            n / 1e6,
            units(n) / 1e6,
            units(n) * price / 1e6,
            units(n) / WARM_READ_UNITS_PER_SECOND,
        );
    }
    Ok(())
}
