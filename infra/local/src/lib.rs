//! The local stack: everything a deployed switchboard runs, on loopback.
//!
//! [`LocalStack::start`] creates the template's table, stream, queues and
//! secrets on moto (`AWS_ENDPOINT_URL`), serves the template's HTTP routes
//! through the same pipeline the Lambdas run, and polls the table's stream
//! into the same fanout code. `make local` runs it through the
//! `switchboard-local` binary; the integration tests start one per test.
#![forbid(unsafe_code)]

pub mod aws_limits;
pub mod devkeys;
pub mod docs;
pub mod gateway;
pub mod iam;
pub mod poller;
pub mod provision;
pub mod runtime;
pub mod sqs_source;
pub mod state;
pub mod template;

use anyhow::{anyhow, bail, Context, Result};
use aws_config::{Region, SdkConfig};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use switchboard_aws::lambda::webhook_ingest;
use switchboard_aws::{sdk_loader, QueueUrls, SqsPublisher};
use switchboard_providers::registry;
use switchboard_types::Family;
use tokio::task::JoinHandle;

/// How to start a local stack.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// template.yaml.
    pub template: PathBuf,
    /// Stands in for the CloudFormation stack name (prefixes every resource name).
    pub stack_name: String,
    /// Where the gateway listens (port 0: any free port).
    pub bind: SocketAddr,
    /// Secret values by the variable that names the secret
    /// (`ZIPMESSAGE_SECRET_ID` → `["token"]`).
    pub secret_values: HashMap<String, String>,
    /// Extra function environment (e.g. `BIRD_WEBHOOK_URL`, `MAX_BODY_BYTES`),
    /// over the template's and [`local_defaults`].
    pub env_overrides: HashMap<String, String>,
    /// Virtual shards the stream poller runs concurrently (see [`poller`]).
    pub virtual_shards: usize,
    /// Where the stack's AWS calls go instead of [`local_sdk_config`]'s
    /// endpoint (a test's fault proxy, which applies AWS's limits itself).
    pub endpoint: Option<String>,
    /// Template parameters over their defaults (`ExampleConsumer=true`).
    pub parameters: HashMap<String, String>,
    /// Where the binaries of SQS-triggered functions are (`target/debug`):
    /// the stack runs each as Lambda would ([`runtime`], [`sqs_source`]).
    pub binaries: Option<PathBuf>,
    /// The visibility timeout of the local SQS event source's receives
    /// instead of the queue's (a failed message returns after it).
    pub visibility_timeout: Option<std::time::Duration>,
    /// Where those functions' output goes besides being kept.
    pub echo: runtime::Echo,
}

impl LocalOptions {
    /// A stack of `template` named `stack_name`, its gateway on `bind`,
    /// with the template's parameters and no function binaries.
    pub fn new(template: PathBuf, stack_name: &str, bind: SocketAddr) -> Self {
        Self {
            template,
            stack_name: stack_name.to_owned(),
            bind,
            secret_values: HashMap::new(),
            env_overrides: HashMap::new(),
            virtual_shards: default_virtual_shards(),
            endpoint: None,
            parameters: HashMap::new(),
            binaries: None,
            visibility_timeout: None,
            echo: runtime::Echo::Stderr,
        }
    }
}

