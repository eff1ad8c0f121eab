//! Glue between Lambda events and the pipeline, shared by the function
//! binaries so each `main.rs` only wires things together.

use crate::config::{
    admission, load_provider, process_env, sdk_config, table_name, ConfigError, Lookup, QueueUrls,
    WebhookConfig,
};
use crate::metrics::{self, Metrics};
use crate::{DynamoStore, SqsPublisher};
use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use bytes::Bytes;
use chrono::Utc;
use lambda_http::{Body, Request, RequestExt, Response};
use lambda_runtime::LambdaEvent;
use std::sync::Arc;
use std::time::Instant;
use switchboard_pipeline::{
    fanout, replay, reprocess, Ingest, Publisher, ReplayReport, ReprocessReport, Run, Selection,
    StreamRecord, ToolRequest, WebhookRequest, PAGE_SIZE,
};
use switchboard_providers::Admission;
use switchboard_types::Provider;

/// The webhook function's handler: one provider's ingest pipeline.
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    ingest: Ingest,
    metrics: Metrics,
}

impl WebhookHandler {
    /// Wraps a pipeline.
    pub fn new(ingest: Ingest, metrics: Metrics) -> Self {
        Self { ingest, metrics }
    }

    /// Cold-start wiring: configuration, SDK clients and keys, once.
    pub async fn from_env(provider: Provider) -> Result<Self, ConfigError> {
        let sdk = sdk_config().await;
        let (ingest, _) = webhook_ingest(provider, &process_env, &sdk).await?;
        Ok(Self::new(ingest, Metrics::from_lookup(&process_env)))
    }

    /// Handles one API Gateway request: one log line and one EMF document
    /// per request. Every outcome, errors included, is an `Ok` response: an
    /// `Err` would become a generic 502.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        let started = Instant::now();
        let request = webhook_request(request);
        let now = Utc::now();
        let handled = self.ingest.handle(&request, now).await;
        let elapsed = started.elapsed();
        handled.outcome.log(elapsed);
        metrics::emit(
            &self
                .metrics
                .webhook(&handled.outcome, elapsed, now.timestamp_millis()),
        );
        Ok(handled.reply.into_response())
    }
}

/// A webhook function's pipeline from its environment: configuration, the
/// provider's keys (inline or from Secrets Manager) and the DynamoDB store.
/// The Lambda and the local stack both wire webhooks through this, so they
/// cannot drift apart.
pub async fn webhook_ingest(
    provider: Provider,
    env: Lookup<'_>,
    sdk: &SdkConfig,
) -> Result<(Ingest, WebhookConfig), ConfigError> {
    let config = WebhookConfig::from_lookup(provider, env)?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    // The keys and the table's connection at once: in AWS they are two
    // endpoints, and the table's TLS handshake then happens here rather than
    // inside the first webhook request. A plain-HTTP endpoint (moto locally)
    // has no handshake to save, only a round trip to spend, so it is not warmed.
    let warm = needs_tls(sdk.endpoint_url());
    let (verifier, ()) = tokio::join!(load_provider(&config, sdk), async {
        if warm {
            warm_table_connection(&dynamo, &config.table_name).await;
        }
    });
    let verifier = verifier?;
    let store = DynamoStore::new(dynamo, &config.table_name);
    if config.provider == Provider::Partoo && config.admission.partoo_org_ids.is_empty() {
        tracing::warn!(
            "PARTOO_ORG_IDS lists no organisation: every Partoo event is kept as quarantined \
             (org_not_allowed) and none is published until it does"
        );
    }
    let ingest = Ingest::new(verifier, Arc::new(store), config.limits)
        .with_admission(config.admission.clone());
    Ok((ingest, config))
}

/// Whether the first call to an endpoint opens a TLS connection: every AWS
/// endpoint does (no override), an `http://` override such as moto does not.
fn needs_tls(endpoint_override: Option<&str>) -> bool {
    endpoint_override.is_none_or(|url| !url.trim().to_ascii_lowercase().starts_with("http://"))
}

/// How long init waits for the table's connection before going on without it.
const WARM_UP_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

/// Opens the connection to DynamoDB during init with the cheapest call on
/// the table (`DescribeTable`: metadata only, no capacity used), so the
/// first request's PutItem finds a warm, TLS-established connection in the
/// pool. Best effort: a failure or a slow answer is logged and init goes on;
/// the first request then connects as it would have anyway.
async fn warm_table_connection(client: &aws_sdk_dynamodb::Client, table: &str) {
    let call = client.describe_table().table_name(table).send();
    match tokio::time::timeout(WARM_UP_BUDGET, call).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(
            error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error),
            "warming the DynamoDB connection failed; the first request will connect"
        ),
        Err(_) => tracing::warn!(
            budget_ms = WARM_UP_BUDGET.as_millis() as u64,
            "warming the DynamoDB connection timed out; the first request will connect"
        ),
    }
}

/// The path token of `/webhooks/zipmessage/{token}`: API Gateway's path
/// parameter, or the last path segment when the event has none.
fn path_token(request: &Request) -> Option<String> {
    request
        .path_parameters()
        .first("token")
        .map(str::to_owned)
        .or_else(|| {
            let path = request.raw_http_path();
            let prefix = Provider::Zipmessage.route().trim_end_matches("{token}");
            path.strip_prefix(prefix)
                .filter(|t| !t.is_empty() && !t.contains('/'))
                .map(str::to_owned)
        })
}

