//! The webhook functions' handler: one provider's ingest pipeline behind
//! API Gateway.

use crate::config::{process_env, ConfigError, Lookup, WebhookConfig};
use crate::metrics::{self, Metrics};
use crate::sdk::sdk_config;
use crate::DynamoStore;
use aws_config::SdkConfig;
use bytes::Bytes;
use chrono::Utc;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use std::sync::Arc;
use std::time::Instant;
use switchboard_pipeline::{Ingest, WebhookRequest};
use switchboard_providers::registry::descriptor;
use switchboard_types::Provider;

/// The webhook function's handler: one provider's ingest pipeline.
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    ingest: Ingest,
    metrics: Metrics,
    /// The route's prefix before its `{token}`, for providers whose
    /// credential is in the path.
    token_prefix: Option<&'static str>,
}

impl WebhookHandler {
    /// Wraps a pipeline.
    pub fn new(ingest: Ingest, metrics: Metrics) -> Self {
        let token_prefix = descriptor(ingest.provider()).token_prefix();
        Self {
            ingest,
            metrics,
            token_prefix,
        }
    }

    /// Cold-start wiring: configuration, SDK clients and keys, once.
    pub async fn from_env(provider: Provider) -> Result<Self, ConfigError> {
        let sdk = sdk_config().await;
        let (ingest, _) = webhook_ingest(provider, &process_env, &sdk).await?;
        Ok(Self::new(ingest, Metrics::from_lookup(&process_env)))
    }

    /// Handles one API Gateway request: one line per event it carried (one
    /// for a refused request), its EMF metrics document and its log record
    /// at once. Every outcome, errors
    /// included, is an `Ok` response: an `Err` would become a generic 502.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        let started = Instant::now();
        let request = webhook_request(request, self.token_prefix);
        let now = Utc::now();
        let handled = self.ingest.handle(&request, now).await;
        let elapsed = started.elapsed();
        for outcome in &handled.outcomes {
            metrics::emit(
                &self
                    .metrics
                    .webhook(outcome, elapsed, now.timestamp_millis()),
            );
        }
        Ok(handled.reply.into_response())
    }
}

/// A webhook function's pipeline from its environment: configuration, the
/// provider's keys (inline or from Secrets Manager) and the DynamoDB store.
/// The Lambda and the local stack both wire webhooks through this, so they
/// cannot drift apart.
pub async fn webhook_ingest(
    provider: Provider,
    env: Lookup<'_>,
    sdk: &SdkConfig,
) -> Result<(Ingest, WebhookConfig), ConfigError> {
    let config = WebhookConfig::from_lookup(provider, env)?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    // The keys and the table's connection at once: in AWS they are two
    // endpoints, and the table's TLS handshake then happens here rather than
    // inside the first webhook request. A plain-HTTP endpoint (moto locally)
    // has no handshake to save, only a round trip to spend, so it is not warmed.
    let warm = needs_tls(sdk.endpoint_url());
    let (verifier, ()) = tokio::join!(config.load_provider(sdk), async {
        if warm {
            warm_table_connection(&dynamo, &config.table_name).await;
        }
    });
    let verifier = verifier?;
    let store = DynamoStore::new(dynamo, &config.table_name);
    if let Some(warning) = &config.warning {
        tracing::warn!("{warning}");
    }
    let ingest = Ingest::new(verifier, Arc::new(store), config.limits)
        .with_admission(config.admission.clone());
    Ok((ingest, config))
}

/// Whether the first call to an endpoint opens a TLS connection: every AWS
/// endpoint does (no override), an `http://` override such as moto does not.
fn needs_tls(endpoint_override: Option<&str>) -> bool {
    endpoint_override.is_none_or(|url| !url.trim().to_ascii_lowercase().starts_with("http://"))
}

/// How long init waits for the table's connection before going on without it.
const WARM_UP_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

/// Opens the connection to DynamoDB during init with the cheapest call on
/// the table (`DescribeTable`: metadata only, no capacity used), so the
/// first request's PutItem finds a warm, TLS-established connection in the
/// pool. Best effort: a failure or a slow answer is logged and init goes on;
/// the first request then connects as it would have anyway.
async fn warm_table_connection(client: &aws_sdk_dynamodb::Client, table: &str) {
    let call = client.describe_table().table_name(table).send();
    match tokio::time::timeout(WARM_UP_BUDGET, call).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(
            error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error),
            "warming the DynamoDB connection failed; the first request will connect"
        ),
        Err(_) => tracing::warn!(
            budget_ms = WARM_UP_BUDGET.as_millis() as u64,
            "warming the DynamoDB connection timed out; the first request will connect"
        ),
    }
}

