//! The fanout function's handler: DynamoDB stream records to the queues.

use crate::config::{process_env, ConfigError, QueueUrls};
use crate::metrics::{self, Metrics};
use crate::sdk::sdk_config;
use crate::SqsPublisher;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use std::sync::Arc;
use switchboard_pipeline::{fanout, Publisher, StreamRecord};

/// The fanout function's handler.
#[derive(Clone)]
pub struct FanoutHandler {
    publisher: Arc<dyn Publisher>,
    metrics: Metrics,
}

impl std::fmt::Debug for FanoutHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutHandler").finish_non_exhaustive()
    }
}

impl FanoutHandler {
    /// Wraps a publisher.
    pub fn new(publisher: Arc<dyn Publisher>, metrics: Metrics) -> Self {
        Self { publisher, metrics }
    }

    /// Cold-start wiring: queue URLs and the SQS client, once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let queues = QueueUrls::from_lookup(&process_env)?;
        let sdk = sdk_config().await;
        Ok(Self::new(
            Arc::new(SqsPublisher::new(aws_sdk_sqs::Client::new(&sdk), queues)),
            Metrics::from_lookup(&process_env),
        ))
    }

    /// Publishes a batch of stream records and reports the first failed one
    /// and every later one, so Lambda retries from the first failure
    /// (`ReportBatchItemFailures`); fails the invocation instead when a
    /// record that can never be published heads a longer batch
    /// ([`FanoutReport::isolate_poison`](switchboard_pipeline::FanoutReport::isolate_poison)).
    pub async fn handle(
        &self,
        event: LambdaEvent<StreamEvent>,
    ) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
        let records: Vec<StreamRecord> = event
            .payload
            .records
            .into_iter()
            .map(|record| {
                let id = record
                    .change
                    .sequence_number
                    .clone()
                    .unwrap_or(record.event_id);
                let image = record.change.new_image;
                StreamRecord::parse(id, record.event_name, || {
                    Some(serde_dynamo::from_item(image))
                })
            })
            .collect();
        let report = fanout(self.publisher.as_ref(), &records).await;
        metrics::emit(&self.metrics.fanout(&report, Utc::now().timestamp_millis()));
        if report.isolate_poison(records.len()) {
            // A function error: Lambda bisects the batch until the record
            // that can never be published is alone (template:
            // BisectBatchOnFunctionError), so the records behind it go on.
            return Err(format!(
                "record {} can never be published; failing the batch so that Lambda bisects it",
                report.failed[0]
            )
            .into());
        }
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = report
            .failed
            .into_iter()
            .map(|id| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(id);
                failure
            })
            .collect();
        Ok(response)
    }
}
