//! Helpers for switchboard's cross-crate and end-to-end tests: fixtures,
//! test keys and signing, a local stack per test (on the moto server that
//! `make test` starts), queue and table readers, and a Lambda Runtime API
//! emulator to drive the real function binaries.
#![forbid(unsafe_code)]

pub mod cost;
pub mod faults;
pub mod runtime;

use ed25519_dalek::SigningKey;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard_local::{LocalOptions, LocalStack};
use switchboard_providers::registry::{self, descriptor, SignRequest};
use switchboard_types::{Family, Provider, StoredEvent};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The providers' documented example payloads, as (provider, fixture
/// directory, file name), from the registry: the seeds every test and
/// measurement uses.
pub fn seeds() -> Vec<(Provider, &'static str, &'static str)> {
    registry::all()
        .flat_map(|d| {
            d.fixtures
                .iter()
                .map(move |file| (d.provider, d.name(), *file))
        })
        .collect()
}

/// Every event of the seeds, as its own body: a seed may carry several (a
/// WhatsApp batch), which the webhook splits and stores one by one. Each is
/// (provider, `<dir>/<file>#<n>`, the event's body).
pub fn seed_parts() -> Vec<(Provider, String, Vec<u8>)> {
    seeds()
        .into_iter()
        .flat_map(|(provider, dir, file)| {
            switchboard_providers::split_body(provider, &fixture(dir, file))
                .into_iter()
                .enumerate()
                .map(|(n, part)| (provider, format!("{dir}/{file}#{n}"), part.into_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// How many events the seeds carry ([`seed_parts`]).
pub fn seed_events() -> usize {
    seed_parts().len()
}

/// A distinct copy of a seed: every `id` field's value (a string or a
/// number, anywhere in the body) gets `tag` in front, so its event, keyed by
/// ids, is a new event to every provider. The `id` of a WhatsApp entry (an
/// object with `changes`) names the account, which decides whether the
/// event is published, not which event it is: it is kept.
pub fn distinct(seed: &[u8], tag: &str) -> Vec<u8> {
    fn walk(value: &mut Value, tag: &str) {
        match value {
            Value::Object(map) => {
                let account = map.contains_key("changes");
                for (key, v) in map.iter_mut() {
                    match v {
                        Value::String(_) | Value::Number(_) if key == "id" && !account => {
                            let old = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            *v = Value::String(format!("{tag}-{old}"));
                        }
                        _ => walk(v, tag),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, tag)),
            _ => {}
        }
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(seed) else {
        return distinct_form(seed, tag);
    };
    walk(&mut body, tag);
    serde_json::to_vec(&body).expect("encodes")
}

/// [`distinct`] for a form body (Twilio's): every `…Sid` parameter that
/// names the event (not the account, `AccountSid`, nor the messaging
/// service) gets `tag` in front.
fn distinct_form(seed: &[u8], tag: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(seed);
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value))
                if name.ends_with("Sid")
                    && !matches!(name, "AccountSid" | "MessagingServiceSid") =>
            {
                format!("{name}={tag}-{value}")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The organisation of the Partoo seed (`payload.org_id`), the one the test
/// stacks list in `PARTOO_ORG_IDS`.
pub const PARTOO_SEED_ORG: &str = "123";

/// A fixture's bytes, exactly as committed (`tests/fixtures/<provider>/<name>`).
pub fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures").join(provider).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Test keys: each provider's own dev credentials (its registry
/// descriptor makes them) from fixed seeds, a current and an old (still
/// active) one to exercise rotation, and a stranger no stack knows.
pub mod keys {
    use super::*;
    use std::sync::LazyLock;
    use switchboard_providers::registry::DevCredential;

    /// A fixed seed per provider and role, so no two credentials are equal.
    fn seed(provider: Provider, role: &str) -> [u8; 32] {
        Sha256::digest(format!("switchboard-tests/{provider}/{role}")).into()
    }

    fn credentials(role: &'static str) -> HashMap<Provider, DevCredential> {
        Provider::ALL
            .iter()
            .map(|&p| (p, (descriptor(p).credentials.dev)(&seed(p, role))))
            .collect()
    }

    static CURRENT: LazyLock<HashMap<Provider, DevCredential>> =
        LazyLock::new(|| credentials("current"));
    static OLD: LazyLock<HashMap<Provider, DevCredential>> = LazyLock::new(|| credentials("old"));

    /// A provider's current credential.
    pub fn current(provider: Provider) -> &'static DevCredential {
        &CURRENT[&provider]
    }

    /// A provider's old, still active credential.
    pub fn old(provider: Provider) -> &'static DevCredential {
        &OLD[&provider]
    }

    /// Current ZipMessage token.
    pub fn zipmessage_token() -> &'static str {
        &current(Provider::Zipmessage).signing
    }

    /// Old, still active ZipMessage token.
    pub fn zipmessage_old_token() -> &'static str {
        &old(Provider::Zipmessage).signing
    }

    /// Current Bird signing key.
    pub fn bird_key() -> &'static str {
        &current(Provider::Bird).signing
    }

    /// Old, still active Bird signing key.
    pub fn bird_old_key() -> &'static str {
        &old(Provider::Bird).signing
    }

    /// Current Partoo signing key.
    pub fn partoo() -> SigningKey {
        SigningKey::from_bytes(&seed(Provider::Partoo, "current"))
    }

    /// Old, still active Partoo signing key.
    pub fn partoo_old() -> SigningKey {
        SigningKey::from_bytes(&seed(Provider::Partoo, "old"))
    }

    /// A key Partoo's configuration does not know.
    pub fn partoo_stranger() -> SigningKey {
        SigningKey::from_bytes(&seed(Provider::Partoo, "stranger"))
    }

    /// Configured Partoo public keys (base64 DER).
    pub fn partoo_public_keys() -> Vec<String> {
        vec![
            current(Provider::Partoo).configured.clone(),
            old(Provider::Partoo).configured.clone(),
        ]
    }
}

/// A ZipMessage body without any time of its own (no `occurred_at`, no
/// payload `…_at`): stored with no signed time, its sort key `#<id>`, as
/// Partoo's `message_updated` always is.
pub fn without_times(body: &mut Value) {
    if let Some(envelope) = body.as_object_mut() {
        envelope.remove("occurred_at");
    }
    if let Some(payload) = body["payload"].as_object_mut() {
        payload.retain(|k, _| !k.ends_with("_at"));
    }
}

/// `X-Partoo-Signature-v1` for `body` under `key`.
pub fn partoo_signature(key: &SigningKey, body: &[u8]) -> String {
    switchboard_providers::partoo::sign(key, body)
}

/// The test keys (current and old of every provider) as secret values, by
/// the variable naming each secret.
pub fn test_secret_values() -> HashMap<String, String> {
    registry::all()
        .map(|d| {
            let configured =
                [keys::current(d.provider), keys::old(d.provider)].map(|c| c.configured.clone());
            (
                d.credentials.secret.to_owned(),
                serde_json::to_string(&configured).unwrap_or_default(),
            )
        })
        .collect()
}

/// What a function binary gets run with: its environment as template.yaml
/// resolves it, plus what Lambda provides: its role's credentials (every
/// call it makes is checked against that role, `switchboard_local::iam`),
/// moto's endpoint, and the region unless the environment sets it.
pub fn lambda_env(
    functions: &[switchboard_local::provision::LocalFunction],
    binary: &str,
) -> HashMap<String, String> {
    let function = functions
        .iter()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("template.yaml has a function built from {binary}"));
    let mut env = function.env.clone();
    env.insert(
        "AWS_ENDPOINT_URL".into(),
        switchboard_local::aws_limits::guarded_endpoint(&moto_endpoint()),
    );
    env.insert(
        "AWS_REGION".into(),
        std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
    );
    env.extend(switchboard_local::role_credentials(function));
    env
}

