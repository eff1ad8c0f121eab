//! The reprocess Lambda: re-decodes quarantined events and accepts those
//! that now decode (`sam remote invoke ReprocessFunction --event …`).
//! Wiring only: everything it runs lives in the shared crates.
#![forbid(unsafe_code)]

use lambda_runtime::{run, service_fn, Error};
use switchboard_aws::lambda::ReprocessHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchboard_aws::logging::init();
    let handler = ReprocessHandler::from_env().await?;
    run(service_fn(|event| handler.handle(event))).await
}
