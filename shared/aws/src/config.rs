//! Typed configuration, read once per cold start from the environment.
//!
//! | variable | used by | meaning |
//! |---|---|---|
//! | `TABLE_NAME` | webhooks, replay, reprocess | the events table |
//! | `MAX_BODY_BYTES` | webhooks | body limit (default 262144, at most 389120) |
//! | `RETENTION_DAYS` | webhooks | days to keep events (DynamoDB TTL); 0 or unset keeps them forever |
//! | each provider's inline keys / secret id | its webhook | [`Credentials`](switchboard_providers::registry::Credentials): inline (local) or the Secrets Manager secret holding them |
//! | each provider's settings | its webhook (and `reprocess` where marked) | [`Setting`](switchboard_providers::registry::Setting) |
//! | `CONVERSATIONS_QUEUE_URL`, `MESSAGES_QUEUE_URL`, `OTHER_QUEUE_URL` | fanout, replay | the FIFO queues |
//! | `METRICS_NAMESPACE` | all | CloudWatch namespace of the EMF metrics (default `Switchboard`) |
//!
//! The providers' own variables come from the registry; docs/configuration.md's
//! configuration table lists them all. Inline keys win over the secret; in
//! AWS only the secret ids are set, so no secret value sits in the
//! function's environment.

use crate::secrets;
use aws_config::SdkConfig;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_pipeline::Limits;
use switchboard_providers::registry::{descriptor, Settings};
use switchboard_providers::{parse_credentials, Admission, Credential, WebhookProvider};
use switchboard_types::{Family, Provider};

/// A configuration problem, named precisely enough to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable has an unusable value (the value itself is never echoed).
    #[error("environment variable {name} is invalid: {detail}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        detail: String,
    },
    /// Neither inline keys nor a secret id is set.
    #[error("set {inline} (comma-separated) or {secret} (a Secrets Manager secret id)")]
    NoKeys {
        /// The inline variable.
        inline: &'static str,
        /// The secret-id variable.
        secret: &'static str,
    },
    /// The secret could not be read.
    #[error("could not read secret {secret_id}: {detail}")]
    Secret {
        /// The secret id (not its value).
        secret_id: String,
        /// Why.
        detail: String,
    },
    /// The keys or a provider setting are unusable.
    #[error(transparent)]
    Provider(#[from] switchboard_providers::ConfigError),
}

/// Where configuration values come from: the process environment in Lambda,
/// a function's environment from template.yaml in the local stack.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn var(env: Lookup<'_>, name: &'static str) -> Option<String> {
    env(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn required(env: Lookup<'_>, name: &'static str) -> Result<String, ConfigError> {
    var(env, name).ok_or(ConfigError::Missing(name))
}

fn parsed<T: std::str::FromStr>(
    env: Lookup<'_>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match var(env, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
            name,
            detail: "not a whole number".into(),
        }),
    }
}

/// Where a provider's keys come from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Listed in the environment (local stack and tests only), parsed.
    Inline(Vec<Credential>),
    /// A Secrets Manager secret id, read once per cold start.
    Secret(String),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never print key material.
            KeySource::Inline(keys) => write!(f, "Inline({} keys)", keys.len()),
            KeySource::Secret(id) => f.debug_tuple("Secret").field(id).finish(),
        }
    }
}

/// Configuration of one webhook function: everything it reads from its
/// environment, read in one place (the template test checks these names
/// against template.yaml).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Which provider this function serves.
    pub provider: Provider,
    /// The events table.
    pub table_name: String,
    /// Body limit and retention.
    pub limits: Limits,
    /// The provider's keys.
    pub keys: KeySource,
    /// The provider's own settings, defaults applied and checked.
    pub settings: Settings,
    /// Which authentic events are published (from the settings).
    pub admission: Admission,
    /// What the provider's check says is valid but publishes nothing.
    pub warning: Option<String>,
}

impl WebhookConfig {
    /// Reads the configuration for `provider`: the shared variables, then
    /// the keys and settings its registry descriptor declares.
    pub fn from_lookup(provider: Provider, env: Lookup<'_>) -> Result<Self, ConfigError> {
        let max_body_bytes = parsed(env, "MAX_BODY_BYTES", Limits::DEFAULT_MAX_BODY_BYTES)?;
        if max_body_bytes == 0 || max_body_bytes > switchboard_pipeline::item::MAX_BODY_LIMIT {
            return Err(ConfigError::Invalid {
                name: "MAX_BODY_BYTES",
                detail: format!(
                    "must be between 1 and {}",
                    switchboard_pipeline::item::MAX_BODY_LIMIT
                ),
            });
        }
        let descriptor = descriptor(provider);
        let (inline, secret) = (descriptor.credentials.inline, descriptor.credentials.secret);
        let keys = match (var(env, inline), var(env, secret)) {
            (Some(list), _) => KeySource::Inline(parse_credentials(descriptor, &list)?),
            (None, Some(secret_id)) => KeySource::Secret(secret_id),
            (None, None) => return Err(ConfigError::NoKeys { inline, secret }),
        };
        let retention_days: u32 = parsed(env, "RETENTION_DAYS", 0)?;
        let settings =
            Settings::resolve(descriptor, env, retention_days).map_err(ConfigError::Missing)?;
        let warning = (descriptor.check)(&settings)?;
        let admission = Admission::from_lookup(&|name| settings.get(name).map(str::to_owned));
        Ok(Self {
            provider,
            table_name: required(env, "TABLE_NAME")?,
            limits: Limits {
                max_body_bytes,
                retention_days,
            },
            keys,
            settings,
            admission,
            warning,
        })
    }

    /// Builds the configured provider: its keys inline, or fetched once
    /// from Secrets Manager.
    pub async fn load_provider(
        &self,
        sdk: &SdkConfig,
    ) -> Result<Arc<dyn WebhookProvider>, ConfigError> {
        let descriptor = descriptor(self.provider);
        let keys = match &self.keys {
            KeySource::Inline(keys) => keys.clone(),
            KeySource::Secret(secret_id) => {
                let client = aws_sdk_secretsmanager::Client::new(sdk);
                let text = secrets::fetch(&client, secret_id).await?;
                parse_credentials(descriptor, &text)?
            }
        };
        Ok(Arc::from((descriptor.build)(&keys, &self.settings)?))
    }
}

/// The events table (`TABLE_NAME`): what the operator tools read.
pub fn table_name(env: Lookup<'_>) -> Result<String, ConfigError> {
    required(env, "TABLE_NAME")
}

/// The queue URL of each family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls(pub HashMap<Family, String>);

impl QueueUrls {
    /// Reads `CONVERSATIONS_QUEUE_URL`, `MESSAGES_QUEUE_URL`, `OTHER_QUEUE_URL`.
    pub fn from_lookup(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let mut urls = HashMap::new();
        for (family, name) in [
            (Family::Conversations, "CONVERSATIONS_QUEUE_URL"),
            (Family::Messages, "MESSAGES_QUEUE_URL"),
            (Family::Other, "OTHER_QUEUE_URL"),
        ] {
            urls.insert(family, required(env, name)?);
        }
        Ok(Self(urls))
    }
}
