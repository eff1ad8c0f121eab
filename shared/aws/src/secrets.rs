//! Provider keys from Secrets Manager.
//!
//! A secret holds the list of active keys of one provider, as a JSON array
//! (`["new","old"]`, with `{"tenant": "acme", "key": "…"}` objects for
//! labelled keys) or as comma/space-separated text (ZipMessage tokens may be
//! `acme:token`); a single generated value is a list of one. The provider's
//! registry descriptor parses it (`parse_credentials`). Rotation: add the
//! new key (under the same label), switch the provider, remove the old key.

use crate::config::ConfigError;
use aws_sdk_secretsmanager::Client;

/// Fetches a secret's text.
pub async fn fetch(client: &Client, secret_id: &str) -> Result<String, ConfigError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            secret_id: secret_id.to_owned(),
            detail: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| ConfigError::Secret {
            secret_id: secret_id.to_owned(),
            detail: "the secret has no string value".into(),
        })
}
