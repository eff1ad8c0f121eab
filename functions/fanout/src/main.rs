//! The fanout Lambda: DynamoDB stream → SQS FIFO queues.
//! Wiring only: everything it runs lives in the shared crates.
#![forbid(unsafe_code)]

use lambda_runtime::{run, service_fn, Error};
use switchboard_aws::lambda::FanoutHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchboard_aws::logging::init();
    let handler = FanoutHandler::from_env().await?;
    run(service_fn(|event| handler.handle(event))).await
}
