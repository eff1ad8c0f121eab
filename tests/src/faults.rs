//! A fault-injecting proxy between the AWS SDK and moto.
//!
//! Every request is forwarded to moto unchanged, except those whose
//! `X-Amz-Target` operation matches the armed fault (for example
//! `PutItem` or `SendMessageBatch`), for the first `times` matches:
//!
//! - [`Fault::Respond`]: answer with an AWS error of the given status and
//!   `__type` without reaching moto (throttling, internal errors);
//! - [`Fault::Delay`]: wait, then forward (slower than the SDK's timeout);
//! - [`Fault::ForwardThenFail`]: forward (the write happens), then answer 500
//!   (a failure after the fact: the caller cannot know it was written);
//! - [`Fault::ForwardThenHang`]: forward, then never answer;
//! - [`Fault::FailBatchEntries`]: SQS `SendMessageBatch` with the entries at
//!   odd positions removed before forwarding and reported as failed in the
//!   response (a real partial batch failure);
//! - [`Fault::FailNthEntry`]: the same for one entry, counted over every
//!   `SendMessageBatch` since the proxy was armed;
//! - [`Fault::FailEntriesRandomly`]: the same for each entry with a
//!   probability.
//!
//! Or, with [`FaultProxy::chaos`], each matching request draws its fault at
//! random from a seeded generator (a load test under a rate of faults).
//!
//! The proxy counts the matching requests it saw, so a test can check the
//! SDK's retry policy too.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer `status` with an AWS JSON error of type `error_type`.
    Respond {
        /// HTTP status.
        status: u16,
        /// The `__type`, e.g. `com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException`.
        error_type: &'static str,
    },
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward, then answer 500 whatever moto said.
    ForwardThenFail,
    /// Forward, then never answer.
    ForwardThenHang,
    /// Remove the odd-positioned entries of a `SendMessageBatch`, forward
    /// the rest, and report the removed ones as failed.
    FailBatchEntries,
    /// Fail the n-th (1-based) `SendMessageBatch` entry seen since arming.
    FailNthEntry(usize),
    /// Fail each `SendMessageBatch` entry with this probability.
    FailEntriesRandomly(f64),
}

impl Fault {
    /// DynamoDB's throttling error on a provisioned table.
    pub const PROVISIONED_THROUGHPUT_EXCEEDED: Fault = Fault::Respond {
        status: 400,
        error_type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    };
    /// The control-plane style throttling error.
    pub const THROTTLING: Fault = Fault::Respond {
        status: 400,
        error_type: "com.amazon.coral.availability#ThrottlingException",
    };
    /// DynamoDB's internal server error.
    pub const INTERNAL_SERVER_ERROR: Fault = Fault::Respond {
        status: 500,
        error_type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
    };
}

#[derive(Debug, Default)]
struct Armed {
    operation: String,
    fault: Option<Fault>,
    remaining: usize,
}

/// A fault that a matching request suffers with a probability.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// The operation (`PutItem`, `SendMessageBatch`, …).
    pub operation: &'static str,
    /// What happens to it.
    pub fault: Fault,
    /// How often, 0 to 1.
    pub probability: f64,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    armed: Mutex<Armed>,
    seen: AtomicUsize,
    entries: AtomicUsize,
    chaos: Mutex<(Vec<Chaos>, Option<rand::rngs::StdRng>)>,
    injected: Mutex<std::collections::BTreeMap<String, usize>>,
}

