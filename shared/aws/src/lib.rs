//! AWS adapters for the pipeline: configuration from the environment, the
//! DynamoDB event store, the SQS publisher, provider keys from Secrets
//! Manager, CloudWatch metrics (EMF), and the glue between Lambda events and
//! the pipeline.
//!
//! The Lambda `main.rs` files only call into this crate; the local gateway
//! (`infra/local`) uses the same adapters against moto.
#![forbid(unsafe_code)]

/// Every binary that links this crate (the Lambda functions, the local
/// stack, the tests and the benchmarks) allocates with mimalloc rather than
/// glibc's malloc: allocation was about a fifth of the pipeline's CPU per
/// event (docs/performance.md). Built with `no_thp`: mimalloc's default
/// `madvise(MADV_HUGEPAGE)` on its 1 GiB arena made the kernel back the
/// first touches with 2 MiB pages, doubling peak RSS and adding ~2 ms of
/// page zeroing to every cold start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod config;
pub mod dynamo;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod secrets;
pub mod sqs;

pub use config::{
    key_variables, load_provider, process_env, sdk_config, sdk_loader, ConfigError, KeySource,
    Lookup, QueueUrls, WebhookConfig,
};
pub use dynamo::DynamoStore;
pub use sqs::SqsPublisher;
pub use switchboard_types::Provider;
