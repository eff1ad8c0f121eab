use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchboard_consumer::{process_fifo_batch, CloudEvent, Event};

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let report = process_fifo_batch(&event.payload.records, process).await;
    if let Some(failure) = &report.failure {
        eprintln!("message {} failed: {}", failure.message_id, failure.error);
    }
    Ok(report.response)
}

/// Idempotent on `event.id`: the same event may arrive again after 5 minutes.
async fn process(event: CloudEvent) -> Result<(), Error> {
    match event.event() {
        Event::MessageCreated(m) => {
            let text = m
                .message
                .and_then(|m| m.text.as_deref())
                .unwrap_or_default();
            let conversation = event.subject.as_deref().unwrap_or("-");
            println!("{} new message in {conversation}: {text:?}", event.id);
        }
        other => println!("{} {}", event.id, other.event_type()),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handle)).await
}
