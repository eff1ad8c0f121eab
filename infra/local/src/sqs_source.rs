//! Local stand-in for Lambda's SQS event source mapping: polls a queue on
//! moto and invokes the real function binary through the Runtime API
//! emulator ([`crate::runtime`]), the way Lambda does:
//!
//! - a batch is up to `BatchSize` messages of one `ReceiveMessage` (long
//!   poll, 1 s), with every system and message attribute, hidden while the
//!   function runs;
//! - a message is deleted when the invocation succeeds, except those a
//!   partial batch response (`ReportBatchItemFailures`) names; a function
//!   error or timeout deletes nothing;
//! - what is not deleted reappears when the visibility timeout ends, and
//!   SQS (moto) moves it to the dead-letter queue once its receive count
//!   passes the queue's `maxReceiveCount`;
//! - on a FIFO queue SQS hands out no message of a group while an earlier
//!   one of it is hidden: the rest of a failing message's group waits.
//!
//! Where it differs, and why:
//! - The visibility timeout is [`Settings::visibility_timeout`] (`up`
//!   makes it 5 s, so a local retry takes seconds, not the queue's 60 s).
//! - The poller itself makes failed messages visible again when it ends,
//!   all of a batch in one `ChangeMessageVisibilityBatch` (their receives
//!   ask for 30 s more, so moto never does it): moto 5.2 redelivers the
//!   messages of a FIFO group that come back from in flight latest first
//!   (the first to turn visible is skipped while the next is still in
//!   flight), where AWS keeps the group's order.
//! - One poller per queue invokes one function process, one batch at a
//!   time; Lambda runs batches of different message groups concurrently
//!   and backs off after errors.

use crate::runtime::{Outcome, RuntimeApi};
use anyhow::{anyhow, Result};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One SQS event of a function in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEvent {
    /// The queue's logical id.
    pub queue: String,
    /// `BatchSize` (AWS's default: 10).
    pub batch_size: i32,
    /// `FunctionResponseTypes` includes `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
}

/// How the local event source runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The function's `Timeout`: an invocation that outlasts it fails.
    pub function_timeout: Duration,
    /// How long a message the function failed stays hidden.
    pub visibility_timeout: Duration,
}

/// What a receive asks SQS to hide for beyond the visibility timeout, so
/// the poller, not moto, makes failed messages visible again.
const MARGIN: Duration = Duration::from_secs(30);

/// A queue as the event source reads it.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Its URL.
    pub url: String,
    /// Its ARN (`eventSourceARN`).
    pub arn: String,
    /// Its region (`awsRegion`).
    pub region: String,
}

/// Polls `queue` forever, invoking `function` with each batch.
pub async fn run(
    sqs: aws_sdk_sqs::Client,
    queue: Queue,
    event: QueueEvent,
    function: Arc<RuntimeApi>,
    settings: Settings,
) {
    // The receipt handles of failed batches, and when each turns visible.
    let mut held: VecDeque<(Instant, Vec<String>)> = VecDeque::new();
    loop {
        while held.front().is_some_and(|(due, _)| *due <= Instant::now()) {
            let Some((_, receipts)) = held.pop_front() else {
                break;
            };
            if let Err(e) = release(&sqs, &queue.url, &receipts).await {
                tracing::warn!(queue = %queue.url, error = %e, "making failed messages visible failed; SQS will after 30 s");
            }
        }
        let received = Instant::now();
        let messages = match receive(&sqs, &queue, &event, &settings).await {
            Ok(messages) => messages,
            Err(e) => {
                // Lambda's pollers never give up on a queue.
                tracing::warn!(queue = %queue.url, error = %e, "receiving from the queue failed; polling again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let batch = sqs_event(&messages, &queue);
        let ids: Vec<&str> = messages.iter().filter_map(Message::message_id).collect();
        let outcome = function.invoke(&batch, settings.function_timeout).await;
        let done = match &outcome {
            Ok(Outcome::Response(response)) if event.report_batch_item_failures => {
                succeeded(&ids, response)
            }
            Ok(Outcome::Response(_)) => ids.iter().map(|id| (*id).to_owned()).collect(),
            Ok(Outcome::Error(error)) => {
                tracing::warn!(queue = %queue.url, %error, "the function failed; the batch stays on the queue");
                BTreeSet::new()
            }
            Err(e) => {
                tracing::warn!(queue = %queue.url, error = %e, "the invocation failed; the batch stays on the queue");
                BTreeSet::new()
            }
        };
        if let Err(e) = delete(&sqs, &queue.url, &messages, &done).await {
            tracing::warn!(queue = %queue.url, error = %e, "deleting processed messages failed; they will be delivered again");
        }
        let failed: Vec<String> = messages
            .iter()
            .filter(|m| m.message_id().is_none_or(|id| !done.contains(id)))
            .filter_map(|m| m.receipt_handle().map(str::to_owned))
            .collect();
        if !failed.is_empty() {
            held.push_back((received + settings.visibility_timeout, failed));
        }
    }
}

/// Makes `receipts` visible again, in their order, in one call.
async fn release(sqs: &aws_sdk_sqs::Client, url: &str, receipts: &[String]) -> Result<()> {
    for chunk in receipts.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, receipt)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        sqs.change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    }
    Ok(())
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue: &Queue,
    event: &QueueEvent,
    settings: &Settings,
) -> Result<Vec<Message>> {
    let mut request = sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(event.batch_size.clamp(1, 10))
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All");
    let hidden = settings.visibility_timeout + MARGIN;
    request = request.visibility_timeout(i32::try_from(hidden.as_secs()).unwrap_or(43_200));
    let output = request
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    Ok(output.messages.unwrap_or_default())
}

/// The ids of a batch Lambda deletes after a partial batch response, by
/// the rules AWS documents: an absent, null or empty `batchItemFailures`
/// (or an empty or null response) is complete success; an item whose
/// `itemIdentifier` is missing, null, empty or not a message of the batch
/// is complete failure; otherwise everything not named succeeded.
pub fn succeeded(ids: &[&str], response: &Value) -> BTreeSet<String> {
    let all = || ids.iter().map(|id| (*id).to_owned()).collect();
    let failures = match response {
        Value::Null => return all(),
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return all(),
            Some(Value::Array(items)) => items,
            Some(_) => return BTreeSet::new(),
        },
        _ => return BTreeSet::new(),
    };
    let mut failed = BTreeSet::new();
    for item in failures {
        match item.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && ids.contains(&id) => {
                failed.insert(id);
            }
            _ => return BTreeSet::new(),
        }
    }
    ids.iter()
        .filter(|id| !failed.contains(*id))
        .map(|id| (*id).to_owned())
        .collect()
}

