//! `switchboard-local`: the local stack and its developer helpers.
//!
//! ```text
//! switchboard-local up [--port 3000] [--stack switchboard-local] [--template template.yaml]
//! switchboard-local sign PROVIDER FILE [--timestamp UNIX] [--url URL]   # a signed provider's signature header value
//! switchboard-local env                                                  # export lines: each provider's dev credential, public URLs
//! switchboard-local watch  [--stack switchboard-local]   # print (and consume) queue messages
//! switchboard-local events [--stack switchboard-local]   # list stored events
//! switchboard-local replay    REQUEST [--stack switchboard-local]
//! switchboard-local reprocess REQUEST [--stack switchboard-local]
//! ```
//! REQUEST is the JSON event the replay/reprocess Lambdas take, e.g.
//! `'{"window": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"}}'`,
//! `'{"conversation": {"provider": "partoo", "tenant": "123", "subject": "123/123"}}'` or
//! `'{"events": [<CloudEvent>]}'`.
//! `up` needs `AWS_ENDPOINT_URL` (moto); `make local` starts moto and runs it.
#![forbid(unsafe_code)]

/// The allocator the Lambda binaries use, so the local stack behaves as they do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use switchboard_local::devkeys::{local_keys, DevSecrets, LocalKeys};
use switchboard_local::template::{Physical, Template};
use switchboard_local::{local_defaults, local_sdk_config, LocalOptions, LocalStack};
use switchboard_providers::registry::{self, Descriptor, LocalDefault, SignRequest};
use switchboard_types::{Family, Provider};

const SECRETS_FILE: &str = ".local/dev-secrets.json";

/// Every registered provider's keys: the environment's inline variables
/// when set, otherwise the generated dev credentials.
fn effective() -> Result<Vec<LocalKeys>> {
    let dev = DevSecrets::load_or_create(&PathBuf::from(SECRETS_FILE))?;
    local_keys(&dev, &|name| std::env::var(name).ok())
}

/// Function settings a developer may set in the environment of `make
/// local` (and of the local tools, which then see what the stack sees):
/// the body limit and every registered provider's settings.
fn overridable() -> impl Iterator<Item = &'static str> {
    std::iter::once("MAX_BODY_BYTES")
        .chain(registry::all().flat_map(|d| d.settings.iter().map(|s| s.name)))
}

/// The settings of [`overridable`] that the environment sets.
fn env_overrides() -> HashMap<String, String> {
    overridable()
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
        .collect()
}