/// Provisions template.yaml's resources under a unique stack name, without
/// starting the gateway or the poller (for benchmarks that run the binaries).
pub async fn provision_only() -> (
    aws_config::SdkConfig,
    switchboard_local::provision::Provisioned,
) {
    let sdk = switchboard_local::local_sdk_config().await;
    let template = switchboard_local::template::Template::load(
        &root().join("template.yaml"),
        &unique("b"),
        "us-east-1",
        &HashMap::new(),
    )
    .expect("template.yaml loads");
    let provisioned =
        switchboard_local::provision::provision(&sdk, &template, &test_secret_values())
            .await
            .unwrap_or_else(|e| panic!("provisioning on moto: {e:#}"));
    (sdk, provisioned)
}

/// A started local stack with test keys, unique resource names, and helpers.
#[derive(Debug)]
pub struct TestStack {
    /// The running stack.
    pub stack: LocalStack,
    /// An HTTP client.
    pub http: reqwest::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

/// `sdk` for the tests' own reads and checks (not the product's calls,
/// which keep their deliberate 2 s / 5 s timeouts): on a loaded 2-core
/// machine moto may take longer than that to answer a large read, and a
/// test must not fail on its own reading.
pub fn patient(sdk: &aws_config::SdkConfig) -> aws_config::SdkConfig {
    sdk.to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        )
        .build()
}