/// Converts a Lambda HTTP request into the pipeline's request.
pub fn webhook_request(request: Request) -> WebhookRequest {
    let path_token = path_token(&request);
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        other => Bytes::copy_from_slice(other.as_ref()),
    };
    WebhookRequest {
        method: parts.method,
        headers: parts.headers,
        body,
        path_token,
    }
}

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

    /// Publishes a batch of stream records and reports the failed ones, so
    /// Lambda retries from the first failure (`ReportBatchItemFailures`).
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

/// Parses a tool's JSON event (or the local command's argument) into the
/// request and its selection, with a message that shows the expected shape.
pub fn tool_request(
    payload: serde_json::Value,
) -> Result<(ToolRequest, Selection), lambda_runtime::Error> {
    let request: ToolRequest = serde_json::from_value(payload).map_err(|e| {
        format!(
            "invalid request: {e}; expected one of {{\"window\": {{\"from\": …, \"to\": …}}}}, \
             {{\"conversation\": {{\"provider\": …, \"key\": …}}}}, {{\"event_ids\": […]}}, \
             optionally with \"cursor\" (an earlier report's) and, for replay, \"replay_id\""
        )
    })?;
    let selection = request.selection()?;
    Ok((request, selection))
}

/// Time a tool keeps for its last page when it stops: a page is one Query,
/// one BatchGetItem and a few SendMessageBatch calls, each given up by the
/// SDK after 5 s (config.rs), so this leaves room for one slow page.
const LAST_PAGE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether another page fits before the invocation's `deadline` (epoch
/// milliseconds, as the Lambda context gives it).
fn time_left(deadline_ms: u64) -> impl Fn() -> bool + Send + Sync {
    move || {
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(u64::MAX);
        now.saturating_add(LAST_PAGE.as_millis() as u64) < deadline_ms
    }
}

/// The replay function's handler.
#[derive(Clone)]
pub struct ReplayHandler {
    archive: DynamoStore,
    publisher: Arc<dyn Publisher>,
    metrics: Metrics,
}

impl std::fmt::Debug for ReplayHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayHandler").finish_non_exhaustive()
    }
}

impl ReplayHandler {
    /// Wraps an archive and a publisher.
    pub fn new(archive: DynamoStore, publisher: Arc<dyn Publisher>, metrics: Metrics) -> Self {
        Self {
            archive,
            publisher,
            metrics,
        }
    }

    /// Cold-start wiring: table, queues and clients, once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = table_name(&process_env)?;
        let queues = QueueUrls::from_lookup(&process_env)?;
        let sdk = sdk_config().await;
        Ok(Self::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
            Arc::new(SqsPublisher::new(aws_sdk_sqs::Client::new(&sdk), queues)),
            Metrics::from_lookup(&process_env),
        ))
    }

    /// Runs one replay request and returns its report.
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<ReplayReport, lambda_runtime::Error> {
        let keep_going = time_left(event.context.deadline);
        let (request, selection) = tool_request(event.payload)?;
        let replay_id = request.replay_id()?;
        let run = Run {
            cursor: request.cursor.as_deref(),
            page_size: PAGE_SIZE,
            keep_going: &keep_going,
        };
        let report = replay(
            &self.archive,
            self.publisher.as_ref(),
            &selection,
            &replay_id,
            &run,
        )
        .await?;
        metrics::emit(&self.metrics.counts(
            &[
                ("replayed", report.published),
                ("replay_failed", report.failed.len()),
            ],
            Utc::now().timestamp_millis(),
        ));
        Ok(report)
    }
}

/// The reprocess function's handler.
#[derive(Debug, Clone)]
pub struct ReprocessHandler {
    store: DynamoStore,
    admission: Admission,
    metrics: Metrics,
}

impl ReprocessHandler {
    /// Wraps the table and the admission settings the webhooks use.
    pub fn new(store: DynamoStore, admission: Admission, metrics: Metrics) -> Self {
        Self {
            store,
            admission,
            metrics,
        }
    }

    /// Cold-start wiring: table, admission settings and client, once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = table_name(&process_env)?;
        let sdk = sdk_config().await;
        Ok(Self::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
            admission(&process_env),
            Metrics::from_lookup(&process_env),
        ))
    }

    /// Runs one reprocess request and returns its report.
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<ReprocessReport, lambda_runtime::Error> {
        let keep_going = time_left(event.context.deadline);
        let (request, selection) = tool_request(event.payload)?;
        let run = Run {
            cursor: request.cursor.as_deref(),
            page_size: PAGE_SIZE,
            keep_going: &keep_going,
        };
        let report = reprocess(&self.store, &self.store, &self.admission, &selection, &run).await?;
        metrics::emit(&self.metrics.counts(
            &[
                ("reprocessed", report.accepted.len()),
                ("reprocess_failed", report.failed.len()),
            ],
            Utc::now().timestamp_millis(),
        ));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::needs_tls;

    #[test]
    fn only_plain_http_endpoints_skip_the_connection_warm_up() {
        assert!(needs_tls(None), "AWS's own endpoints are HTTPS");
        assert!(needs_tls(Some("https://dynamodb.eu-west-1.amazonaws.com")));
        assert!(!needs_tls(Some("http://127.0.0.1:4566")));
        assert!(!needs_tls(Some(" HTTP://localhost:8000")));
    }
}
