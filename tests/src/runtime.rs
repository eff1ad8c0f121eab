//! A Lambda Runtime API emulator on loopback, implementing the endpoints a
//! function binary calls (`/2018-06-01/runtime/...`), so tests can run the
//! real `bootstrap` binaries exactly as Lambda would: spawn with
//! `AWS_LAMBDA_RUNTIME_API`, hand out invocations, collect responses.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `/response`: the handler's result.
    Response(Value),
    /// `/error`: a handler error.
    Error(Value),
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<VecDeque<(String, String)>>,
    pending_ready: Notify,
    results: Mutex<HashMap<String, Outcome>>,
    result_ready: Notify,
    init_error: Mutex<Option<String>>,
    first_poll: Mutex<Option<Instant>>,
    stdout: Mutex<Vec<String>>,
    stderr: Mutex<Vec<String>>,
}

/// A running emulator and, once spawned, the function process.
#[derive(Debug)]
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    child: Option<Child>,
    counter: u64,
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if let Ok(mut first) = shared.first_poll.lock() {
        first.get_or_insert_with(Instant::now);
    }
    loop {
        let ready = shared.pending_ready.notified();
        let item = shared.pending.lock().ok().and_then(|mut p| p.pop_front());
        if let Some((id, body)) = item {
            let mut headers = HeaderMap::new();
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("x")),
            );
            headers.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline));
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:test"),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
            );
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            return (StatusCode::OK, headers, body);
        }
        ready.await;
    }
}

fn record(shared: &Shared, id: String, outcome: Outcome) {
    if let Ok(mut results) = shared.results.lock() {
        results.insert(id, outcome);
    }
    shared.result_ready.notify_waiters();
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(
        &shared,
        id,
        Outcome::Response(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    );
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(
        &shared,
        id,
        Outcome::Error(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    );
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Ok(mut e) = shared.init_error.lock() {
        *e = Some(String::from_utf8_lossy(&body).into_owned());
    }
    shared.result_ready.notify_waiters();
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts the emulator on a free loopback port.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let (addr, server) = crate::serve_on_loopback(app).await;
        Self {
            addr,
            shared,
            server,
            child: None,
            counter: 0,
        }
    }

    /// Spawns a function binary against this emulator with `env` (plus the
    /// variables Lambda itself sets).
    pub fn spawn(&mut self, binary: &FsPath, function_name: &str, env: &HashMap<String, String>) {
        let mut command = Command::new(binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn the function binary");
        // Keep what the function prints (its logs and EMF metrics), as
        // CloudWatch Logs would.
        if let Some(stdout) = child.stdout.take() {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut out) = shared.stdout.lock() {
                        out.push(line);
                    }
                }
            });
        }
        // Lambda sends stderr to CloudWatch Logs too: kept with the rest
        // (and still shown in the test's output).
        if let Some(stderr) = child.stderr.take() {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("{line}");
                    if let Ok(mut out) = shared.stderr.lock() {
                        out.push(line);
                    }
                }
            });
        }
        self.child = Some(child);
    }

    /// The lines the function has printed to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.shared
            .stdout
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The lines the function has printed to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.shared
            .stderr
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// When the function first asked for an invocation: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.first_poll.lock().ok().and_then(|f| *f)
    }

    /// Waits (up to 30 s) for the function to finish its init.
    pub async fn wait_ready(&self) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(at) = self.first_poll() {
                return at;
            }
            if let Some(e) = self.shared.init_error.lock().ok().and_then(|e| e.clone()) {
                panic!("the function failed to initialise: {e}");
            }
            assert!(
                Instant::now() < deadline,
                "the function did not poll for work within 30 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// The function process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Queues one invocation without waiting for it; returns its request id.
    pub fn enqueue(&mut self, event: &Value) -> String {
        self.counter += 1;
        let id = format!("req-{}", self.counter);
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.push_back((id.clone(), event.to_string()));
        }
        self.shared.pending_ready.notify_waiters();
        id
    }

    /// Kills the function process (SIGKILL) and waits for it to exit.
    pub async fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill().await;
        }
    }

    /// Sends one invocation and waits for its outcome.
    pub async fn invoke(&mut self, event: &Value) -> Outcome {
        let id = self.enqueue(event);
        let wait = async {
            loop {
                let ready = self.shared.result_ready.notified();
                if let Some(outcome) = self
                    .shared
                    .results
                    .lock()
                    .ok()
                    .and_then(|mut r| r.remove(&id))
                {
                    return outcome;
                }
                if let Some(e) = self.shared.init_error.lock().ok().and_then(|e| e.clone()) {
                    panic!("the function failed to initialise: {e}");
                }
                // Wake periodically too, in case the process died.
                let _ = tokio::time::timeout(Duration::from_millis(200), ready).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the function answered within 30 s")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
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
