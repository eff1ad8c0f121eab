//! The local stack's Lambda Runtime API emulator
//! ([`switchboard_local::runtime`]) for tests: every step either succeeds
//! or fails the test with its reason. Plus the events API Gateway and
//! DynamoDB Streams send a function.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path as FsPath;
use std::time::{Duration, Instant};
use switchboard_local::runtime::Echo;
pub use switchboard_local::runtime::Outcome;

/// How long a test waits for a function's init or an invocation.
const LIMIT: Duration = Duration::from_secs(30);

/// A running emulator and, once spawned, the function process.
#[derive(Debug)]
pub struct RuntimeApi(switchboard_local::runtime::RuntimeApi);

impl RuntimeApi {
    /// Starts the emulator on a free loopback port.
    pub async fn start() -> Self {
        Self(
            switchboard_local::runtime::RuntimeApi::start("test", LIMIT, Echo::Stderr)
                .await
                .expect("the Runtime API emulator starts"),
        )
    }

    /// Spawns a function binary against this emulator with `env` (plus the
    /// variables Lambda itself sets).
    pub fn spawn(&mut self, binary: &FsPath, function_name: &str, env: &HashMap<String, String>) {
        self.0
            .spawn(binary, function_name, env)
            .expect("spawn the function binary");
    }

    /// The lines the function has printed to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.0.stdout_lines()
    }

    /// The lines the function has printed to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.0.stderr_lines()
    }

    /// When the function first asked for an invocation: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        self.0.first_poll()
    }

    /// Waits (up to 30 s) for the function to finish its init.
    pub async fn wait_ready(&self) -> Instant {
        self.0.wait_ready(LIMIT).await.expect("the function starts")
    }

    /// The function process's id.
    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    /// Queues one invocation without waiting for it; returns its request id.
    pub fn enqueue(&mut self, event: &Value) -> String {
        self.0.enqueue(event)
    }

    /// Kills the function process (SIGKILL) and waits for it to exit.
    pub async fn kill(&mut self) {
        self.0.kill().await;
    }

    /// Sends one invocation and waits (up to 30 s) for its outcome.
    pub async fn invoke(&mut self, event: &Value) -> Outcome {
        self.0
            .invoke(event, LIMIT)
            .await
            .expect("the function answered within 30 s")
    }
}

/// An API Gateway HTTP API (payload 2.0) event, as API Gateway sends it.
pub fn http_api_event(
    method: &str,
    route_path: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    path_parameters: Option<(&str, &str)>,
) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (Value::from(text), false),
        Err(_) => {
            use base64::Engine;
            (
                Value::from(base64::engine::general_purpose::STANDARD.encode(body)),
                true,
            )
        }
    };
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("ANY {route_path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": "id",
            "routeKey": format!("ANY {route_path}"),
            "stage": "$default",
            "time": "22/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "body": body,
        "isBase64Encoded": base64
    });
    if let Some((name, value)) = path_parameters {
        event["pathParameters"] = serde_json::json!({ name: value });
    }
    event
}

/// The event Lambda gives a DynamoDB stream function: one `INSERT` record
/// per `(sequence number, new image)`.
pub fn stream_event(records: &[(&str, serde_dynamo::Item)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(seq, image)| {
            let keys: serde_json::Map<String, Value> = serde_json::to_value(image)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter(|(name, _)| name == "pk" || name == "sk")
                .collect();
            json!({
                "eventID": format!("e-{seq}"), "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_795_000_000,
                    "Keys": keys,
                    "NewImage": image, "SequenceNumber": seq, "SizeBytes": 1000, "StreamViewType": "NEW_IMAGE"
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The public base URL of the test webhooks: settings that name a
/// provider's public URL get this plus its route, and signed test events
/// are received at it (their API Gateway domain name, stage `$default`).
pub const PUBLIC_BASE_URL: &str = "https://hooks.example.com";

/// API Gateway's event for `body` posted to `d`'s route, signed with the
/// current test key as the provider signs it (for [`PUBLIC_BASE_URL`]), with
/// `request_id` as the provider's delivery id where it sends one.
pub fn signed_api_event(
    d: &switchboard_providers::registry::Descriptor,
    body: &[u8],
    request_id: &str,
) -> Value {
    use switchboard_providers::registry::SignRequest;
    let key = &crate::keys::current(d.provider).signing;
    let path = d.path(key);
    let signed = (d.sign)(&SignRequest {
        key,
        url: &format!("{PUBLIC_BASE_URL}{path}"),
        body,
        timestamp: chrono::Utc::now().timestamp(),
    })
    .expect("a test key signs");
    let mut headers = vec![
        ("content-type", "application/json"),
        (switchboard_providers::bird::REQUEST_ID_HEADER, request_id),
    ];
    headers.extend(signed.iter().map(|(k, v)| (*k, v.as_str())));
    let mut event = http_api_event(
        "POST",
        d.route,
        &path,
        &headers,
        body,
        d.token_prefix().map(|_| ("token", key.as_str())),
    );
    // Received at PUBLIC_BASE_URL, as a function that derives its URL
    // from the request context sees it.
    event["requestContext"]["domainName"] = PUBLIC_BASE_URL.trim_start_matches("https://").into();
    event
}
