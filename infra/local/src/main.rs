//! `switchboard-local`: the local stack and its developer helpers.
//!
//! ```text
//! switchboard-local up [--port 3000] [--stack switchboard-local] [--template template.yaml]
//! switchboard-local sign partoo FILE
//! switchboard-local sign bird FILE [--timestamp UNIX] [--url URL]
//! switchboard-local env
//! switchboard-local watch  [--stack switchboard-local]   # print (and consume) queue messages
//! switchboard-local events [--stack switchboard-local]   # list stored events
//! switchboard-local replay    REQUEST [--stack switchboard-local]
//! switchboard-local reprocess REQUEST [--stack switchboard-local]
//! ```
//! REQUEST is the JSON event the replay/reprocess Lambdas take, e.g.
//! `'{"window": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"}}'`,
//! `'{"conversation": {"provider": "partoo", "key": "123"}}'` or
//! `'{"event_ids": ["…"]}'`.
//! `up` needs `AWS_ENDPOINT_URL` (moto); `make local` starts moto and runs it.
#![forbid(unsafe_code)]

/// The allocator the Lambda binaries use, so the local stack behaves as they do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use switchboard_local::devkeys::{sign_partoo, DevSecrets};
use switchboard_local::template::{Physical, Template};
use switchboard_local::{local_sdk_config, LocalOptions, LocalStack};
use switchboard_providers::{bird, split_key_list};
use switchboard_types::Family;

const SECRETS_FILE: &str = ".local/dev-secrets.json";

struct Effective {
    zipmessage_tokens: Vec<String>,
    partoo_public_keys: Vec<String>,
    bird_signing_keys: Vec<String>,
    dev: DevSecrets,
}

/// Keys from the environment when set, otherwise the generated dev values.
fn effective() -> Result<Effective> {
    let dev = DevSecrets::load_or_create(&PathBuf::from(SECRETS_FILE))?;
    let from_env = |name: &str, fallback: &str| {
        let keys = std::env::var(name)
            .map(|v| split_key_list(&v))
            .unwrap_or_default();
        if keys.is_empty() {
            vec![fallback.to_owned()]
        } else {
            keys
        }
    };
    Ok(Effective {
        zipmessage_tokens: from_env("ZIPMESSAGE_TOKENS", &dev.zipmessage_token),
        partoo_public_keys: from_env("PARTOO_PUBLIC_KEYS", &dev.partoo_public_key),
        bird_signing_keys: from_env("BIRD_SIGNING_KEYS", &dev.bird_signing_key),
        dev,
    })
}

/// Function settings a developer may set in the environment of `make
/// local` (and of the local tools, which then see what the stack sees).
const OVERRIDABLE: [&str; 4] = [
    "BIRD_WEBHOOK_URL",
    "BIRD_TIMESTAMP_TOLERANCE_SECS",
    "MAX_BODY_BYTES",
    "PARTOO_ORG_IDS",
];

/// The Partoo organisation listed locally unless `PARTOO_ORG_IDS` is set:
/// the one in Partoo's documented example (`payload.org_id`), so the README's
/// curl of the seed is published. In AWS the template parameter lists none
/// until the operator sets it.
const LOCAL_PARTOO_ORG_IDS: &str = "123";

/// The overrides of [`OVERRIDABLE`] from the environment, with the local
/// Partoo allow-list default.
fn env_overrides() -> HashMap<String, String> {
    let mut overrides: HashMap<String, String> = OVERRIDABLE
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), std::env::var(name).ok()?)))
        .collect();
    overrides
        .entry("PARTOO_ORG_IDS".to_owned())
        .or_insert_with(|| LOCAL_PARTOO_ORG_IDS.to_owned());
    overrides
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn bird_url(args: &[String]) -> String {
    flag(args, "--url")
        .or_else(|| std::env::var("BIRD_WEBHOOK_URL").ok())
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/webhooks/bird", port(args)))
}