/// The moto endpoint, or a panic that says how to get one.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests need the moto server that `make test` starts"
        )
    })
}

/// A short random name part.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}

impl TestStack {
    /// Starts a stack named uniquely on the moto server.
    pub async fn start() -> Self {
        Self::start_with(HashMap::new()).await
    }

    /// Starts a stack with extra function environment. Unless it says
    /// otherwise, settings are the local stack's defaults: Partoo's
    /// allow-list is the seed's organisation ([`PARTOO_SEED_ORG`]).
    pub async fn start_with(env_overrides: HashMap<String, String>) -> Self {
        Self::start_with_secrets(HashMap::new(), env_overrides).await
    }

    /// Starts a stack whose secrets hold `secrets` (by the variable naming
    /// each secret) instead of the test keys, with extra function environment.
    pub async fn start_with_secrets(
        secrets: HashMap<String, String>,
        env_overrides: HashMap<String, String>,
    ) -> Self {
        Self::start_full(secrets, env_overrides, None).await
    }

    /// Starts a stack whose AWS calls all go to `endpoint` (a fault proxy
    /// in front of moto), its stream read by `virtual_shards` concurrent
    /// virtual shards.
    pub async fn start_via(endpoint: &str, virtual_shards: usize) -> Self {
        Self::start_full(
            HashMap::new(),
            HashMap::new(),
            Some((endpoint.to_owned(), virtual_shards)),
        )
        .await
    }

    async fn start_full(
        secrets: HashMap<String, String>,
        env_overrides: HashMap<String, String>,
        via: Option<(String, usize)>,
    ) -> Self {
        Self::start_configured(|options| {
            options.secret_values.extend(secrets);
            options.env_overrides = env_overrides;
            if let Some((endpoint, shards)) = via {
                options.endpoint = Some(endpoint);
                options.virtual_shards = shards;
            }
        })
        .await
    }

    /// Starts a stack with the test keys, as `configure` changes its options.
    pub async fn start_configured(configure: impl FnOnce(&mut LocalOptions)) -> Self {
        moto_endpoint();
        let mut options = LocalOptions::new(
            root().join("template.yaml"),
            &unique("t"),
            ([127, 0, 0, 1], 0).into(),
        );
        options.secret_values = test_secret_values();
        configure(&mut options);
        let stack = LocalStack::start(options)
            .await
            .unwrap_or_else(|e| panic!("starting the local stack: {e:#}"));
        let sqs = aws_sdk_sqs::Client::new(&patient(&stack.sdk));
        let dynamodb = aws_sdk_dynamodb::Client::new(&patient(&stack.sdk));
        Self {
            stack,
            http: reqwest::Client::new(),
            sqs,
            dynamodb,
        }
    }

    /// Writes this stack's state file (what `switchboard-local up` records,
    /// with the current test keys) to a fresh temporary path, for the local
    /// tools to run against it (`SWITCHBOARD_STATE`).
    pub fn state_file(&self) -> PathBuf {
        let providers = registry::all()
            .map(|d| switchboard_local::state::ProviderKeys {
                provider: d.provider,
                signing: Some(keys::current(d.provider).signing.clone()),
                tenants: Default::default(),
                tenant_from_body: keys::current(d.provider).signing
                    != keys::current(d.provider).configured,
            })
            .collect();
        let path = std::env::temp_dir()
            .join(unique("switchboard-state-"))
            .join("stack.json");
        self.stack
            .state(providers)
            .write(&path)
            .unwrap_or_else(|e| panic!("writing the state file: {e:#}"));
        path
    }

