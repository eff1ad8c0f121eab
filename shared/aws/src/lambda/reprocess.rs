//! The reprocess function's handler: decodes quarantined events again, in
//! Lambda and in `switchboard-local reprocess` alike.

use super::{time_left, tool_request, tool_run};
use crate::config::{process_env, table_name, ConfigError, Lookup};
use crate::metrics::{self, Metrics};
use crate::sdk::sdk_config;
use crate::DynamoStore;
use aws_config::SdkConfig;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use switchboard_pipeline::{reprocess, ReprocessReport};
use switchboard_providers::Admission;

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
        Self::from_lookup(&process_env, &sdk_config().await)
    }

    /// The handler a function environment describes (the local stack
    /// passes the template's).
    pub fn from_lookup(env: Lookup<'_>, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table_name(env)?),
            Admission::from_lookup(env),
            Metrics::from_lookup(env),
        ))
    }

    /// Runs one request (the function's JSON event) while `keep_going`
    /// says another page fits, and returns its report.
    pub async fn run(
        &self,
        payload: serde_json::Value,
        keep_going: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<ReprocessReport, lambda_runtime::Error> {
        let (request, selection) = tool_request(payload)?;
        let run = tool_run(&request, keep_going);
        Ok(reprocess(&self.store, &self.store, &self.admission, &selection, &run).await?)
    }

    /// Runs one reprocess invocation, up to its deadline, and emits its metrics.
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<ReprocessReport, lambda_runtime::Error> {
        let report = self
            .run(event.payload, &time_left(event.context.deadline))
            .await?;
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
