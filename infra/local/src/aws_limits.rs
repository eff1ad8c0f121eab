//! AWS's limits, enforced in front of moto.
//!
//! moto accepts messages and items that AWS refuses, so a test on moto can
//! pass where the same code fails in AWS. Every SDK client of the local
//! stack and of the tests talks to moto through [`guarded_endpoint`]: a
//! loopback proxy that forwards each request unchanged, after refusing,
//! with AWS's own error, what AWS would refuse:
//!
//! - SQS `SendMessage` / `SendMessageBatch`: a body or message attribute with
//!   a character outside `#x9 #xA #xD #x20–#xD7FF #xE000–#xFFFD
//!   #x10000–#x10FFFF` (`InvalidMessageContents`); a message over the queue's
//!   `MaximumMessageSize`, body and attributes counted (`InvalidParameterValue`);
//!   a batch whose messages together exceed it (`BatchRequestTooLong`); more
//!   than 10 entries; a `MessageGroupId` or `MessageDeduplicationId` over 128
//!   characters or outside alphanumerics and punctuation.
//! - DynamoDB `PutItem`: a table or index partition key over 2,048 bytes or
//!   sort key over 1,024 bytes, or an item over 400 KB
//!   (`ValidationException`).
//!
//! - DynamoDB's atomic conditional write: moto checks a write's condition
//!   and writes in two steps, so two concurrent `attribute_not_exists`
//!   writes of one item could both succeed. The proxy holds one write of a
//!   partition at a time (`PutItem`, `UpdateItem`, `DeleteItem`).
//! - IAM: a call signed with a function's role credentials is checked
//!   against that role's policy in template.yaml ([`crate::iam`]) and
//!   refused with `AccessDeniedException` where AWS would refuse it.
//!
//! The rules are written from AWS's documentation (`../shared/PROVIDERS.md`,
//! the SQS and DynamoDB API references), not from the pipeline's code, so
//! they check it rather than repeat it.

use crate::iam;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// SQS's largest message, and the default of a queue that sets no
/// `MaximumMessageSize` (AWS's long-standing default; newer queues may
/// default higher, so the local stack assumes the stricter value).
pub const SQS_DEFAULT_MAX_MESSAGE: usize = 262_144;
/// Entries in one `SendMessageBatch`.
pub const SQS_MAX_BATCH_ENTRIES: usize = 10;
/// DynamoDB's limits.
pub const DYNAMODB_MAX_PARTITION_KEY: usize = 2048;
/// DynamoDB's sort key limit.
pub const DYNAMODB_MAX_SORT_KEY: usize = 1024;
/// DynamoDB's item size limit (400 KB).
pub const DYNAMODB_MAX_ITEM: usize = 400 * 1024;

/// Whether SQS accepts `c` in a message body or attribute value.
pub fn sqs_allows(c: char) -> bool {
    matches!(c as u32,
        0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x0010_FFFF)
}

/// Why AWS would refuse a request: the HTTP status and error type it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// AWS's error code (`InvalidMessageContents`, `ValidationException`, …).
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

/// One SQS message as SQS counts it: the body plus each attribute's name,
/// data type and value.
fn sqs_message_size(message: &Value) -> usize {
    let body = message["MessageBody"].as_str().map_or(0, str::len);
    let attributes = message["MessageAttributes"].as_object().map_or(0, |attrs| {
        attrs
            .iter()
            .map(|(name, attr)| {
                let value = attr["StringValue"].as_str().map_or(0, str::len)
                    + attr["BinaryValue"].as_str().map_or(0, |b| b.len() * 3 / 4);
                name.len() + attr["DataType"].as_str().map_or(0, str::len) + value
            })
            .sum()
    });
    body + attributes
}

fn fifo_id_ok(id: &str) -> bool {
    id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation())
}