/// What every local function runs with beyond the template: the providers'
/// local defaults for a gateway at `--port`, then the developer's settings.
fn local_settings(args: &[String]) -> HashMap<String, String> {
    let mut settings = local_defaults(gateway(args));
    settings.extend(env_overrides());
    settings
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn gateway(args: &[String]) -> SocketAddr {
    ([127, 0, 0, 1], port(args)).into()
}

fn port(args: &[String]) -> u16 {
    flag(args, "--port")
        .or_else(|| std::env::var("SWITCHBOARD_PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// The URL a provider posts to with `keys`: `--url`, else its setting that
/// names its public URL (as the stack resolves it), else the local route.
fn provider_url(keys: &LocalKeys, args: &[String]) -> String {
    let d = keys.descriptor;
    let settings = local_settings(args);
    flag(args, "--url")
        .or_else(|| {
            d.settings
                .iter()
                .find(|s| s.local == LocalDefault::RouteUrl)
                .and_then(|s| settings.get(s.name).cloned())
        })
        .unwrap_or_else(|| format!("http://{}{}", gateway(args), d.path(&keys.signing)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("up") => up(&args).await,
        Some("sign") => sign(&args[1..]),
        Some("env") => env(&args),
        Some("watch") => watch(&args).await,
        Some("events") => events(&args).await,
        Some(tool @ ("replay" | "reprocess")) => run_tool(tool, &args).await,
        Some(other) => {
            bail!("unknown command {other}: use up, sign, env, watch, events, replay or reprocess")
        }
    }
}

/// Prints `export` lines for the README's curl commands: each provider's
/// signing credential (and one per tenant label, `<VARIABLE>_<LABEL>`) and
/// the settings that name its public URL.
fn env(args: &[String]) -> Result<()> {
    let settings = local_settings(args);
    for keys in effective()? {
        let d = keys.descriptor;
        println!("export {}={}", d.credentials.dev_variable, keys.signing);
        for tenant in keys.tenants() {
            let name = format!(
                "{}_{}",
                d.credentials.dev_variable,
                tenant.to_ascii_uppercase().replace('-', "_")
            );
            println!("export {name}={}", keys.signing_for(Some(tenant))?);
        }
        for s in d
            .settings
            .iter()
            .filter(|s| s.local == LocalDefault::RouteUrl)
        {
            println!("export {}={}", s.name, settings[s.name]);
        }
    }
    Ok(())
}

/// Prints the signature header's value for a body, as the provider would send it.
fn sign(args: &[String]) -> Result<()> {
    let names: Vec<&str> = registry::all().map(Descriptor::name).collect();
    let usage = format!(
        "usage: switchboard-local sign {} FILE [--tenant LABEL] [--timestamp UNIX] [--url URL]",
        names.join("|")
    );
    let (Some(name), Some(file)) = (args.first(), args.get(1)) else {
        bail!("{usage}");
    };
    let Some(provider) = Provider::from_name(name) else {
        bail!("unknown provider {name}: {usage}");
    };
    let keys = effective()?
        .into_iter()
        .find(|k| k.descriptor.provider == provider)
        .context("every registered provider has keys")?;
    let d = keys.descriptor;
    let signing = keys.signing_for(flag(args, "--tenant").as_deref())?;
    let Some(header) = d.signature_header else {
        bail!(
            "{} requests are not signed: the credential is in the URL ({})",
            d.display_name,
            d.path(signing)
        );
    };
    let body = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let timestamp = match flag(args, "--timestamp") {
        Some(t) => t.parse().context("--timestamp takes Unix seconds")?,
        None => chrono::Utc::now().timestamp(),
    };
    let headers = (d.sign)(&SignRequest {
        key: signing,
        url: &provider_url(&keys, args),
        body: &body,
        timestamp,
    })
    .map_err(|e| anyhow::anyhow!("the {} signing key: {e}", d.display_name))?;
    let (_, value) = headers
        .into_iter()
        .find(|(name, _)| *name == header)
        .context("the signer sets its signature header")?;
    println!("{value}");
    Ok(())
}

fn stack_template(args: &[String]) -> Result<Template> {
    let stack_name = flag(args, "--stack").unwrap_or_else(|| "switchboard-local".into());
    let path = flag(args, "--template")
        .map(PathBuf::from)
        .unwrap_or_else(|| "template.yaml".into());
    Template::load(&path, &stack_name, "us-east-1", &HashMap::new())
}

/// `(logical id, resolved Properties.<property>)` of each resource of `kind`.
fn named_resources(template: &Template, kind: &str, property: &str) -> Vec<(String, String)> {
    template
        .resources(kind)
        .into_iter()
        .filter_map(|(id, r)| {
            let value = r.get("Properties")?.get(property)?;
            let resolved = template.resolve(value, &Physical::default()).ok()??;
            Some((id, resolved.as_str()?.to_owned()))
        })
        .collect()
}

/// The URL of the running local stack's queue `name`.
async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("queue {name} (is make local running?)"))?;
    Ok(url.queue_url().unwrap_or_default().to_owned())
}

/// The running local stack's resources by logical id (tables, queues,
/// secrets), so each function's environment resolves as in `up`.
async fn stack_physical(template: &Template, sdk: &aws_config::SdkConfig) -> Result<Physical> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut physical = Physical::default();
    for (kind, property) in [
        ("AWS::DynamoDB::Table", "TableName"),
        ("AWS::SecretsManager::Secret", "Name"),
    ] {
        physical
            .refs
            .extend(named_resources(template, kind, property));
    }
    for (id, name) in named_resources(template, "AWS::SQS::Queue", "QueueName") {
        physical.refs.insert(id, queue_url(&sqs, &name).await?);
    }
    Ok(physical)
}

/// Runs `replay` or `reprocess` against the local stack with the
/// environment template.yaml gives the Lambda of the same name.
async fn run_tool(tool: &str, args: &[String]) -> Result<()> {
    let Some(request) = args.get(1).filter(|a| !a.starts_with("--")) else {
        bail!("usage: switchboard-local {tool} REQUEST [--stack NAME] (REQUEST: see --help in the source header or docs/operations.md)");
    };
    let template = stack_template(args)?;
    let sdk = local_sdk_config().await;
    let physical = stack_physical(&template, &sdk).await?;
    let functions = switchboard_local::provision::resolve_functions(&template, &physical)?;
    let function = functions
        .iter()
        .find(|f| f.binary == tool)
        .with_context(|| format!("template.yaml has no {tool} function"))?;
    let mut function_env = function.env.clone();
    function_env.extend(local_settings(args));
    let env = |name: &str| function_env.get(name).cloned();
    let payload: serde_json::Value =
        serde_json::from_str(request).context("REQUEST must be JSON")?;
    // The Lambda's own handler, built from the same environment; no Lambda
    // deadline here, so one run goes to the end of the selection.
    let to_the_end = || true;
    let tool_error = |e: Box<dyn std::error::Error + Send + Sync>| anyhow::anyhow!("{e}");
    let report = if tool == "replay" {
        let handler = switchboard_aws::lambda::ReplayHandler::from_lookup(&env, &sdk)?;
        serde_json::to_value(
            handler
                .run(payload, &to_the_end)
                .await
                .map_err(tool_error)?,
        )?
    } else {
        let handler = switchboard_aws::lambda::ReprocessHandler::from_lookup(&env, &sdk)?;
        serde_json::to_value(
            handler
                .run(payload, &to_the_end)
                .await
                .map_err(tool_error)?,
        )?
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Long-polls every queue of the stack and prints each message, then deletes it.
async fn watch(args: &[String]) -> Result<()> {
    let template = stack_template(args)?;
    let sqs = aws_sdk_sqs::Client::new(&local_sdk_config().await);
    let mut urls = Vec::new();
    for (_, name) in named_resources(&template, "AWS::SQS::Queue", "QueueName") {
        let url = queue_url(&sqs, &name).await?;
        urls.push((name, url));
    }
    eprintln!("watching {} queues; Ctrl-C stops", urls.len());
    loop {
        for (name, url) in &urls {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId,
                )
                .send()
                .await?;
            for message in out.messages() {
                let group = message
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                    })
                    .cloned()
                    .unwrap_or_default();
                let body: serde_json::Value =
                    serde_json::from_str(message.body().unwrap_or_default()).unwrap_or_default();
                println!("── {name}  group={group}");
                println!("{}", serde_json::to_string_pretty(&body)?);
                if let Some(handle) = message.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
            }
        }
    }
}

/// Lists the stored events (a Scan: fine for a local table, never for production).
async fn events(args: &[String]) -> Result<()> {
    let template = stack_template(args)?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&local_sdk_config().await);
    for (_, table) in named_resources(&template, "AWS::DynamoDB::Table", "TableName") {
        let mut items: Vec<switchboard_types::StoredEvent> = Vec::new();
        let mut start = None;
        loop {
            let page = dynamodb
                .scan()
                .table_name(&table)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items() {
                items.push(serde_dynamo::from_item(item.clone())?);
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        items.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        println!("{table}: {} events", items.len());
        for e in items {
            println!(
                "  {}  {:<11} {:<11} {:<24} {:<40} {}",
                e.received_at,
                e.status.as_str(),
                e.provider.as_str(),
                e.event_type,
                e.conversation_key,
                e.reason.unwrap_or_else(|| e.event_id.clone())
            );
        }
    }
    Ok(())
}

async fn up(args: &[String]) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let keys = effective()?;
    let port = port(args);
    let stack_name = flag(args, "--stack").unwrap_or_else(|| "switchboard-local".into());
    let options = LocalOptions {
        template: flag(args, "--template")
            .map(PathBuf::from)
            .unwrap_or_else(|| "template.yaml".into()),
        stack_name: stack_name.clone(),
        bind: ([127, 0, 0, 1], port).into(),
        secret_values: keys
            .iter()
            .map(|k| (k.descriptor.credentials.secret.to_owned(), k.secret_value()))
            .collect(),
        env_overrides: env_overrides(),
        virtual_shards: switchboard_local::default_virtual_shards(),
        endpoint: None,
    };
    let stack = LocalStack::start(options).await?;
    let base = format!("http://{}", stack.addr);
    let settings = local_settings(args);
    println!();
    println!("switchboard local stack '{stack_name}' is up (Ctrl-C stops it)");
    println!();
    println!("  Webhook URLs");
    let width = registry::all()
        .map(|d| d.display_name.len())
        .max()
        .unwrap_or(0);
    for k in &keys {
        let d = k.descriptor;
        println!(
            "    {:<width$} POST {base}{}",
            d.display_name,
            d.path(&k.signing)
        );
    }
    println!();
    println!(
        "  Secrets in use (dev values live in {SECRETS_FILE}; override with the env variables)"
    );
    for k in &keys {
        let d = k.descriptor;
        println!("    {:<30} {}", d.credentials.inline, k.shown());
        for s in d.settings {
            let value = settings.get(s.name).cloned().unwrap_or_else(|| {
                let default = s.default.unwrap_or_default();
                format!("{default} (template default)")
            });
            println!("    {:<30} {value}", s.name);
        }
        if k.asymmetric() {
            println!(
                "    {:<30} {}  (signs as the provider)",
                d.credentials.dev_variable, k.signing
            );
        }
    }
    println!();
    println!("  DynamoDB table  {}", stack.table_name);
    for family in Family::ALL {
        println!("  SQS {:<13} {}", family.as_str(), stack.queue_url(family));
    }
    println!();
    println!("  Inspect: switchboard-local events | watch");
    println!("  Operator tools: switchboard-local replay|reprocess '{{\"events\": [<CloudEvent>]}}' (docs/operations.md)");
    println!();
    tokio::signal::ctrl_c().await?;
    stack.stop();
    println!("local stack stopped");
    Ok(())
}