/// Virtual shards of the local stream: `SWITCHBOARD_VIRTUAL_SHARDS`, else 4.
pub fn default_virtual_shards() -> usize {
    std::env::var("SWITCHBOARD_VIRTUAL_SHARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4)
}

/// A running local stack.
#[derive(Debug)]
pub struct LocalStack {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// Its stack name.
    pub stack_name: String,
    /// What was created.
    pub provisioned: provision::Provisioned,
    /// SDK configuration pointing at the local endpoint.
    pub sdk: SdkConfig,
    /// The events table name.
    pub table_name: String,
    /// The family queues.
    pub queues: QueueUrls,
    /// Where its AWS calls go (moto, or a test's proxy in front of it).
    pub endpoint: String,
    /// Each function's environment as the stack runs it, by binary.
    pub function_env: BTreeMap<String, HashMap<String, String>>,
    /// Each function's SDK configuration, signing as its role, by binary.
    pub function_sdk: BTreeMap<String, SdkConfig>,
    /// The functions it runs as binaries (those SQS triggers), by binary.
    pub processes: BTreeMap<String, Arc<runtime::RuntimeApi>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Each registered provider's settings as the local stack sets them over
/// the template's (a developer's own values go over these): fixed values
/// that suit the committed fixtures, and URLs of the local gateway for
/// settings that name the provider's public URL.
pub fn local_defaults(gateway: SocketAddr) -> HashMap<String, String> {
    let base_url = format!("http://{gateway}");
    registry::all()
        .flat_map(|d| d.local_settings(&base_url))
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// Where moto listens unless `AWS_ENDPOINT_URL` says otherwise:
/// `http://127.0.0.1:$MOTO_PORT` (default port 4566).
pub fn default_endpoint() -> String {
    format!(
        "http://127.0.0.1:{}",
        std::env::var("MOTO_PORT").unwrap_or_else(|_| "4566".into())
    )
}

/// The local endpoint: `AWS_ENDPOINT_URL` from the environment, else
/// [`default_endpoint`] — the local tools never talk to real AWS.
pub fn local_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| default_endpoint())
}

/// SDK configuration for [`local_endpoint`]: see [`local_sdk_config_at`].
pub async fn local_sdk_config() -> SdkConfig {
    local_sdk_config_at(&local_endpoint()).await
}

/// SDK configuration for moto at `endpoint`, behind the proxy that refuses
/// what AWS would refuse ([`aws_limits`]), with test credentials and region
/// unless the environment sets them.
pub async fn local_sdk_config_at(endpoint: &str) -> SdkConfig {
    let mut loader = sdk_loader().endpoint_url(aws_limits::guarded_endpoint(endpoint));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "switchboard-local",
        ));
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new("us-east-1"));
    }
    loader.load().await
}

/// `sdk` signing with the access key of a role of the local stack
/// ([`iam::Role::access_key`]): every call it makes is checked against that
/// role's policy.
pub fn as_role(sdk: &SdkConfig, access_key: &str) -> SdkConfig {
    sdk.to_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new(
                access_key,
                "local-role-secret",
                None,
                None,
                "switchboard-local-role",
            ),
        ))
        .build()
}

/// Whether something listens at the AWS endpoint (moto): a stack cannot
/// start without it, and the SDK's own error says so in 900 characters.
async fn answers(endpoint: &str) -> Result<()> {
    let url = reqwest::Url::parse(endpoint)
        .with_context(|| format!("AWS_ENDPOINT_URL is not a URL: {endpoint}"))?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, endpoint, "connecting to the AWS endpoint");
            bail!(
                "nothing answers at {endpoint} (AWS_ENDPOINT_URL): start moto first; \
                 `make local` starts it with the stack"
            )
        }
        Err(_) => bail!(
            "{endpoint} (AWS_ENDPOINT_URL) did not accept a connection within 3 s: is moto running?"
        ),
    }
}

impl LocalStack {
    /// Provisions and starts everything.
    pub async fn start(options: LocalOptions) -> Result<Self> {
        let endpoint = options.endpoint.clone().unwrap_or_else(local_endpoint);
        let sdk = match &options.endpoint {
            Some(endpoint) => local_sdk_config()
                .await
                .to_builder()
                .endpoint_url(endpoint)
                .build(),
            None => local_sdk_config_at(&endpoint).await,
        };
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let listener = match tokio::net::TcpListener::bind(options.bind).await {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
                "port {} is in use on {}: set SWITCHBOARD_PORT (or --port) to a free one",
                options.bind.port(),
                options.bind.ip()
            ),
            Err(e) => return Err(e).with_context(|| format!("binding {}", options.bind)),
        };
        let addr = listener.local_addr()?;
        answers(&endpoint).await?;

        let template = template::Template::load(
            &options.template,
            &options.stack_name,
            &region,
            &options.parameters,
        )?;
        let provisioned = provision::provision(&sdk, &template, &options.secret_values).await?;