    /// The table as `function` (replay or reprocess) reads and writes it:
    /// its calls signed as its role, and checked against it.
    pub fn store_of(&self, function: &str) -> switchboard_aws::DynamoStore {
        switchboard_aws::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(self.stack.sdk_of(function)),
            &self.stack.table_name,
        )
    }

    /// The three queues as `function` (replay) publishes to them.
    pub fn publisher_of(&self, function: &str) -> switchboard_aws::SqsPublisher {
        let queues = switchboard_aws::QueueUrls(
            Family::ALL
                .map(|f| (f, self.stack.queue_url(f).to_owned()))
                .into(),
        );
        switchboard_aws::SqsPublisher::new(
            aws_sdk_sqs::Client::new(self.stack.sdk_of(function)),
            queues,
        )
    }

    /// The Bird webhook URL this stack verifies signatures against.
    pub fn bird_url(&self) -> String {
        self.stack.url(descriptor(Provider::Bird).route)
    }

    /// POSTs JSON to `path` with extra headers; returns (status, JSON body).
    pub async fn post(&self, path: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let mut map = HeaderMap::new();
        map.insert(
            "content-type",
            "application/json".parse().expect("static header"),
        );
        for (name, value) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let response = self
            .http
            .post(self.stack.url(path))
            .headers(map)
            .body(body.to_vec())
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON response {status}: {text}")),
        )
    }

    /// POSTs a body as `provider` sends it now, with its current test
    /// credential (in the path or signing the request) and extra headers
    /// (a later `content-type` replaces the default JSON one).
    pub async fn post_as(
        &self,
        provider: Provider,
        body: &[u8],
        extra: &[(&str, String)],
    ) -> (u16, Value) {
        self.post_signed(provider, &keys::current(provider).signing, body, extra)
            .await
    }

    /// POSTs a body as `provider` sends it now with the signing credential
    /// `key` (in the path or signing the request) and extra headers.
    pub async fn post_signed(
        &self,
        provider: Provider,
        key: &str,
        body: &[u8],
        extra: &[(&str, String)],
    ) -> (u16, Value) {
        let d = descriptor(provider);
        let path = d.path(key);
        let mut headers: Vec<(&str, String)> = (d.sign)(&SignRequest {
            key,
            url: &self.stack.url(&path),
            body,
            timestamp: chrono::Utc::now().timestamp(),
        })
        .expect("a test key signs");
        headers.extend(extra.iter().cloned());
        self.post(&path, body, &headers).await
    }

    /// POSTs to the ZipMessage route with the current token.
    pub async fn post_zipmessage(&self, body: &[u8]) -> (u16, Value) {
        self.post_as(Provider::Zipmessage, body, &[]).await
    }

    /// POSTs a body signed with the current Partoo key.
    pub async fn post_partoo(&self, body: &[u8]) -> (u16, Value) {
        self.post_as(Provider::Partoo, body, &[]).await
    }

    /// POSTs a body signed with the current Partoo key, with extra headers.
    pub async fn post_partoo_with(&self, body: &[u8], extra: &[(&str, String)]) -> (u16, Value) {
        self.post_as(Provider::Partoo, body, extra).await
    }

    /// POSTs a body signed for Bird now, with extra headers.
    pub async fn post_bird(&self, body: &[u8], extra: &[(&str, String)]) -> (u16, Value) {
        self.post_as(Provider::Bird, body, extra).await
    }

    /// Every item in the table (a test-only Scan).
    pub async fn items(&self) -> Vec<StoredEvent> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            // Every page: a Scan answers at most 1 MB.
            let output = self
                .dynamodb
                .scan()
                .table_name(&self.stack.table_name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            out.extend(output.items().iter().map(|item| {
                serde_dynamo::from_item(item.clone()).expect("items decode as StoredEvent")
            }));
            match output.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return out,
            }
        }
    }

    /// Waits until `family`'s queue has delivered `expected` messages, then
    /// keeps listening for `settle` to catch any extra; returns them all
    /// (body as JSON, attributes incl. `MessageGroupId`, message attributes).
    /// The messages stay in flight (not deleted).
    pub async fn drain(
        &self,
        family: Family,
        expected: usize,
        settle: Duration,
    ) -> Vec<QueueMessage> {
        let url = self.stack.queue_url(family).to_owned();
        collect(expected, settle, || async {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .wait_time_seconds(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive");
            received
                .messages()
                .iter()
                .map(QueueMessage::from_sdk)
                .collect()
        })
        .await
    }
}

impl TestStack {
    /// Like [`TestStack::drain`], but deletes each message once read, as a
    /// consumer acknowledges it, so later messages of the same FIFO group
    /// are delivered too (a group is held back while one is in flight).
    pub async fn consume(
        &self,
        family: Family,
        expected: usize,
        settle: Duration,
    ) -> Vec<QueueMessage> {
        collect(expected, settle, || async {
            let got = self.receive_and_delete(family).await;
            if got.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            got
        })
        .await
    }

