//! The replay Lambda: re-publishes stored events by time window,
//! conversation or event id (`sam remote invoke ReplayFunction --event …`).
//! Wiring only: everything it runs lives in the shared crates.
#![forbid(unsafe_code)]

use lambda_runtime::{run, service_fn, Error};
use switchboard_aws::lambda::ReplayHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchboard_aws::logging::init();
    let handler = ReplayHandler::from_env().await?;
    run(service_fn(|event| handler.handle(event))).await
}
