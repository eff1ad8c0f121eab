//! Provider keys from Secrets Manager.
//!
//! A secret holds the list of active keys of one provider, as a JSON array of
//! strings (`["new","old"]`) or as comma/space-separated text; a single
//! generated value is a list of one. Rotation: add the new key, switch the
//! provider, remove the old key.

use crate::config::ConfigError;
use aws_sdk_secretsmanager::Client;
use switchboard_providers::split_key_list;

/// Fetches and splits a secret's keys.
pub async fn fetch_keys(client: &Client, secret_id: &str) -> Result<Vec<String>, ConfigError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            secret_id: secret_id.to_owned(),
            detail: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    let text = output.secret_string().ok_or_else(|| ConfigError::Secret {
        secret_id: secret_id.to_owned(),
        detail: "the secret has no string value".into(),
    })?;
    Ok(split_key_list(text))
}
