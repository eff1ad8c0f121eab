//! The replay Lambda: re-publishes stored events by time window,
//! conversation or event id (`sam remote invoke ReplayFunction --event …`).
//! Wiring only: everything it runs lives in the shared crates.
#![forbid(unsafe_code)]

use lambda_runtime::{run, service_fn, Error};
use switchboard_aws::lambda::ReplayHandler;

/// mimalloc rather than glibc's malloc: allocation is a large share of the
/// pipeline's CPU (docs/performance.md). Built with `no_thp`, so its arena
/// is not backed by 2 MiB pages, which doubled peak RSS and slowed every
/// cold start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchboard_aws::logging::init();
    let handler = ReplayHandler::from_env().await?;
    run(service_fn(|event| handler.handle(event))).await
}