fn port(args: &[String]) -> u16 {
    flag(args, "--port")
        .or_else(|| std::env::var("SWITCHBOARD_PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("up") => up(&args).await,
        Some("sign") => sign(&args[1..]),
        Some("env") => {
            let keys = effective()?;
            println!("export ZIPMESSAGE_TOKEN={}", keys.zipmessage_tokens[0]);
            println!("export BIRD_SIGNING_KEY={}", keys.bird_signing_keys[0]);
            println!("export BIRD_WEBHOOK_URL={}", bird_url(&args));
            Ok(())
        }
        Some("watch") => watch(&args).await,
        Some("events") => events(&args).await,
        Some(tool @ ("replay" | "reprocess")) => run_tool(tool, &args).await,
        Some(other) => {
            bail!("unknown command {other}: use up, sign, env, watch, events, replay or reprocess")
        }
    }
}

fn sign(args: &[String]) -> Result<()> {
    let (Some(provider), Some(file)) = (args.first(), args.get(1)) else {
        bail!("usage: switchboard-local sign partoo|bird FILE [--timestamp UNIX] [--url URL]");
    };
    let body = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let keys = effective()?;
    match provider.as_str() {
        "partoo" => println!("{}", sign_partoo(&keys.dev.partoo_signing_key()?, &body)),
        "bird" => {
            let timestamp = flag(args, "--timestamp")
                .unwrap_or_else(|| chrono::Utc::now().timestamp().to_string());
            println!(
                "{}",
                bird::sign(
                    keys.bird_signing_keys[0].as_bytes(),
                    &timestamp,
                    &bird_url(args),
                    &body
                )
            );
        }
        other => bail!("cannot sign for {other}: partoo or bird (ZipMessage is not signed)"),
    }
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
    function_env.extend(env_overrides());
    let env = |name: &str| function_env.get(name).cloned();
    let payload: serde_json::Value =
        serde_json::from_str(request).context("REQUEST must be JSON")?;
    let (request, selection) =
        switchboard_aws::lambda::tool_request(payload).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = switchboard_aws::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        switchboard_aws::config::table_name(&env)?,
    );
    // No Lambda deadline here: one run goes to the end of the selection.
    let run = switchboard_pipeline::Run {
        cursor: request.cursor.as_deref(),
        ..switchboard_pipeline::Run::to_the_end()
    };
    let report = if tool == "replay" {
        let publisher = switchboard_aws::SqsPublisher::new(
            aws_sdk_sqs::Client::new(&sdk),
            switchboard_aws::QueueUrls::from_lookup(&env)?,
        );
        let replay_id = request.replay_id()?;
        serde_json::to_value(
            switchboard_pipeline::replay(&store, &publisher, &selection, &replay_id, &run).await?,
        )?
    } else {
        let admission = switchboard_aws::config::admission(&env);
        serde_json::to_value(
            switchboard_pipeline::reprocess(&store, &store, &admission, &selection, &run).await?,
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
                "  {}  {:<11} {:<10} {:<24} {:<40} {}",
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
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
    let port = port(args);
    let stack_name = flag(args, "--stack").unwrap_or_else(|| "switchboard-local".into());
    let env_overrides = env_overrides();
    let partoo_orgs = env_overrides
        .get("PARTOO_ORG_IDS")
        .cloned()
        .unwrap_or_default();
    let options = LocalOptions {
        template: flag(args, "--template")
            .map(PathBuf::from)
            .unwrap_or_else(|| "template.yaml".into()),
        stack_name: stack_name.clone(),
        bind: ([127, 0, 0, 1], port).into(),
        secret_values: HashMap::from([
            (
                "ZIPMESSAGE_SECRET_ID".to_owned(),
                json(&keys.zipmessage_tokens),
            ),
            (
                "PARTOO_SECRET_ID".to_owned(),
                json(&keys.partoo_public_keys),
            ),
            ("BIRD_SECRET_ID".to_owned(), json(&keys.bird_signing_keys)),
        ]),
        env_overrides,
    };
    let stack = LocalStack::start(options).await?;
    let base = format!("http://{}", stack.addr);
    println!();
    println!("switchboard local stack '{stack_name}' is up (Ctrl-C stops it)");
    println!();
    println!("  Webhook URLs");
    println!(
        "    ZipMessage  POST {base}/webhooks/zipmessage/{}",
        keys.zipmessage_tokens[0]
    );
    println!("    Partoo      POST {base}/webhooks/partoo");
    println!("    Bird        POST {base}/webhooks/bird");
    println!();
    println!(
        "  Secrets in use (dev values live in {SECRETS_FILE}; override with the env variables)"
    );
    println!(
        "    ZIPMESSAGE_TOKENS   {}",
        keys.zipmessage_tokens.join(",")
    );
    println!(
        "    PARTOO_PUBLIC_KEYS  {}",
        keys.partoo_public_keys.join(",")
    );
    println!(
        "    BIRD_SIGNING_KEYS   {}",
        keys.bird_signing_keys.join(",")
    );
    println!("    BIRD_WEBHOOK_URL    {}", bird_url(args));
    println!("    PARTOO_ORG_IDS      {partoo_orgs}  (Partoo organisations published; others are quarantined)");
    println!(
        "    Partoo dev signing key (seed, base64): {}",
        keys.dev.partoo_private_key
    );
    println!();
    println!("  DynamoDB table  {}", stack.table_name);
    for family in Family::ALL {
        println!("  SQS {:<13} {}", family.as_str(), stack.queue_url(family));
    }
    println!();
    println!("  Inspect: switchboard-local events | watch");
    println!("  Operator tools: switchboard-local replay|reprocess '{{\"event_ids\": [\"...\"]}}' (docs/operations.md)");
    println!();
    tokio::signal::ctrl_c().await?;
    stack.stop();
    println!("local stack stopped");
    Ok(())
}
