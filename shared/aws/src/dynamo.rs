//! The DynamoDB event store: one conditional `PutItem` per event.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::Client;
use switchboard_pipeline::{EventStore, InsertOutcome, StoreError};
use switchboard_types::StoredEvent;

/// Stores events in the events table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn insert(&self, event: &StoredEvent) -> Result<InsertOutcome, StoreError> {
        let item = serde_dynamo::to_item(event)
            .map_err(|e| StoreError(format!("cannot encode item: {e}")))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // Atomic: of two concurrent copies exactly one creates the item.
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(InsertOutcome::Created),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Ok(InsertOutcome::Duplicate)
                }
                _ => Err(StoreError(
                    aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
                )),
            },
        }
    }
}