async fn delete(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[Message],
    done: &BTreeSet<String>,
) -> Result<()> {
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| m.message_id().is_some_and(|id| done.contains(id)))
        .enumerate()
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
        })
        .collect::<Result<_, _>>()?;
    if entries.is_empty() {
        return Ok(());
    }
    let output = sqs
        .delete_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    if let Some(failed) = output.failed().first() {
        return Err(anyhow!(
            "{} of the deletes failed, first: {}",
            output.failed().len(),
            failed.message().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The event Lambda sends a function for `messages` of `queue`, as
/// `aws_lambda_events::event::sqs::SqsEvent` reads it.
pub fn sqs_event(messages: &[Message], queue: &Queue) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.as_str())))
                .collect();
            let message_attributes: Map<String, Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        json!({
                            "stringValue": value.string_value(),
                            "binaryValue": value.binary_value().map(|b| {
                                use base64::Engine;
                                base64::engine::general_purpose::STANDARD.encode(b.as_ref())
                            }),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": value.data_type(),
                        }),
                    )
                })
                .collect();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "md5OfMessageAttributes": m.md5_of_message_attributes(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.arn,
                "awsRegion": queue.region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A queue's ARN and visibility timeout, from SQS.
pub async fn queue_attributes(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(String, Duration)> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    let get = |name| output.attributes().and_then(|a| a.get(&name)).cloned();
    let arn = get(QueueAttributeName::QueueArn).ok_or_else(|| anyhow!("{url} has no ARN"))?;
    let visibility = get(QueueAttributeName::VisibilityTimeout)
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs);
    Ok((arn, visibility))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn a_partial_batch_response_is_read_as_aws_documents_it() {
        let ids = ["a", "b", "c"];
        // Complete success.
        for response in [
            Value::Null,
            json!({}),
            json!({ "batchItemFailures": null }),
            json!({ "batchItemFailures": [] }),
        ] {
            assert_eq!(succeeded(&ids, &response), set(&ids), "{response}");
        }
        // The failures named, and only they, stay.
        assert_eq!(
            succeeded(
                &ids,
                &json!({ "batchItemFailures": [{ "itemIdentifier": "b" }, { "itemIdentifier": "c" }] })
            ),
            set(&["a"])
        );
        // Complete failure.
        for response in [
            json!({ "batchItemFailures": [{ "itemIdentifier": "" }] }),
            json!({ "batchItemFailures": [{ "itemIdentifier": null }] }),
            json!({ "batchItemFailures": [{ "itemId": "b" }] }),
            json!({ "batchItemFailures": [{ "itemIdentifier": "z" }] }),
            json!({ "batchItemFailures": "b" }),
            json!("not a response"),
        ] {
            assert_eq!(succeeded(&ids, &response), set(&[]), "{response}");
        }
    }
}