/// Checks one message (a `SendMessage` request or one batch entry) against
/// a queue whose `MaximumMessageSize` is `max`.
pub fn check_sqs_message(message: &Value, max: usize) -> Result<(), Refusal> {
    let refuse = |code, message: String| Err(Refusal { code, message });
    let mut texts = vec![(
        "the message body",
        message["MessageBody"].as_str().unwrap_or_default(),
    )];
    if let Some(attrs) = message["MessageAttributes"].as_object() {
        for (name, attr) in attrs {
            texts.push(("a message attribute name", name.as_str()));
            if let Some(value) = attr["StringValue"].as_str() {
                if value.is_empty() {
                    return refuse(
                        "InvalidParameterValue",
                        format!("message attribute {name} has an empty value"),
                    );
                }
                texts.push(("a message attribute value", value));
            }
        }
    }
    for (what, text) in texts {
        if let Some(bad) = text.chars().find(|c| !sqs_allows(*c)) {
            return refuse(
                "InvalidMessageContents",
                format!("Invalid characters found in {what}: U+{:04X}", bad as u32),
            );
        }
    }
    let size = sqs_message_size(message);
    if size > max {
        return refuse(
            "InvalidParameterValue",
            format!("One or more parameters are invalid. Reason: Message must be shorter than {max} bytes ({size})."),
        );
    }
    for field in ["MessageGroupId", "MessageDeduplicationId"] {
        if let Some(id) = message[field].as_str() {
            if !fifo_id_ok(id) {
                return refuse(
                    "InvalidParameterValue",
                    format!("{field} {id:?} is invalid"),
                );
            }
        }
    }
    Ok(())
}

/// Checks a `SendMessageBatch` request against a queue whose
/// `MaximumMessageSize` is `max`.
pub fn check_sqs_batch(request: &Value, max: usize) -> Result<(), Refusal> {
    let entries = request["Entries"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if entries.len() > SQS_MAX_BATCH_ENTRIES {
        return Err(Refusal {
            code: "TooManyEntriesInBatchRequest",
            message: format!("{} entries; at most {SQS_MAX_BATCH_ENTRIES}", entries.len()),
        });
    }
    let total: usize = entries.iter().map(sqs_message_size).sum();
    if total > max {
        return Err(Refusal {
            code: "BatchRequestTooLong",
            message: format!(
                "Batch requests cannot be longer than {max} bytes. You have sent {total} bytes."
            ),
        });
    }
    entries.iter().try_for_each(|e| check_sqs_message(e, max))
}

/// The size DynamoDB counts for an attribute value (names and values in
/// UTF-8 bytes; numbers roughly one byte per two digits; a few bytes of
/// overhead per list or map element).
fn dynamodb_value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(0, |n| n.len() / 2 + 1),
        "B" => inner.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "SS" | "NS" | "BS" => inner.as_array().map_or(0, |a| {
            a.iter().map(|v| v.as_str().map_or(0, str::len)).sum()
        }),
        "L" => inner.as_array().map_or(3, |a| {
            3 + a.iter().map(|v| 1 + dynamodb_value_size(v)).sum::<usize>()
        }),
        "M" => inner.as_object().map_or(3, |m| {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + dynamodb_value_size(v))
                .sum::<usize>()
        }),
        _ => 0,
    }
}

/// The key attributes of a table and its indexes: `(name, is sort key)`.
pub type KeyAttributes = Vec<(String, bool)>;

/// Checks a `PutItem` request against DynamoDB's key and item limits.
pub fn check_put_item(request: &Value, keys: &KeyAttributes) -> Result<(), Refusal> {
    let item = request["Item"].as_object().cloned().unwrap_or_default();
    for (name, sort) in keys {
        let Some(value) = item.get(name) else {
            continue;
        };
        let size = dynamodb_value_size(value);
        let (limit, what) = if *sort {
            (DYNAMODB_MAX_SORT_KEY, "sort")
        } else {
            (DYNAMODB_MAX_PARTITION_KEY, "partition")
        };
        if size > limit {
            return Err(Refusal {
                code: "ValidationException",
                message: format!(
                    "One or more parameter values were invalid: Size of the {what} key {name} ({size} bytes) has exceeded the maximum size limit of {limit} bytes"
                ),
            });
        }
    }
    let size: usize = item
        .iter()
        .map(|(name, value)| name.len() + dynamodb_value_size(value))
        .sum();
    if size > DYNAMODB_MAX_ITEM {
        return Err(Refusal {
            code: "ValidationException",
            message: format!("Item size has exceeded the maximum allowed size ({size} bytes)"),
        });
    }
    Ok(())
}

