//! Local stand-in for Lambda's DynamoDB stream event source: reads the
//! table's stream from moto and feeds the same fanout code the `fanout`
//! Lambda runs. Failed records are retried with backoff (like Lambda's
//! bounded retries) and then sent to the on-failure queue.

use anyhow::{anyhow, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchboard_pipeline::{fanout, Publisher, StreamRecord};

/// Attempts per record before it goes to the failure queue (Lambda: `MaximumRetryAttempts` + 1).
pub const MAX_ATTEMPTS: u32 = 5;

/// Polls `stream_arn` forever.
pub async fn run(
    sdk: SdkConfig,
    stream_arn: String,
    publisher: Arc<dyn Publisher>,
    failure_queue_url: Option<String>,
) -> Result<()> {
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    let mut since_describe = Duration::MAX;
    loop {
        if since_describe > Duration::from_secs(5) {
            let description = streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await?;
            for shard in description
                .stream_description()
                .map(|d| d.shards())
                .unwrap_or_default()
            {
                let Some(shard_id) = shard.shard_id() else {
                    continue;
                };
                if iterators.contains_key(shard_id) {
                    continue;
                }
                let iterator = streams
                    .get_shard_iterator()
                    .stream_arn(&stream_arn)
                    .shard_id(shard_id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await?
                    .shard_iterator()
                    .map(str::to_owned);
                iterators.insert(shard_id.to_owned(), iterator);
            }
            since_describe = Duration::ZERO;
        }
        let mut idle = true;
        for iterator in iterators.values_mut() {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let output = streams
                .get_records()
                .shard_iterator(current)
                .limit(100)
                .send()
                .await?;
            *iterator = output.next_shard_iterator().map(str::to_owned);
            let records: Vec<StreamRecord> = output.records().iter().map(convert).collect();
            if records.is_empty() {
                continue;
            }
            idle = false;
            deliver(
                publisher.as_ref(),
                &sqs,
                failure_queue_url.as_deref(),
                records,
            )
            .await;
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(100)).await;
            since_describe = since_describe.saturating_add(Duration::from_millis(100));
        }
    }
}

fn convert(record: &aws_sdk_dynamodbstreams::types::Record) -> StreamRecord {
    let change = record.dynamodb();
    let id = change
        .and_then(|c| c.sequence_number())
        .or(record.event_id())
        .unwrap_or_default()
        .to_owned();
    let event_name = record
        .event_name()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    StreamRecord::parse(id, event_name, || {
        change
            .and_then(|c| c.new_image())
            .map(|image| serde_dynamo::from_item(image.clone()))
    })
}

async fn deliver(
    publisher: &dyn Publisher,
    sqs: &aws_sdk_sqs::Client,
    failure_queue: Option<&str>,
    mut records: Vec<StreamRecord>,
) {
    for attempt in 1..=MAX_ATTEMPTS {
        let report = fanout(publisher, &records).await;
        if report.failed.is_empty() {
            return;
        }
        records.retain(|r| report.failed.contains(&r.id));
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
        }
    }
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    tracing::error!(records = ?ids, "fanout gave up on stream records; sending them to the failure queue");
    if let Some(url) = failure_queue {
        let body = serde_json::json!({ "source": "switchboard-local", "sequenceNumbers": ids })
            .to_string();
        if let Err(e) = sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
        {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not record the failure");
        }
    }
}

/// The stream ARN of `table`.
pub async fn stream_arn(sdk: &SdkConfig, table: &str) -> Result<String> {
    aws_sdk_dynamodb::Client::new(sdk)
        .describe_table()
        .table_name(table)
        .send()
        .await?
        .table()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("table {table} has no stream"))
}
