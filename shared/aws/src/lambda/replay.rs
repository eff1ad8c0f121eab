//! The replay function's handler: re-publishes stored events, in Lambda
//! and in `switchboard-local replay` alike.

use super::{time_left, tool_request, tool_run};
use crate::config::{process_env, table_name, ConfigError, Lookup, QueueUrls};
use crate::metrics::{self, Metrics};
use crate::sdk::sdk_config;
use crate::{DynamoStore, SqsPublisher};
use aws_config::SdkConfig;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use std::sync::Arc;
use switchboard_pipeline::{replay, Publisher, ReplayReport};

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
        Self::from_lookup(&process_env, &sdk_config().await)
    }

    /// The handler a function environment describes (the local stack
    /// passes the template's).
    pub fn from_lookup(env: Lookup<'_>, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table_name(env)?),
            Arc::new(SqsPublisher::new(
                aws_sdk_sqs::Client::new(sdk),
                QueueUrls::from_lookup(env)?,
            )),
            Metrics::from_lookup(env),
        ))
    }

    /// Runs one request (the function's JSON event) while `keep_going`
    /// says another page fits, and returns its report.
    pub async fn run(
        &self,
        payload: serde_json::Value,
        keep_going: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<ReplayReport, lambda_runtime::Error> {
        let (request, selection) = tool_request(payload)?;
        let replay_id = request.replay_id()?;
        let run = tool_run(&request, keep_going);
        Ok(replay(
            &self.archive,
            self.publisher.as_ref(),
            &selection,
            &replay_id,
            &run,
        )
        .await?)
    }

    /// Runs one replay invocation, up to its deadline, and emits its metrics.
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<ReplayReport, lambda_runtime::Error> {
        let report = self
            .run(event.payload, &time_left(event.context.deadline))
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
