//! Local stand-in for Lambda's DynamoDB stream event source: reads the
//! table's stream from moto and feeds the same fanout code the `fanout`
//! Lambda runs, the way AWS does it.
//!
//! moto's stream has one shard; on AWS a table's stream has a shard per
//! partition, which Lambda processes concurrently. So the poller splits the
//! records into [`Settings::virtual_shards`] virtual shards by partition key
//! (one partition key always in one virtual shard, as on AWS while its
//! partition does not split) and runs one batch per virtual shard at a time,
//! all shards concurrently (`ParallelizationFactor: 1`). Per virtual shard it
//! follows the event source mapping of `template.yaml`:
//!
//! - a batch is at most `BatchSize` records from the checkpoint on; with a
//!   `MaximumBatchingWindowInSeconds`, a shard that was idle gathers records
//!   for that long (or until the batch is full) before invoking;
//! - a partial batch response (`ReportBatchItemFailures`) moves the
//!   checkpoint to the **lowest** reported record, and the next batch starts
//!   there, every record from it retried (not only those reported);
//! - a function error (the invocation fails, or outlasts the function's
//!   `Timeout`) with `BisectBatchOnFunctionError` halves the batch;
//! - after `MaximumRetryAttempts` retries at one checkpoint, the batch is
//!   sent to the on-failure queue as AWS describes it (`DDBStreamBatchInfo`:
//!   shard, first and last sequence numbers, size — never the records) and
//!   the checkpoint moves past it.
//!
//! Where AWS leaves the behaviour undocumented, these rules hold (and
//! docs/operations.md lists them): the retry count is per checkpoint and
//! starts again at 0 whenever the checkpoint advances; halving a batch is
//! not a retry; retries wait 50 ms, doubling to at most 1 s (AWS documents
//! no delay).

use anyhow::{anyhow, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use switchboard_pipeline::{fanout, Publisher, StreamRecord};
use tokio::sync::mpsc;

/// How the event source mapping behaves: `template.yaml`'s values for the
/// fanout's DynamoDB event, and the local stand-ins for AWS's shards.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// `MaximumRetryAttempts`.
    pub maximum_retry_attempts: u32,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_function_error: bool,
    /// The function's `Timeout`: an invocation that outlasts it is a
    /// function error.
    pub function_timeout: Duration,
    /// Virtual shards processed concurrently.
    pub virtual_shards: usize,
    /// First wait before a retry (doubling, at most 1 s).
    pub first_retry_delay: Duration,
}

impl Default for Settings {
    /// The template's values when it gives none (AWS's defaults for the
    /// batch; the template sets its own).
    fn default() -> Self {
        Self {
            batch_size: 100,
            batching_window: Duration::ZERO,
            maximum_retry_attempts: 10,
            bisect_on_function_error: true,
            function_timeout: Duration::from_secs(30),
            virtual_shards: 4,
            first_retry_delay: Duration::from_millis(50),
        }
    }
}

impl Settings {
    fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.first_retry_delay
            .saturating_mul(factor)
            .min(Duration::from_secs(1))
    }
}

/// The virtual shard of a partition key, of `shards`: stable, so one
/// partition key is always in one virtual shard.
pub fn virtual_shard(partition_key: &str, shards: usize) -> usize {
    let digest = Sha256::digest(partition_key.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head) % shards.max(1) as u64) as usize
}

/// A stream record as the poller keeps it.
#[derive(Debug, Clone)]
struct Polled {
    record: StreamRecord,
    arrival: String,
}

/// Where on-failure records go.
#[derive(Debug, Clone)]
struct FailureQueue {
    sqs: aws_sdk_sqs::Client,
    url: Option<String>,
    stream_arn: String,
}