#[derive(Debug)]
struct Guard {
    upstream: String,
    http: reqwest::Client,
    /// `MaximumMessageSize` by queue URL.
    queue_limits: Mutex<HashMap<String, usize>>,
    /// Key attributes by table name.
    table_keys: Mutex<HashMap<String, KeyAttributes>>,
    /// Secret ARNs by secret name.
    secret_arns: Mutex<HashMap<String, String>>,
    /// The IAM evaluator, started on the first call signed by a role
    /// (or why it cannot run).
    evaluator: tokio::sync::OnceCell<Result<Arc<iam::Evaluator>, String>>,
    /// Striped locks over (table, partition key): one write of a partition
    /// at a time, as DynamoDB's conditional write is atomic.
    write_locks: Vec<tokio::sync::Mutex<()>>,
}

/// How many write locks the proxy stripes partitions over.
const WRITE_LOCKS: usize = 64;

/// The URL of a proxy that enforces AWS's limits in front of `upstream`
/// (moto), started on first use and kept for the life of the process — on
/// a thread of its own, so it outlives any one test's runtime.
pub fn guarded_endpoint(upstream: &str) -> String {
    static GUARDS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let upstream = upstream.trim_end_matches('/').to_owned();
    let mut guards = GUARDS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(url) = guards.get(&upstream) {
        return url.clone();
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let guard = Arc::new(Guard {
        upstream: upstream.clone(),
        http: reqwest::Client::new(),
        queue_limits: Mutex::default(),
        table_keys: Mutex::default(),
        secret_arns: Mutex::default(),
        evaluator: tokio::sync::OnceCell::new(),
        write_locks: (0..WRITE_LOCKS)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect(),
    });
    std::thread::Builder::new()
        .name("aws-limits".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the limits proxy");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = Router::new().fallback(handle).with_state(guard);
                let _ = axum::serve(listener, app).await;
            });
        })
        .expect("the limits proxy thread starts");
    let url = format!("http://{addr}");
    guards.insert(upstream, url.clone());
    url
}

/// The service operation of an AWS JSON-protocol request
/// (`X-Amz-Target: AmazonSQS.SendMessageBatch` → `SendMessageBatch`).
pub fn operation(headers: &HeaderMap) -> &str {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
}

async fn handle(State(guard): State<Arc<Guard>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let op = operation(&parts.headers).to_owned();
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if let Some((role, region)) = iam::caller(authorization) {
        if let Err(denied) = guard.authorize(&role, &region, &parts.headers, &body).await {
            return denied;
        }
    }
    if matches!(op.as_str(), "SendMessage" | "SendMessageBatch" | "PutItem") {
        if let Ok(request) = serde_json::from_slice::<Value>(&body) {
            if let Err(refusal) = guard.check(&op, &request, &parts.headers).await {
                tracing::warn!(operation = op, code = refusal.code, message = %refusal.message,
                    "refused as AWS would");
                return refusal_response(&op, &refusal);
            }
        }
    }
    let _one_write_of_a_partition = match op.as_str() {
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            Some(guard.write_lock(&body, &parts.headers).await)
        }
        _ => None,
    };
    guard
        .forward(&parts.method, &parts.uri, &parts.headers, body)
        .await
}

/// What the IAM checks of one request need to know of its tables and
/// secrets, fetched before they run.
#[derive(Debug, Default)]
struct Known {
    partition_keys: HashMap<String, String>,
    secret_arns: HashMap<String, String>,
}