/// A running proxy.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (moto's URL) on a free loopback port.
    /// What it forwards goes through the proxy that refuses what AWS
    /// would refuse (`switchboard_local::aws_limits`), as every local client does.
    pub async fn start(upstream: &str) -> Self {
        let shared = Arc::new(Shared {
            upstream: switchboard_local::aws_limits::guarded_endpoint(upstream),
            http: reqwest::Client::new(),
            armed: Mutex::default(),
            seen: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
            chaos: Mutex::new((Vec::new(), None)),
            injected: Mutex::default(),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let (addr, server) = crate::serve_on_loopback(app).await;
        Self {
            addr,
            shared,
            server,
        }
    }

    /// The URL to give the SDK as its endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to the next `times` requests for `operation`
    /// (`PutItem`, `SendMessageBatch`, …) and resets the counter.
    pub fn arm(&self, operation: &str, fault: Fault, times: usize) {
        if let Ok(mut armed) = self.shared.armed.lock() {
            *armed = Armed {
                operation: operation.to_owned(),
                fault: Some(fault),
                remaining: times,
            };
        }
        self.shared.seen.store(0, Ordering::SeqCst);
        self.shared.entries.store(0, Ordering::SeqCst);
    }

    /// From now on, each request for a rule's operation suffers its fault
    /// with its probability (the first rule that draws it), from a
    /// generator seeded with `seed`, so a run can be repeated.
    pub fn chaos(&self, rules: Vec<Chaos>, seed: u64) {
        use rand::SeedableRng;
        if let Ok(mut chaos) = self.shared.chaos.lock() {
            *chaos = (rules, Some(rand::rngs::StdRng::seed_from_u64(seed)));
        }
    }

    /// How many faults chaos injected, by `<operation> <fault>`; entry
    /// faults count entries.
    pub fn injected(&self) -> std::collections::BTreeMap<String, usize> {
        self.shared
            .injected
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Forwards everything again.
    pub fn heal(&self) {
        if let Ok(mut armed) = self.shared.armed.lock() {
            armed.fault = None;
        }
        if let Ok(mut chaos) = self.shared.chaos.lock() {
            chaos.0.clear();
        }
    }

    /// Requests for the armed operation seen since [`FaultProxy::arm`]
    /// (faulted or not).
    pub fn seen(&self) -> usize {
        self.shared.seen.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let op = switchboard_local::aws_limits::operation(&parts.headers).to_owned();
    let fault = {
        let mut armed = shared.armed.lock().expect("lock");
        if armed.fault.is_some() && armed.operation == op {
            shared.seen.fetch_add(1, Ordering::SeqCst);
            if armed.remaining > 0 {
                armed.remaining -= 1;
                armed.fault.clone()
            } else {
                None
            }
        } else {
            None
        }
    };
    let fault = fault.or_else(|| draw(&shared, &op));
    match fault {
        None => upstream(&shared, &parts.method, &parts.uri, &parts.headers, body).await,
        Some(Fault::Respond { status, error_type }) => aws_error(status, error_type),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            upstream(&shared, &parts.method, &parts.uri, &parts.headers, body).await
        }
        Some(Fault::ForwardThenFail) => {
            let _ = upstream(&shared, &parts.method, &parts.uri, &parts.headers, body).await;
            aws_error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError")
        }
        Some(Fault::ForwardThenHang) => {
            let _ = upstream(&shared, &parts.method, &parts.uri, &parts.headers, body).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            aws_error(500, "hung")
        }
        Some(Fault::FailBatchEntries) => {
            let odd = |i: usize, _: usize| i % 2 == 1;
            fail_batch_entries(&shared, &parts, body, odd).await
        }
        Some(Fault::FailNthEntry(n)) => {
            let nth = |_: usize, seen: usize| seen == n;
            fail_batch_entries(&shared, &parts, body, nth).await
        }
        Some(Fault::FailEntriesRandomly(p)) => {
            let drawn = |_: usize, _: usize| {
                let failed = random(&shared) < p;
                if failed {
                    count(&shared, "SendMessageBatch entry failed");
                }
                failed
            };
            fail_batch_entries(&shared, &parts, body, drawn).await
        }
    }
}

fn random(shared: &Shared) -> f64 {
    use rand::Rng;
    shared
        .chaos
        .lock()
        .ok()
        .and_then(|mut c| c.1.as_mut().map(|rng| rng.gen::<f64>()))
        .unwrap_or(1.0)
}

fn count(shared: &Shared, what: &str) {
    if let Ok(mut injected) = shared.injected.lock() {
        *injected.entry(what.to_owned()).or_default() += 1;
    }
}

/// The chaos fault `op` suffers this time, if any.
fn draw(shared: &Shared, op: &str) -> Option<Fault> {
    use rand::Rng;
    let mut chaos = shared.chaos.lock().ok()?;
    let (rules, rng) = &mut *chaos;
    let rng = rng.as_mut()?;
    for rule in rules.iter().filter(|r| r.operation == op) {
        let fault = rule.fault.clone();
        if matches!(fault, Fault::FailEntriesRandomly(_)) {
            // Drawn per entry.
            return Some(fault);
        }
        if rng.gen::<f64>() < rule.probability {
            drop(chaos);
            count(shared, &format!("{op} {fault:?}"));
            return Some(fault);
        }
    }
    None
}

async fn upstream(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    switchboard_local::aws_limits::forward(
        &shared.http,
        &shared.upstream,
        method,
        uri,
        headers,
        body,
    )
    .await
    .unwrap_or_else(|_| aws_error(502, "proxy#UpstreamUnavailable"))
}

fn aws_error(status: u16, error_type: &str) -> Response<Body> {
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        &json!({ "__type": error_type, "message": "injected by the fault proxy" }),
    )
}

/// An AWS JSON-protocol response.
fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.0".parse().expect("static"),
    );
    response
}

/// Forwards a `SendMessageBatch` without the entries `fail(position,
/// number seen since arming)` picks, and reports those as failed.
async fn fail_batch_entries(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    body: Bytes,
    mut fail: impl FnMut(usize, usize) -> bool,
) -> Response<Body> {
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
        return aws_error(400, "proxy#NotJson");
    };
    let entries = request["Entries"].as_array().cloned().unwrap_or_default();
    let (dropped, kept): (Vec<_>, Vec<_>) = entries.into_iter().enumerate().partition(|(i, _)| {
        let seen = shared.entries.fetch_add(1, Ordering::SeqCst) + 1;
        fail(*i, seen)
    });
    let failed: Vec<Value> = dropped
        .iter()
        .map(|(_, e)| {
            json!({ "Id": e["Id"], "SenderFault": false, "Code": "InternalError",
                    "Message": "injected by the fault proxy" })
        })
        .collect();
    if kept.is_empty() {
        return json_response(
            StatusCode::OK,
            &json!({ "Successful": [], "Failed": failed }),
        );
    }
    request["Entries"] = Value::Array(kept.into_iter().map(|(_, e)| e).collect());
    let forwarded = upstream(
        shared,
        method,
        uri,
        headers,
        Bytes::from(request.to_string()),
    )
    .await;
    let status = forwarded.status();
    let bytes = axum::body::to_bytes(forwarded.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut reply: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    let mut all_failed = reply["Failed"].as_array().cloned().unwrap_or_default();
    all_failed.extend(failed);
    reply["Failed"] = Value::Array(all_failed);
    json_response(status, &reply)
}

/// An SDK configuration like the functions' (same timeouts and retries),
/// pointed at `endpoint`, with test credentials.
pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    switchboard_aws::sdk_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "faults",
        ))
        .load()
        .await
}