    /// One receive on `family`'s queue (up to 10 messages, no wait); each
    /// message is deleted once read, as a consumer acknowledges it. (A FIFO
    /// queue holds a group back while one of its messages is in flight.)
    pub async fn receive_and_delete(&self, family: Family) -> Vec<QueueMessage> {
        self.try_receive_and_delete(family)
            .await
            .unwrap_or_else(|e| panic!("receive and delete: {e}"))
    }

    /// [`TestStack::receive_and_delete`], a failed receive returned as an
    /// error (a consumer under load tries again). A failed delete is not an
    /// error: the message was received (and is returned), and SQS gives it
    /// again after its visibility timeout, as to any consumer.
    pub async fn try_receive_and_delete(
        &self,
        family: Family,
    ) -> Result<Vec<QueueMessage>, String> {
        let url = self.stack.queue_url(family).to_owned();
        let received = self
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        let mut out = Vec::new();
        for message in received.messages() {
            out.push(QueueMessage::from_sdk(message));
            let _ = self
                .sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await;
        }
        Ok(out)
    }
}

/// Calls `receive` until `expected` messages came, then for `settle` more
/// (20 s at most in all); returns every message received.
async fn collect<F, Fut>(expected: usize, settle: Duration, receive: F) -> Vec<QueueMessage>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<QueueMessage>>,
{
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if out.len() >= expected && quiet_until.is_none() {
            quiet_until = Some(now + settle);
        }
        if quiet_until.is_some_and(|q| now >= q) || now >= deadline {
            return out;
        }
        out.extend(receive().await);
    }
}

/// Serves `app` on a free loopback port; the task stops when aborted.
pub async fn serve_on_loopback(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

/// A message read from a queue.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    /// The CloudEvent.
    pub body: Value,
    /// `MessageGroupId`.
    pub group_id: String,
    /// `MessageDeduplicationId`.
    pub dedup_id: String,
    /// String message attributes.
    pub attributes: HashMap<String, String>,
}

impl QueueMessage {
    /// The message as the SDK received it.
    pub fn from_sdk(message: &aws_sdk_sqs::types::Message) -> Self {
        use aws_sdk_sqs::types::MessageSystemAttributeName as A;
        let system = message.attributes().cloned().unwrap_or_default();
        Self {
            body: serde_json::from_str(message.body().unwrap_or_default())
                .expect("message bodies are JSON"),
            group_id: system.get(&A::MessageGroupId).cloned().unwrap_or_default(),
            dedup_id: system
                .get(&A::MessageDeduplicationId)
                .cloned()
                .unwrap_or_default(),
            attributes: message
                .message_attributes()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The path to a workspace binary built by `cargo build --workspace --bins`.
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// Removes from `command`'s environment every provider setting and the
/// body limit a developer may have exported, so a local stack or tool it
/// runs uses the stack's own (the README's) values.
pub fn without_developer_settings(
    command: &mut std::process::Command,
) -> &mut std::process::Command {
    command.env_remove("MAX_BODY_BYTES");
    for d in registry::all() {
        command.env_remove(d.credentials.inline);
        for s in d.settings {
            command.env_remove(s.name);
        }
    }
    command
}

/// Sends SIGINT, as Ctrl-C does, to process `pid` (or, negative, to the
/// process group `-pid`).
pub fn interrupt(pid: i64) {
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -INT {pid}");
}

/// HTML built to be worst for an HTML-to-text pass, each about `size`
/// bytes: `(name, html)`. Shared by the test that bounds the work and the
/// benchmark that times it.
pub fn worst_case_html(size: usize) -> Vec<(&'static str, String)> {
    let fill = |unit: &str| unit.repeat(size / unit.len().max(1));
    vec![
        // A tag first, so ZipMessage treats the text as HTML.
        ("ampersands", format!("<p>{}", fill("&"))),
        ("unterminated entities", format!("<p>{}", fill("&#x1F60"))),
        ("entities", format!("<p>{}", fill("&amp;&#xFFFF;"))),
        ("open tags, never closed", fill("<")),
        ("deep tags", format!("{}x", fill("<div>"))),
        (
            "one long attribute",
            format!("<a href=\"{}\">x</a>", "h".repeat(size.saturating_sub(16))),
        ),
        ("script never closed", format!("<script>{}", fill("<p>&"))),
        ("mixed", fill("<b>&lt;&amp<i x='&'>&#1;</i></b>\n  ")),
    ]
}
