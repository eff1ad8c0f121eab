//! Typed configuration, read once per cold start from the environment.
//!
//! | variable | used by | meaning |
//! |---|---|---|
//! | `TABLE_NAME` | webhooks, replay, reprocess | the events table |
//! | `MAX_BODY_BYTES` | webhooks | body limit (default 262144, at most 389120) |
//! | `RETENTION_DAYS` | webhooks | days to keep events (DynamoDB TTL); 0 or unset keeps them forever |
//! | `ZIPMESSAGE_TOKENS` / `ZIPMESSAGE_SECRET_ID` | zipmessage | tokens, inline (local) or the secret holding them |
//! | `PARTOO_PUBLIC_KEYS` / `PARTOO_SECRET_ID` | partoo | base64 DER keys, inline or the secret holding them |
//! | `BIRD_SIGNING_KEYS` / `BIRD_SECRET_ID` | bird | signing keys, inline or the secret holding them |
//! | `BIRD_WEBHOOK_URL` | bird | the public URL Bird posts to (part of the signature) |
//! | `BIRD_TIMESTAMP_TOLERANCE_SECS` | bird | how old a validly signed timestamp may be (default 129600 = 36 h; the future tolerance is 300 s); with `RETENTION_DAYS` > 0, past + future must be shorter than the retention |
//! | `PARTOO_ORG_IDS` | partoo, reprocess | Partoo organisations whose events are published (comma-separated); empty publishes nothing from Partoo (kept as quarantined `org_not_allowed`) |
//! | `CONVERSATIONS_QUEUE_URL`, `MESSAGES_QUEUE_URL`, `OTHER_QUEUE_URL` | fanout, replay | the FIFO queues |
//! | `METRICS_NAMESPACE` | all | CloudWatch namespace of the EMF metrics (default `Switchboard`) |
//!
//! Inline keys win over the secret; in AWS only the secret ids are set, so no
//! secret value sits in the function's environment.

use crate::secrets;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchboard_pipeline::Limits;
use switchboard_providers::{
    bird, split_key_list, Admission, Bird, Partoo, WebhookProvider, Zipmessage,
};
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
    /// The keys are unusable.
    #[error(transparent)]
    Provider(#[from] switchboard_providers::ConfigError),
}

/// Loads the AWS SDK configuration with deliberate timeouts and retries: a
/// webhook must answer well inside its sender's timeout (Partoo and Bird
/// wait several seconds), so a stalled call is cut after 2 s per attempt and
/// 5 s in all, and retried at most twice more (3 attempts, standard mode with
/// jittered backoff). `AWS_ENDPOINT_URL` points every client at moto locally.
pub async fn sdk_config() -> SdkConfig {
    sdk_loader().load().await
}

/// The loader behind [`sdk_config`], for callers that add settings (the
/// local stack adds static test credentials and a default region).
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
}

/// The SDK's default HTTPS client (hyper + rustls on AWS-LC), trusting
/// Mozilla's root certificates as compiled into the binary rather than the
/// host's store. The default scans the store on the first request of every
/// cold start: on this machine that is a 220 KB bundle plus 146 files in
/// `/etc/ssl/certs`, whose PEM decoding was the largest CPU cost of init.
/// AWS endpoints chain to Amazon Trust Services roots, which are in the set.
/// The bundle is PEM, the only form the SDK's trust store takes, encoded at
/// build time (`build.rs`). Wrapped in [`ConnectOnFirstUse`], so the roots
/// are parsed once per cold start rather than once per SDK client.
fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(MOZILLA_ROOTS_PEM);
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    let client = match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Not expected (the roots are fixed at build time); the SDK's own
        // default is the safe fallback.
        Err(_) => builder.build_https(),
    };
    SharedHttpClient::new(ConnectOnFirstUse(client))
}

/// Mozilla's root certificates (webpki-root-certs) as one PEM bundle,
/// written by `build.rs`.
const MOZILLA_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mozilla_roots.pem"));

/// The SDK's HTTPS client without its eager connector build. The SDK builds
/// a connector (a rustls configuration: every root certificate base64-decoded
/// and parsed) as each client is constructed, to load the host's
/// certificates early, and throws it away; then builds the one it uses on
/// the first request. A webhook's init built four (the config loader,
/// DynamoDB, Secrets Manager, then the secret fetch), a large share of its
/// CPU (docs/performance.md). With the roots compiled in there is nothing to load early, so this
/// skips the validation-time builds; connectors are still built by, and
/// cached in, the SDK's client on first use (one per timeout setting, shared
/// by every client of the config).
#[derive(Debug)]
struct ConnectOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
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

/// The variables that configure a provider's keys: inline (local and
/// tests only; never set in template.yaml) and the secret id.
pub fn key_variables(provider: Provider) -> (&'static str, &'static str) {
    match provider {
        Provider::Zipmessage => ("ZIPMESSAGE_TOKENS", "ZIPMESSAGE_SECRET_ID"),
        Provider::Partoo => ("PARTOO_PUBLIC_KEYS", "PARTOO_SECRET_ID"),
        Provider::Bird => ("BIRD_SIGNING_KEYS", "BIRD_SECRET_ID"),
    }
}

/// Where a provider's keys come from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Listed in the environment (local stack and tests only).
    Inline(Vec<String>),
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
    /// Bird only: the public URL Bird signs, and the past timestamp tolerance.
    pub bird: Option<(String, u64)>,
    /// Which authentic events are published (Partoo: `PARTOO_ORG_IDS`).
    pub admission: Admission,
}

