//! AWS adapters for the pipeline: configuration from the environment, the
//! DynamoDB event store, the SQS publisher, provider keys from Secrets
//! Manager, CloudWatch metrics (EMF), and the glue between Lambda events and
//! the pipeline.
//!
//! The Lambda `main.rs` files only call into this crate; the local gateway
//! (`infra/local`) uses the same adapters against moto.
#![forbid(unsafe_code)]

pub mod config;
pub mod dynamo;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod sdk;
pub mod secrets;
pub mod sqs;

pub use config::{process_env, ConfigError, KeySource, Lookup, QueueUrls, WebhookConfig};
pub use dynamo::DynamoStore;
pub use sdk::{sdk_config, sdk_loader};
pub use sqs::SqsPublisher;
pub use switchboard_types::Provider;