impl iam::Lookups for Known {
    fn partition_key(&self, table: &str) -> Option<String> {
        self.partition_keys.get(table).cloned()
    }
    fn secret_arn(&self, name: &str) -> Option<String> {
        self.secret_arns.get(name).cloned()
    }
}

impl Guard {
    /// Checks a call signed by `role` as IAM would: each authorization it
    /// needs ([`iam::checks`]) through the evaluator. `Err` is the answer
    /// AWS gives a denied call.
    async fn authorize(
        &self,
        role: &iam::Role,
        region: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(), Response<Body>> {
        let mode = iam::Mode::from_env();
        if mode == iam::Mode::Off {
            return Ok(());
        }
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let denied = |message: String| {
            tracing::warn!(role = role.logical_id, target, %message, "denied as IAM would");
            access_denied(target, &message)
        };
        let evaluator = match self
            .evaluator
            .get_or_init(|| async { iam::Evaluator::start().map(Arc::new) })
            .await
        {
            Ok(evaluator) => evaluator.clone(),
            Err(why) if mode == iam::Mode::Required => {
                return Err(denied(format!("SWITCHBOARD_IAM=required and {why}")))
            }
            Err(why) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(%why, "AWS calls are not checked against the functions' roles");
                });
                return Ok(());
            }
        };
        let known = self.known(&request, headers).await;
        let checks = iam::checks(target, &request, region, &known).map_err(|why| {
            denied(format!(
                "{} (role {}) made a call the local IAM check cannot name: {why}",
                role.functions.join(","),
                role.logical_id
            ))
        })?;
        for check in checks {
            let answer = evaluator.decide(role, &check).await;
            iam::log_call(role, &check, &answer);
            if answer.decision != "Allowed" {
                return Err(denied(iam::denial_message(
                    role,
                    &check,
                    answer.error.as_deref(),
                )));
            }
        }
        Ok(())
    }

    /// The partition keys of the tables and the ARNs of the secrets a
    /// request names.
    async fn known(&self, request: &Value, headers: &HeaderMap) -> Known {
        let mut known = Known::default();
        let mut tables: Vec<String> = request["RequestItems"]
            .as_object()
            .map(|items| items.keys().cloned().collect())
            .unwrap_or_default();
        tables.extend(request["TableName"].as_str().map(str::to_owned));
        for table in tables {
            if let Some(pk) = self.partition_key(&table, headers).await {
                known.partition_keys.insert(table, pk);
            }
        }
        if let Some(name) = request["SecretId"]
            .as_str()
            .filter(|id| !id.starts_with("arn:"))
        {
            if let Some(arn) = self.secret_arn(name, headers).await {
                known.secret_arns.insert(name.to_owned(), arn);
            }
        }
        known
    }

    /// The lock of the partition a write names (its table and partition
    /// key value), held while the write goes to moto.
    async fn write_lock(
        &self,
        body: &Bytes,
        headers: &HeaderMap,
    ) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let table = request["TableName"].as_str().unwrap_or_default();
        let item = if request["Item"].is_object() {
            &request["Item"]
        } else {
            &request["Key"]
        };
        let partition = self
            .partition_key(table, headers)
            .await
            .map(|pk| item[&pk].to_string())
            .unwrap_or_default();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (table, partition).hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % WRITE_LOCKS as u64).unwrap_or_default();
        self.write_locks[stripe].lock().await
    }

    /// The partition key attribute of `table`: the first key of
    /// [`Guard::table_keys`], which lists the base table's schema first,
    /// its HASH key first.
    async fn partition_key(&self, table: &str, headers: &HeaderMap) -> Option<String> {
        self.table_keys(table, headers)
            .await
            .into_iter()
            .find(|(_, sort)| !sort)
            .map(|(pk, _)| pk)
    }

    async fn secret_arn(&self, name: &str, headers: &HeaderMap) -> Option<String> {
        if let Some(arn) = self
            .secret_arns
            .lock()
            .ok()
            .and_then(|m| m.get(name).cloned())
        {
            return Some(arn);
        }
        let reply = self
            .call(
                headers,
                "secretsmanager.DescribeSecret",
                &json!({ "SecretId": name }),
            )
            .await;
        let arn = reply["ARN"].as_str()?.to_owned();
        if let Ok(mut cache) = self.secret_arns.lock() {
            cache.insert(name.to_owned(), arn.clone());
        }
        Some(arn)
    }

    async fn check(&self, op: &str, request: &Value, headers: &HeaderMap) -> Result<(), Refusal> {
        match op {
            "PutItem" => {
                let table = request["TableName"].as_str().unwrap_or_default();
                let keys = self.table_keys(table, headers).await;
                check_put_item(request, &keys)
            }
            _ => {
                let queue = request["QueueUrl"].as_str().unwrap_or_default();
                let max = self.queue_limit(queue, headers).await;
                if op == "SendMessage" {
                    check_sqs_message(request, max)
                } else {
                    check_sqs_batch(request, max)
                }
            }
        }
    }

    async fn queue_limit(&self, queue: &str, headers: &HeaderMap) -> usize {
        if let Some(max) = self
            .queue_limits
            .lock()
            .ok()
            .and_then(|m| m.get(queue).copied())
        {
            return max;
        }
        let reply = self
            .call(
                headers,
                "AmazonSQS.GetQueueAttributes",
                &json!({ "QueueUrl": queue, "AttributeNames": ["MaximumMessageSize"] }),
            )
            .await;
        let max = reply["Attributes"]["MaximumMessageSize"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .unwrap_or(SQS_DEFAULT_MAX_MESSAGE);
        if let Ok(mut limits) = self.queue_limits.lock() {
            limits.insert(queue.to_owned(), max);
        }
        max
    }

    async fn table_keys(&self, table: &str, headers: &HeaderMap) -> KeyAttributes {
        if let Some(keys) = self
            .table_keys
            .lock()
            .ok()
            .and_then(|m| m.get(table).cloned())
        {
            return keys;
        }
        let reply = self
            .call(
                headers,
                "DynamoDB_20120810.DescribeTable",
                &json!({ "TableName": table }),
            )
            .await;
        let table_info = &reply["Table"];
        let mut schemas = vec![table_info["KeySchema"].clone()];
        for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
            for index in table_info[kind].as_array().into_iter().flatten() {
                schemas.push(index["KeySchema"].clone());
            }
        }
        let mut keys = KeyAttributes::new();
        for schema in schemas {
            for element in schema.as_array().into_iter().flatten() {
                let name = element["AttributeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let sort = element["KeyType"] == "RANGE";
                if !keys.contains(&(name.clone(), sort)) {
                    keys.push((name, sort));
                }
            }
        }
        if let Ok(mut cache) = self.table_keys.lock() {
            cache.insert(table.to_owned(), keys.clone());
        }
        keys
    }

    /// A metadata call of our own to the upstream, with the caller's
    /// credentials headers (moto does not check signatures).
    async fn call(&self, headers: &HeaderMap, target: &str, body: &Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/", self.upstream))
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string());
        if let Some(auth) = headers.get("authorization") {
            request = request.header("authorization", auth);
        }
        match request.send().await {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    async fn forward(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Body> {
        forward(&self.http, &self.upstream, method, uri, headers, body)
            .await
            .unwrap_or_else(|error| {
                let mut out = Response::new(Body::from(format!("upstream unavailable: {error}")));
                *out.status_mut() = StatusCode::BAD_GATEWAY;
                out
            })
    }
}

/// Sends a request on to `upstream` as it came (path, query, headers but
/// `host` and `content-length`, body) and returns the upstream's answer as
/// it came: what a transparent proxy in front of moto does.
pub async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, reqwest::Error> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = http
        .request(method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            out.headers_mut().insert(name, value.clone());
        }
    }
    Ok(out)
}

