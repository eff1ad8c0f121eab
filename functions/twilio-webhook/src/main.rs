//! The Twilio webhook Lambda (`POST /webhooks/twilio` behind API Gateway).
//! Wiring only: everything it runs lives in the shared crates.
#![forbid(unsafe_code)]

use lambda_http::{run, service_fn, Error};
use switchboard_aws::lambda::WebhookHandler;
use switchboard_aws::Provider;

/// mimalloc rather than glibc's malloc: allocation is a large share of the
/// pipeline's CPU (docs/performance.md). Built with `no_thp`, so its arena
/// is not backed by 2 MiB pages, which doubled peak RSS and slowed every
/// cold start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchboard_aws::logging::init();
    let handler = WebhookHandler::from_env(Provider::Twilio).await?;
    run(service_fn(|request| handler.handle(request))).await
}