/// Polls `stream_arn` forever, fanning out through `publisher`.
pub async fn run(
    sdk: SdkConfig,
    stream_arn: String,
    publisher: Arc<dyn Publisher>,
    failure_queue_url: Option<String>,
    settings: Settings,
) -> Result<()> {
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let failures = FailureQueue {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        url: failure_queue_url,
        stream_arn: stream_arn.clone(),
    };
    let shards = settings.virtual_shards.max(1);
    let mut senders = Vec::with_capacity(shards);
    let mut workers = Vec::with_capacity(shards);
    for shard in 0..shards {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        workers.push(tokio::spawn(process_shard(
            format!("virtual-shard-{shard:02}"),
            rx,
            publisher.clone(),
            failures.clone(),
            settings.clone(),
        )));
    }
    let _stop_workers = AbortOnDrop(workers);

    // Per moto shard: its iterator (None once the shard is closed) and the
    // last sequence number read, to resume after an error.
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    let mut last_read: HashMap<String, String> = HashMap::new();
    let mut since_describe = Duration::MAX;
    loop {
        // Lambda's poller never gives up on a stream: an error (moto slow to
        // answer under load, an expired iterator) is logged and the read
        // resumes after the last record read.
        match poll_once(
            &streams,
            &stream_arn,
            &mut iterators,
            &mut last_read,
            &mut since_describe,
            &senders,
            shards,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                since_describe = since_describe.saturating_add(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the stream failed; resuming after the last record read");
                iterators.clear();
                since_describe = Duration::MAX;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// One pass over the shards: new shards' iterators (every 5 s), then one
/// `GetRecords` each, each record sent to its virtual shard. `Ok(false)`
/// when nothing was read.
async fn poll_once(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    iterators: &mut HashMap<String, Option<String>>,
    last_read: &mut HashMap<String, String>,
    since_describe: &mut Duration,
    senders: &[mpsc::UnboundedSender<Polled>],
    shards: usize,
) -> Result<bool> {
    if *since_describe > Duration::from_secs(5) {
        let description = streams
            .describe_stream()
            .stream_arn(stream_arn)
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
            let request = streams
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(shard_id);
            let request = match last_read.get(shard_id) {
                Some(sequence) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(sequence),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = request.send().await?.shard_iterator().map(str::to_owned);
            iterators.insert(shard_id.to_owned(), iterator);
        }
        *since_describe = Duration::ZERO;
    }
    let mut read = false;
    for (shard_id, iterator) in iterators.iter_mut() {
        let Some(current) = iterator.clone() else {
            continue;
        };
        // 100 records a read: moto answers a larger read slowly enough,
        // under load, to time out again and again.
        let output = streams
            .get_records()
            .shard_iterator(current)
            .limit(100)
            .send()
            .await?;
        *iterator = output.next_shard_iterator().map(str::to_owned);
        for record in output.records() {
            read = true;
            let (partition_key, polled) = convert(record);
            last_read.insert(shard_id.clone(), polled.record.id.clone());
            let shard = virtual_shard(&partition_key, shards);
            senders[shard]
                .send(polled)
                .map_err(|_| anyhow!("virtual shard {shard} stopped"))?;
        }
    }
    Ok(read)
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn convert(record: &aws_sdk_dynamodbstreams::types::Record) -> (String, Polled) {
    let change = record.dynamodb();
    let id = change
        .and_then(|c| c.sequence_number())
        .or(record.event_id())
        .unwrap_or_default()
        .to_owned();
    let partition_key = change
        .and_then(|c| c.keys())
        .and_then(|k| k.get("pk"))
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let arrival = change
        .and_then(|c| c.approximate_creation_date_time())
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let event_name = record
        .event_name()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let record = StreamRecord::parse(id, event_name, || {
        change
            .and_then(|c| c.new_image())
            .map(|image| serde_dynamo::from_item(image.clone()))
    });
    (partition_key, Polled { record, arrival })
}

/// How one invocation ended.
enum Invocation {
    /// Every record done.
    Success,
    /// A partial batch response: the position of the lowest reported record.
    Partial(usize),
    /// The function failed as a whole (error, panic, or timeout).
    FunctionError,
}

async fn invoke(
    publisher: &Arc<dyn Publisher>,
    batch: &[Polled],
    settings: &Settings,
) -> Invocation {
    let records: Vec<StreamRecord> = batch.iter().map(|p| p.record.clone()).collect();
    let publisher = publisher.clone();
    let mut run = tokio::spawn(async move {
        let report = fanout(publisher.as_ref(), &records).await;
        // The fanout function's metrics line, as a log line for the
        // terminal.
        tracing::info!(
            published = report.published,
            skipped = report.skipped,
            failed = report.failed.len(),
            "fanout done"
        );
        let isolate = report.isolate_poison(records.len());
        let first = records.iter().position(|r| report.failed.contains(&r.id));
        (isolate, first)
    });
    match tokio::time::timeout(settings.function_timeout, &mut run).await {
        Ok(Ok((false, None))) => Invocation::Success,
        Ok(Ok((false, Some(first)))) => Invocation::Partial(first),
        // The handler fails the invocation (FanoutHandler::handle), or it
        // panicked.
        Ok(_) => Invocation::FunctionError,
        Err(_) => {
            // Out of time: Lambda stops the invocation; so does the poller.
            run.abort();
            Invocation::FunctionError
        }
    }
}

/// One virtual shard: batches from its checkpoint, one at a time.
async fn process_shard(
    shard_id: String,
    mut incoming: mpsc::UnboundedReceiver<Polled>,
    publisher: Arc<dyn Publisher>,
    failures: FailureQueue,
    settings: Settings,
) {
    let mut pending: VecDeque<Polled> = VecDeque::new();
    // Retries at the current checkpoint, and the batch size after halving.
    let (mut retries, mut limit) = (0u32, settings.batch_size.max(1));
    loop {
        if pending.is_empty() {
            match incoming.recv().await {
                Some(polled) => pending.push_back(polled),
                None => return,
            }
            gather(&mut incoming, &mut pending, &settings).await;
        }
        while let Ok(polled) = incoming.try_recv() {
            pending.push_back(polled);
        }
        let batch: Vec<Polled> = pending.iter().take(limit).cloned().collect();
        match invoke(&publisher, &batch, &settings).await {
            Invocation::Success => {
                pending.drain(..batch.len());
                (retries, limit) = (0, settings.batch_size.max(1));
                continue;
            }
            Invocation::Partial(first) if first > 0 => {
                // The checkpoint moves to the lowest reported record.
                pending.drain(..first);
                (retries, limit) = (0, settings.batch_size.max(1));
            }
            Invocation::FunctionError if settings.bisect_on_function_error && batch.len() > 1 => {
                limit = batch.len().div_ceil(2);
                continue;
            }
            Invocation::Partial(_) | Invocation::FunctionError => retries += 1,
        }
        if retries > settings.maximum_retry_attempts {
            // Each failed invocation at this checkpoint counted one: the
            // first attempt and every retry.
            send_to_on_failure(&failures, &shard_id, &batch, retries).await;
            pending.drain(..batch.len());
            (retries, limit) = (0, settings.batch_size.max(1));
            continue;
        }
        if retries > 0 {
            tokio::time::sleep(settings.retry_delay(retries)).await;
        }
    }
}

/// The batching window: from a shard's first record after it was idle,
/// what arrives within `batching_window`, until the batch is full.
async fn gather(
    incoming: &mut mpsc::UnboundedReceiver<Polled>,
    pending: &mut VecDeque<Polled>,
    settings: &Settings,
) {
    if settings.batching_window.is_zero() {
        return;
    }
    let closes = tokio::time::Instant::now() + settings.batching_window;
    while pending.len() < settings.batch_size.max(1) {
        match tokio::time::timeout_at(closes, incoming.recv()).await {
            Ok(Some(polled)) => pending.push_back(polled),
            Ok(None) | Err(_) => return,
        }
    }
}

/// The record AWS sends an SQS on-failure destination for a DynamoDB
/// stream batch whose retries are exhausted: where the batch is, not what.
fn failure_record(
    stream_arn: &str,
    shard_id: &str,
    batch: &[Polled],
    invocations: u32,
) -> serde_json::Value {
    let first = batch.first();
    let last = batch.last();
    serde_json::json!({
        "requestContext": {
            "requestId": uuid_like(shard_id, first.map(|p| p.record.id.as_str()).unwrap_or_default()),
            "functionArn": "arn:aws:lambda:local:000000000000:function:fanout",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invocations,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": null,
        },
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first.map(|p| p.record.id.as_str()),
            "endSequenceNumber": last.map(|p| p.record.id.as_str()),
            "approximateArrivalOfFirstRecord": first.map(|p| p.arrival.as_str()),
            "approximateArrivalOfLastRecord": last.map(|p| p.arrival.as_str()),
            "batchSize": batch.len(),
            "streamArn": stream_arn,
        },
    })
}

fn uuid_like(a: &str, b: &str) -> String {
    let h = hex::encode(&Sha256::digest(format!("{a}/{b}").as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn send_to_on_failure(
    failures: &FailureQueue,
    shard_id: &str,
    batch: &[Polled],
    invocations: u32,
) {
    let body = failure_record(&failures.stream_arn, shard_id, batch, invocations);
    let ids: Vec<&str> = batch.iter().map(|p| p.record.id.as_str()).collect();
    tracing::error!(shard = shard_id, records = ?ids, "retries exhausted; sending the batch to the on-failure queue");
    let Some(url) = &failures.url else {
        return;
    };
    if let Err(e) = failures
        .sqs
        .send_message()
        .queue_url(url)
        .message_body(body.to_string())
        .send()
        .await
    {
        tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not record the failure");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_key_has_one_virtual_shard_and_keys_spread() {
        let shards: std::collections::BTreeSet<usize> = (0..64)
            .map(|i| virtual_shard(&format!("zipmessage#default#c{i}"), 4))
            .collect();
        assert_eq!(shards.len(), 4, "64 keys reach every shard");
        assert_eq!(virtual_shard("x", 4), virtual_shard("x", 4));
        assert_eq!(virtual_shard("x", 1), 0);
    }

    fn polled(id: &str) -> Polled {
        Polled {
            record: StreamRecord::parse(id.to_owned(), "REMOVE".to_owned(), || {
                None::<Result<switchboard_types::StoredEvent, String>>
            }),
            arrival: String::new(),
        }
    }

    /// What one invocation would take: the first record, then what the
    /// window gathers.
    async fn first_batch(window_ms: u64, batch_size: usize) -> Vec<String> {
        let settings = Settings {
            batching_window: Duration::from_millis(window_ms),
            batch_size,
            ..Settings::default()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        for id in ["1", "2"] {
            tx.send(polled(id)).expect("open");
        }
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            tx.send(polled("3")).expect("open");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            tx.send(polled("4")).expect("open");
        });
        let mut pending = VecDeque::from([rx.recv().await.expect("first")]);
        gather(&mut rx, &mut pending, &settings).await;
        later.abort();
        pending.iter().map(|p| p.record.id.clone()).collect()
    }

    #[tokio::test]
    async fn a_batching_window_gathers_what_arrives_within_it() {
        // No window: nothing is gathered (the shard then takes what has
        // already arrived).
        assert_eq!(first_batch(0, 100).await, ["1"]);
        // A window takes what arrives within it, not what comes after.
        assert_eq!(first_batch(800, 100).await, ["1", "2", "3"]);
        // A full batch does not wait for the window to close.
        let started = std::time::Instant::now();
        assert_eq!(first_batch(5000, 2).await, ["1", "2"]);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn retry_delays_double_to_a_second() {
        let s = Settings::default();
        let delays: Vec<u128> = (1..=6).map(|a| s.retry_delay(a).as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000]);
    }
}
