//! The SQS publisher: `SendMessageBatch` to the family's FIFO queue.

use crate::config::QueueUrls;
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use switchboard_pipeline::{OutgoingMessage, PublishError, Publisher};
use switchboard_types::Family;

/// Publishes to the three family queues.
#[derive(Debug, Clone)]
pub struct SqsPublisher {
    client: Client,
    queues: QueueUrls,
}

impl SqsPublisher {
    /// A publisher over the given queues.
    pub fn new(client: Client, queues: QueueUrls) -> Self {
        Self { client, queues }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, PublishError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PublishError(e.to_string()))
}

#[async_trait]
impl Publisher for SqsPublisher {
    async fn send_batch(
        &self,
        family: Family,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<String>, PublishError> {
        let url =
            self.queues.0.get(&family).ok_or_else(|| {
                PublishError(format!("no queue configured for {}", family.as_str()))
            })?;
        let mut entries = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(&message.body)
                .message_group_id(&message.group_id)
                .message_deduplication_id(&message.dedup_id);
            for (name, value) in message.attributes() {
                entry = entry.message_attributes(name, attribute(value)?);
            }
            entries.push(entry.build().map_err(|e| PublishError(e.to_string()))?);
        }
        let output = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| PublishError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        let mut failed = Vec::new();
        for failure in output.failed() {
            tracing::warn!(
                family = family.as_str(),
                code = failure.code(),
                sender_fault = failure.sender_fault(),
                "message not accepted by SQS"
            );
            let index = failure
                .id()
                .strip_prefix('m')
                .and_then(|i| i.parse::<usize>().ok());
            match index.and_then(|i| messages.get(i)) {
                Some(message) => failed.push(message.dedup_id.clone()),
                None => {
                    return Err(PublishError(format!(
                        "SQS reported an unknown entry id {}",
                        failure.id()
                    )))
                }
            }
        }
        Ok(failed)
    }
}