/// The path token of a route that ends in `{token}` (`prefix` is the route
/// before it): API Gateway's path parameter, or the last path segment when
/// the event has none.
fn path_token(request: &Request, prefix: Option<&str>) -> Option<String> {
    let prefix = prefix?;
    request
        .path_parameters()
        .first("token")
        .map(str::to_owned)
        .or_else(|| {
            request
                .raw_http_path()
                .strip_prefix(prefix)
                .filter(|t| !t.is_empty() && !t.contains('/'))
                .map(str::to_owned)
        })
}

/// The URL API Gateway received the request at, from its request context:
/// `https://<domain name>[/<stage>]<route path>` (no stage segment for
/// `$default`). Never from a header: the client chooses those. On a custom
/// domain whose base-path mapping differs from the stage, or behind a
/// proxy, it is not the URL the sender used; a configured URL
/// (`BIRD_WEBHOOK_URL`) then takes its place.
fn public_url(request: &Request) -> Option<String> {
    let RequestContext::ApiGatewayV2(context) = request.request_context_ref()? else {
        return None;
    };
    let domain = context.domain_name.as_deref()?;
    let route = context.route_key.as_deref()?.split_once(' ')?.1;
    let stage = match context.stage.as_deref() {
        None | Some("$default") => String::new(),
        Some(stage) => format!("/{stage}"),
    };
    Some(format!("https://{domain}{stage}{route}"))
}

/// Converts a Lambda HTTP request into the pipeline's request; the path
/// token is read where the route has one (`token_prefix`).
pub fn webhook_request(request: Request, token_prefix: Option<&str>) -> WebhookRequest {
    let path_token = path_token(&request, token_prefix);
    let public_url = public_url(&request);
    let query = request.uri().query().map(str::to_owned);
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        other => Bytes::copy_from_slice(other.as_ref()),
    };
    WebhookRequest {
        method: parts.method,
        headers: parts.headers,
        body,
        path_token,
        public_url,
        query,
    }
}

#[cfg(test)]
mod tests {
    use super::{needs_tls, public_url};

    /// An HTTP API (payload 2.0) event for the Bird route on `stage`, with
    /// a Host header a client chose.
    fn bird_event(stage: &str) -> lambda_http::Request {
        let raw_path = match stage {
            "$default" => "/webhooks/bird".to_owned(),
            stage => format!("/{stage}/webhooks/bird"),
        };
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "ANY /webhooks/bird",
            "rawPath": raw_path,
            "rawQueryString": "",
            "headers": { "host": "evil.example", "x-forwarded-host": "evil.example" },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": { "method": "POST", "path": raw_path, "protocol": "HTTP/1.1",
                          "sourceIp": "192.0.2.1", "userAgent": "Bird" },
                "requestId": "id",
                "routeKey": "ANY /webhooks/bird",
                "stage": stage,
                "time": "02/Dec/2026:12:00:00 +0000",
                "timeEpoch": 1_796_212_800_000u64
            },
            "body": "{}",
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("an HTTP API event")
    }

    #[test]
    fn the_public_url_comes_from_api_gateways_context_never_from_headers() {
        assert_eq!(
            public_url(&bird_event("live")).as_deref(),
            Some("https://abc123.execute-api.eu-west-1.amazonaws.com/live/webhooks/bird")
        );
        assert_eq!(
            public_url(&bird_event("$default")).as_deref(),
            Some("https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/bird")
        );
    }

    #[test]
    fn only_plain_http_endpoints_skip_the_connection_warm_up() {
        assert!(needs_tls(None), "AWS's own endpoints are HTTPS");
        assert!(needs_tls(Some("https://dynamodb.eu-west-1.amazonaws.com")));
        assert!(!needs_tls(Some("http://127.0.0.1:4566")));
        assert!(!needs_tls(Some(" HTTP://localhost:8000")));
    }
}