/// AWS's answer to a call its caller's role does not allow: 400 with
/// `AccessDeniedException` in the JSON protocols (SQS's query-compatible
/// code `AccessDenied`).
fn access_denied(target: &str, message: &str) -> Response<Body> {
    let body = json!({
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "message": message,
        "Message": message,
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        "application/x-amz-json-1.0".parse().expect("static"),
    );
    if target.starts_with("AmazonSQS.") {
        headers.insert(
            "x-amzn-query-error",
            "AccessDenied;Sender".parse().expect("static"),
        );
    }
    response
}

/// AWS's JSON-protocol error response for a refusal.
fn refusal_response(op: &str, refusal: &Refusal) -> Response<Body> {
    let error_type = if op == "PutItem" {
        format!("com.amazon.coral.validate#{}", refusal.code)
    } else {
        format!("com.amazonaws.sqs#{}", refusal.code)
    };
    let body = json!({ "__type": error_type, "message": refusal.message });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        "application/x-amz-json-1.0".parse().expect("static"),
    );
    if op != "PutItem" {
        if let Ok(value) = format!("AWS.SimpleQueueService.{};Sender", refusal.code).parse() {
            headers.insert("x-amzn-query-error", value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, attrs: Value) -> Value {
        json!({ "MessageBody": body, "MessageAttributes": attrs,
                "MessageGroupId": "g", "MessageDeduplicationId": "d" })
    }

    #[test]
    fn sqs_character_rules_are_the_documented_ranges() {
        for c in [
            '\t',
            '\n',
            '\r',
            ' ',
            '\u{7f}',
            '\u{d7ff}',
            '\u{e000}',
            '\u{fffd}',
            '\u{10000}',
        ] {
            assert!(sqs_allows(c), "{c:?}");
        }
        for c in ['\0', '\u{1}', '\u{1f}', '\u{fffe}', '\u{ffff}'] {
            assert!(!sqs_allows(c), "{c:?}");
        }
        let bad = message("a\u{ffff}", json!({}));
        assert_eq!(
            check_sqs_message(&bad, 1000).map_err(|r| r.code),
            Err("InvalidMessageContents")
        );
        let bad_attr = message(
            "ok",
            json!({ "type": { "DataType": "String", "StringValue": "x\u{1}" } }),
        );
        assert_eq!(
            check_sqs_message(&bad_attr, 1000).map_err(|r| r.code),
            Err("InvalidMessageContents")
        );
    }

    #[test]
    fn sizes_count_attributes_and_the_batch_total() {
        let attrs = json!({ "type": { "DataType": "String", "StringValue": "abcd" } });
        // 90 + "type" 4 + "String" 6 + 4 = 104
        let m = message(&"x".repeat(90), attrs);
        assert_eq!(sqs_message_size(&m), 104);
        assert!(check_sqs_message(&m, 104).is_ok());
        assert!(check_sqs_message(&m, 103).is_err());
        let batch = json!({ "Entries": [m.clone(), m] });
        assert_eq!(
            check_sqs_batch(&batch, 207).map_err(|r| r.code),
            Err("BatchRequestTooLong")
        );
        assert!(check_sqs_batch(&batch, 208).is_ok());
    }

    #[test]
    fn dynamodb_key_limits_apply_to_index_keys() {
        let keys = vec![("pk".to_owned(), false), ("conv_sk".to_owned(), true)];
        let put = |pk: usize, sk: usize| json!({ "Item": { "pk": { "S": "p".repeat(pk) }, "conv_sk": { "S": "s".repeat(sk) } } });
        assert!(check_put_item(&put(2048, 1024), &keys).is_ok());
        assert!(check_put_item(&put(2049, 1), &keys).is_err());
        assert!(check_put_item(&put(1, 1025), &keys).is_err());
    }
}