impl WebhookConfig {
    /// Reads the configuration for `provider`.
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
        let (inline, secret) = key_variables(provider);
        let keys = match (var(env, inline), var(env, secret)) {
            (Some(list), _) => KeySource::Inline(split_key_list(&list)),
            (None, Some(secret_id)) => KeySource::Secret(secret_id),
            (None, None) => return Err(ConfigError::NoKeys { inline, secret }),
        };
        let retention_days: u32 = parsed(env, "RETENTION_DAYS", 0)?;
        let bird = match provider {
            Provider::Bird => {
                let tolerance = parsed(
                    env,
                    "BIRD_TIMESTAMP_TOLERANCE_SECS",
                    bird::DEFAULT_TOLERANCE_SECS,
                )?;
                check_bird_window(tolerance, retention_days)?;
                Some((required(env, "BIRD_WEBHOOK_URL")?, tolerance))
            }
            _ => None,
        };
        let admission = match provider {
            Provider::Partoo => admission(env),
            _ => Admission::default(),
        };
        Ok(Self {
            provider,
            table_name: required(env, "TABLE_NAME")?,
            limits: Limits {
                max_body_bytes,
                retention_days,
            },
            keys,
            bird,
            admission,
        })
    }
}

/// A stored event must outlive every validly signed copy of its request:
/// once DynamoDB's TTL removes it, a copy still inside Bird's window would be
/// stored and published again. So with a retention period, the whole window
/// (past tolerance + [`bird::FUTURE_TOLERANCE_SECS`]) must be shorter.
fn check_bird_window(tolerance_secs: u64, retention_days: u32) -> Result<(), ConfigError> {
    let window = tolerance_secs.saturating_add(bird::FUTURE_TOLERANCE_SECS);
    let retention = u64::from(retention_days) * 86_400;
    if retention_days > 0 && window >= retention {
        return Err(ConfigError::Invalid {
            name: "BIRD_TIMESTAMP_TOLERANCE_SECS",
            detail: format!(
                "{tolerance_secs} s (plus {} s ahead) is not shorter than RETENTION_DAYS={retention_days} \
                 ({retention} s): a signed Bird request could outlive its stored event and be \
                 stored again; lower the tolerance or keep events longer",
                bird::FUTURE_TOLERANCE_SECS
            ),
        });
    }
    Ok(())
}

/// The admission settings (`PARTOO_ORG_IDS`: comma- or space-separated, or a
/// JSON array), read by the Partoo webhook and by `reprocess`. Numeric ids
/// are compared as numbers (`0123` lists organisation 123).
pub fn admission(env: Lookup<'_>) -> Admission {
    let partoo_org_ids = var(env, "PARTOO_ORG_IDS")
        .map(|list| split_key_list(&list))
        .unwrap_or_default()
        .into_iter()
        .map(|id| id.parse::<u64>().map(|n| n.to_string()).unwrap_or(id))
        .collect();
    Admission { partoo_org_ids }
}

/// Builds the configured provider: its keys inline, or fetched once from
/// Secrets Manager.
pub async fn load_provider(
    config: &WebhookConfig,
    sdk: &SdkConfig,
) -> Result<Arc<dyn WebhookProvider>, ConfigError> {
    let keys = match &config.keys {
        KeySource::Inline(keys) => keys.clone(),
        KeySource::Secret(secret_id) => {
            let client = aws_sdk_secretsmanager::Client::new(sdk);
            secrets::fetch_keys(&client, secret_id).await?
        }
    };
    Ok(match (config.provider, &config.bird) {
        (Provider::Zipmessage, _) => Arc::new(Zipmessage::new(&keys)?),
        (Provider::Partoo, _) => Arc::new(Partoo::new(&keys)?),
        (Provider::Bird, Some((url, tolerance))) => Arc::new(Bird::new(&keys, url, *tolerance)?),
        (Provider::Bird, None) => return Err(ConfigError::Missing("BIRD_WEBHOOK_URL")),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_types::config_bag::ConfigBag;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_compiled_in_roots_include_the_ones_aws_endpoints_chain_to() {
        let text = std::str::from_utf8(MOZILLA_ROOTS_PEM).expect("PEM is ASCII");
        let count = text.matches("-----BEGIN CERTIFICATE-----").count();
        assert_eq!(count, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert_eq!(count, text.matches("-----END CERTIFICATE-----").count());
        // Amazon Trust Services (every AWS endpoint) and the Starfield root
        // that cross-signs it, by subject common name in the DER.
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .any(|cert| cert
                        .as_ref()
                        .windows(name.len())
                        .any(|w| w == name.as_bytes())),
                "{name} is not among the compiled-in roots"
            );
        }
    }

    /// Counts the connector builds its SDK client asks for at validation.
    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no request is sent")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn dynamodb_client(http_client: SharedHttpClient) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .http_client(http_client)
                .build(),
        )
    }

    #[test]
    fn constructing_sdk_clients_builds_no_connector() {
        // A bare client is asked to build one (and throw it away) per SDK client...
        let bare = Arc::new(AtomicUsize::new(0));
        let _ = dynamodb_client(SharedHttpClient::new(Counting(bare.clone())));
        let _ = dynamodb_client(SharedHttpClient::new(Counting(bare.clone())));
        assert_eq!(bare.load(Ordering::SeqCst), 2);
        // ...a wrapped one is not.
        let wrapped = Arc::new(AtomicUsize::new(0));
        let client = SharedHttpClient::new(ConnectOnFirstUse(SharedHttpClient::new(Counting(
            wrapped.clone(),
        ))));
        let _ = dynamodb_client(client.clone());
        let _ = dynamodb_client(client);
        assert_eq!(wrapped.load(Ordering::SeqCst), 0);
    }
}