        let mut routes = Vec::new();
        let mut tasks = Vec::new();
        let mut table_name = String::new();
        let mut queues = None;
        let mut function_env = BTreeMap::new();
        let mut function_sdk = BTreeMap::new();
        let mut processes = BTreeMap::new();
        for function in &provisioned.functions {
            if !function.queue_events.is_empty() {
                // A function of the user's own (the example consumer): its
                // binary, with the template's environment alone, fed by
                // the local SQS event source.
                function_env.insert(function.binary.clone(), function.env.clone());
                let api = run_binary(&options, function, &function.env).await?;
                tasks.extend(
                    queue_sources(&sdk, &provisioned, function, &api, &options, &region).await?,
                );
                function_sdk.insert(function.binary.clone(), function.sdk(&sdk));
                processes.insert(function.binary.clone(), api);
                continue;
            }
            // The template's environment, the providers' local defaults,
            // then the caller's overrides.
            let mut env = function.env.clone();
            env.extend(local_defaults(addr));
            env.extend(options.env_overrides.clone());
            function_env.insert(function.binary.clone(), env.clone());
            // Its AWS calls are signed as its role, and checked against it.
            let role_sdk = function.sdk(&sdk);
            function_sdk.insert(function.binary.clone(), role_sdk.clone());
            let lookup = |name: &str| env.get(name).cloned();
            if !function.routes.is_empty() {
                let provider = registry::by_function(&function.binary)
                    .ok_or_else(|| {
                        anyhow!(
                            "{} serves a route but is no provider's function",
                            function.binary
                        )
                    })?
                    .provider;
                let (ingest, config) = webhook_ingest(provider, &lookup, &role_sdk)
                    .await
                    .with_context(|| function.logical_id.clone())?;
                table_name = config.table_name;
                for (_, path) in &function.routes {
                    routes.push(gateway::Route::new(path, ingest.clone()));
                }
            }
            if let Some(table) = &function.stream_table {
                let urls =
                    QueueUrls::from_lookup(&lookup).with_context(|| function.logical_id.clone())?;
                let table = provisioned
                    .tables
                    .get(table)
                    .ok_or_else(|| anyhow!("unknown table {table}"))?;
                let stream = poller::stream_arn(&sdk, table).await?;
                let failure_queue = function
                    .failure_queue
                    .as_ref()
                    .and_then(|q| provisioned.queues.get(q))
                    .cloned();
                // Lambda's event source mapping reads the stream and sends
                // to the on-failure destination with the function's role.
                let publisher = Arc::new(SqsPublisher::new(
                    aws_sdk_sqs::Client::new(&role_sdk),
                    urls.clone(),
                ));
                let poller_sdk = role_sdk.clone();
                let settings = poller::Settings {
                    virtual_shards: options.virtual_shards.max(1),
                    ..function.stream_settings.clone()
                };
                tasks.push(tokio::spawn(async move {
                    if let Err(e) =
                        poller::run(poller_sdk, stream, publisher, failure_queue, settings).await
                    {
                        tracing::error!(error = %e, "the stream poller stopped");
                    }
                }));
                queues = Some(urls);
            }
        }
        let app = gateway::router(routes, format!("http://{addr}"));
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the gateway stopped");
            }
        }));
        let queues = queues
            .ok_or_else(|| anyhow!("the template has no stream-triggered fanout function"))?;
        Ok(Self {
            addr,
            stack_name: options.stack_name.clone(),
            provisioned,
            sdk,
            table_name,
            queues,
            endpoint,
            function_env,
            function_sdk,
            processes,
            tasks,
        })
    }

    /// What the state file records for this stack, run by this process
    /// with `providers`' keys ([`state`]).
    pub fn state(&self, providers: Vec<state::ProviderKeys>) -> state::StackState {
        state::StackState {
            pid: std::process::id(),
            stack: self.stack_name.clone(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            gateway: format!("http://{}", self.addr),
            endpoint: self.endpoint.clone(),
            table: self.table_name.clone(),
            queues: self
                .provisioned
                .queues
                .values()
                .map(|url| (queue_name(url).to_owned(), url.clone()))
                .collect(),
            functions: self
                .function_env
                .iter()
                .map(|(binary, env)| (binary.clone(), env.clone().into_iter().collect()))
                .collect(),
            proxy: self.sdk.endpoint_url().map(str::to_owned),
            role_keys: self
                .provisioned
                .functions
                .iter()
                .filter_map(|f| Some((f.binary.clone(), f.access_key.clone()?)))
                .collect(),
            providers,
        }
    }

    /// The SDK configuration `binary`'s function runs with: its calls are
    /// signed as its role and checked against it, as in AWS.
    pub fn sdk_of(&self, binary: &str) -> &SdkConfig {
        self.function_sdk
            .get(binary)
            .unwrap_or_else(|| panic!("the stack runs no function built from {binary}"))
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The queue URL of a family.
    pub fn queue_url(&self, family: Family) -> &str {
        self.queues
            .0
            .get(&family)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Stops the gateway, the pollers and the functions it runs.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
        for process in self.processes.values() {
            process.stop();
        }
    }
}

/// One local SQS event source per SQS event of `function`, invoking `api`.
async fn queue_sources(
    sdk: &SdkConfig,
    provisioned: &provision::Provisioned,
    function: &provision::LocalFunction,
    api: &Arc<runtime::RuntimeApi>,
    options: &LocalOptions,
    region: &str,
) -> Result<Vec<JoinHandle<()>>> {
    // Lambda's SQS event source reads the queue's attributes, receives and
    // deletes with the function's role.
    let role_sqs = aws_sdk_sqs::Client::new(&function.sdk(sdk));
    let mut tasks = Vec::new();
    for event in &function.queue_events {
        let url = provisioned.queues.get(&event.queue).ok_or_else(|| {
            anyhow!(
                "{} reads {}, which is no queue",
                function.logical_id,
                event.queue
            )
        })?;
        let (arn, visibility) = sqs_source::queue_attributes(&role_sqs, url).await?;
        let queue = sqs_source::Queue {
            url: url.clone(),
            arn,
            region: region.to_owned(),
        };
        let settings = sqs_source::Settings {
            function_timeout: function.stream_settings.function_timeout,
            visibility_timeout: options.visibility_timeout.unwrap_or(visibility),
        };
        tasks.push(tokio::spawn(sqs_source::run(
            role_sqs.clone(),
            queue,
            event.clone(),
            api.clone(),
            settings,
        )));
    }
    Ok(tasks)
}

/// Starts `function`'s binary from [`LocalOptions::binaries`] against its
/// own Runtime API, and waits for its init.
async fn run_binary(
    options: &LocalOptions,
    function: &provision::LocalFunction,
    env: &HashMap<String, String>,
) -> Result<Arc<runtime::RuntimeApi>> {
    let build = format!("cargo build -p {}", function.binary);
    let dir = options.binaries.as_ref().ok_or_else(|| {
        anyhow!(
            "{} is triggered by SQS and runs as its own binary: give the directory of the \
             function binaries (`{build}` puts it in target/debug)",
            function.logical_id
        )
    })?;
    let binary = dir.join(&function.binary);
    if !binary.is_file() {
        bail!(
            "{} was not found: build it with `{build}`",
            binary.display()
        );
    }
    let timeout = function.stream_settings.function_timeout;
    let api = runtime::RuntimeApi::start(&function.binary, timeout, options.echo).await?;
    let mut env = env.clone();
    env.extend(role_credentials(function));
    api.spawn(&binary, &function.binary, &env)?;
    api.wait_ready(std::time::Duration::from_secs(30))
        .await
        .with_context(|| function.logical_id.clone())?;
    Ok(Arc::new(api))
}

/// The environment that makes a function binary sign as its role
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), as Lambda's does.
pub fn role_credentials(function: &provision::LocalFunction) -> Vec<(String, String)> {
    function
        .access_key
        .iter()
        .flat_map(|key| {
            [
                ("AWS_ACCESS_KEY_ID".to_owned(), key.clone()),
                (
                    "AWS_SECRET_ACCESS_KEY".to_owned(),
                    "local-role-secret".to_owned(),
                ),
            ]
        })
        .collect()
}

/// A queue's name: the last segment of its URL.
pub fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.stop();
    }
}
