//! The AWS SDK's configuration, shared by every client of a process:
//! deliberate timeouts and retries, and an HTTPS client that trusts
//! compiled-in roots and builds its connector only on first use.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::time::Duration;

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
/// CPU. With the roots compiled in there is nothing to load early, so this
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_types::config_bag::ConfigBag;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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
