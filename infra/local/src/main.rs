//! `switchboard-local`: the local stack and its developer tools.
//!
//! `up` runs the stack on moto and records what it runs with in the state
//! file ([`switchboard_local::state`]); every other command reads that file,
//! so it sees what the running stack sees from any terminal and any
//! directory of the repository. `switchboard-local --help` lists them.
#![forbid(unsafe_code)]

/// The allocator the Lambda binaries use, so the local stack behaves as they do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use switchboard_local::devkeys::{local_keys, DevSecrets, LocalKeys};
use switchboard_local::runtime::Echo;
use switchboard_local::state::{self, StackState, Status, SECRETS_FILE};
use switchboard_local::{local_sdk_config_at, queue_name, LocalOptions, LocalStack};
use switchboard_providers::registry::{self, LocalDefault, SignRequest};
use switchboard_types::{Family, Provider};

/// The local switchboard stack (on moto) and the tools to try it.
///
/// `make local` starts moto and runs `up`. The other commands act on the
/// running stack, found through its state file.
#[derive(Debug, Parser)]
#[command(name = "switchboard-local", version, arg_required_else_help = true)]
struct Cli {
    /// The running stack's state file [default: <repository>/.local/stack.json]
    #[arg(long, global = true, env = state::STATE_VARIABLE, value_name = "FILE")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The example consumer, run as Lambda's SQS event source would run it.
#[derive(Debug, clap::Args)]
struct ConsumerArgs {
    /// Deploy functions/example-consumer on the three queues (the template's
    /// ExampleConsumer=true): it prints each event, typed. It takes the
    /// queues' messages, so `watch` sees none. Needs `cargo build -p
    /// example-consumer` (`make local EXAMPLE_CONSUMER=true` does it)
    #[arg(long, env = "EXAMPLE_CONSUMER", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    example_consumer: bool,
    /// Seconds a message the consumer fails stays hidden before it is
    /// delivered again (the queues' own is 60 s); after 5 deliveries it
    /// moves to the queue's dead-letter queue
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    visibility_timeout: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the stack on the moto at AWS_ENDPOINT_URL (`make local` starts
    /// moto, then this); Ctrl-C stops it
    Up {
        /// The gateway's port
        #[arg(long, env = "SWITCHBOARD_PORT", default_value_t = 3000)]
        port: u16,
        /// The stack name every resource name starts with
        #[arg(long, default_value = "switchboard-local")]
        stack: String,
        /// The SAM template to run [default: <repository>/template.yaml]
        #[arg(long, value_name = "FILE")]
        template: Option<PathBuf>,
        #[command(flatten)]
        consumer: ConsumerArgs,
    },
    /// Say whether a stack is running and where (exit status 3 when none)
    Status,
    /// Print `export` lines for the README's curl commands: SWITCHBOARD_URL,
    /// each provider's signing credential (and one per tenant label) and
    /// the settings naming its public URL
    Env,
    /// Print the signature header's value a provider would send with FILE,
    /// or (--url-check) the URL of the GET check it sends to verify a
    /// webhook (WhatsApp)
    Sign {
        /// The provider
        #[arg(value_parser = provider_names())]
        provider: String,
        /// The request body, as it will be posted
        #[arg(required_unless_present = "url_check")]
        file: Option<PathBuf>,
        /// Print the URL of the provider's GET check, with the stack's first
        /// verify token, instead of a signature
        #[arg(long, conflicts_with_all = ["file", "timestamp", "tenant"])]
        url_check: bool,
        /// The challenge the URL check carries [default: Meta's sample, 1158201444]
        #[arg(long, requires = "url_check")]
        challenge: Option<String>,
        /// Sign as this tenant: with the key labelled so, or for `default`
        /// (as without the option) the unlabelled key (Bird, MessageBird)
        #[arg(long, value_name = "LABEL")]
        tenant: Option<String>,
        /// The request's time, in Unix seconds [default: now]
        #[arg(long, value_name = "UNIX")]
        timestamp: Option<i64>,
        /// The URL the provider posts to [default: the stack's URL for it]
        #[arg(long)]
        url: Option<String>,
    },
    /// List the stored events, oldest first (a Scan: fine locally, never in AWS)
    Events,
    /// Print each queue's messages as consumers receive them (group and
    /// deduplication ids, message attributes, the CloudEvent), then delete
    /// them; Ctrl-C stops
    Watch,
    /// Re-publish stored events: the replay Lambda's request, run here
    Replay {
        /// `{"window": {"from": …, "to": …}}`, `{"conversation": {"provider": …,
        /// "subject": …}}` or `{"events": [<CloudEvent>, …]}` (docs/operations.md)
        request: String,
    },
    /// Re-decode stored events (the reprocess Lambda's request, run here)
    Reprocess {
        /// The same requests as replay (docs/operations.md)
        request: String,
    },
    /// Move a dead-letter queue's messages back to the queue that feeds it,
    /// oldest first, as SQS's dead-letter queue redrive does in AWS
    Redrive {
        /// The dead-letter queue (`switchboard-local-messages-dlq.fifo`)
        /// [default: every dead-letter queue of the stack]
        queue: Option<String>,
    },
}

fn provider_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(registry::all().map(|d| d.name()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // The message and its causes, never a backtrace: these are a
            // developer's answers, not crashes.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let path = state::path(cli.state)?;
    match cli.command {
        Command::Up {
            port,
            stack,
            template,
            consumer,
        } => up(&path, port, stack, template, consumer).await?,
        Command::Status => return status(&path),
        Command::Env => env(&state::running(&path)?)?,
        Command::Sign {
            provider,
            file,
            url_check,
            challenge,
            tenant,
            timestamp,
            url,
        } => {
            let provider = Provider::from_name(&provider).context("a registered provider")?;
            let s = state::running(&path)?;
            let line = match (file, url_check) {
                (Some(file), false) => {
                    sign(&s, provider, &file, tenant.as_deref(), timestamp, url)?
                }
                // clap requires FILE unless --url-check, and refuses both.
                _ => url_check_url(&s, provider, url, challenge)?,
            };
            println!("{line}");
        }
        Command::Events => events(&state::running(&path)?).await?,
        Command::Watch => watch(&state::running(&path)?).await?,
        Command::Replay { request } => {
            run_tool(&state::running(&path)?, "replay", &request).await?
        }
        Command::Reprocess { request } => {
            run_tool(&state::running(&path)?, "reprocess", &request).await?;
        }
        Command::Redrive { queue } => redrive(&state::running(&path)?, queue.as_deref()).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Function settings a developer may set in the environment of `make
/// local`: the body limit and every registered provider's settings. Set
/// for `replay` or `reprocess`, they apply to that run only (as a changed
/// template parameter would).
fn env_overrides() -> HashMap<String, String> {
    std::iter::once("MAX_BODY_BYTES")
        .chain(registry::all().flat_map(|d| d.settings.iter().map(|s| s.name)))
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
        .collect()
}

/// Tells where the running stack is, or that none is (exit status 3).
fn status(path: &std::path::Path) -> Result<ExitCode> {
    match state::status(path)? {
        Status::Running(s) => {
            println!(
                "a local stack is running: '{}', PID {}, since {}",
                s.stack, s.pid, s.started_at
            );
            println!("  gateway  {}", s.gateway);
            println!("  moto     {}", s.endpoint);
            println!("  state    {}", path.display());
            println!("  stop it with Ctrl-C in its terminal, or: kill {}", s.pid);
            Ok(ExitCode::SUCCESS)
        }
        Status::Stale(s) => {
            println!(
                "no local stack is running ({} names PID {}, which has stopped)",
                path.display(),
                s.pid
            );
            Ok(ExitCode::from(3))
        }
        Status::None => {
            println!("no local stack is running (no {})", path.display());
            Ok(ExitCode::from(3))
        }
    }
}

/// Each of `provider`'s settings that names its public URL, with the URL
/// the stack verifies against: the value its webhook runs with, else (the
/// function derives it from each request) the gateway's URL of the route.
fn url_settings(s: &StackState, provider: Provider) -> Result<Vec<(&'static str, String)>> {
    let d = registry::descriptor(provider);
    let env = s.function_env(d.function)?;
    Ok(d.settings
        .iter()
        .filter(|setting| {
            matches!(
                setting.local,
                LocalDefault::RouteUrl | LocalDefault::Derived
            )
        })
        .map(|setting| {
            let url = env
                .get(setting.name)
                .filter(|url| !url.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("{}{}", s.gateway, d.route));
            (setting.name, url)
        })
        .collect())
}

/// Prints `export` lines for the README's curl commands: each provider's
/// credential of the default tenant unsuffixed, and one suffixed per
/// tenant label (`ZIPMESSAGE_TOKEN_ACME`).
fn env(s: &StackState) -> Result<()> {
    println!("export SWITCHBOARD_URL={}", shell_word(&s.gateway));
    for keys in &s.providers {
        let d = registry::descriptor(keys.provider);
        let variable = d.credentials.dev_variable;
        match keys.signing_for(None) {
            Ok(key) => println!("export {variable}={}", shell_word(key)),
            Err(_) => println!(
                "# {variable}: every {} key carries a tenant label; the default tenant has none",
                d.display_name
            ),
        }
        for (tenant, key) in &keys.tenants {
            println!(
                "export {}={}",
                tenant_variable(variable, tenant),
                shell_word(key)
            );
        }
        for (name, value) in url_settings(s, keys.provider)? {
            println!("export {name}={}", shell_word(&value));
        }
    }
    Ok(())
}

/// The variable `env` prints a tenant's credential in: `ZIPMESSAGE_TOKEN_ACME`.
fn tenant_variable(variable: &str, tenant: &str) -> String {
    format!(
        "{variable}_{}",
        tenant.to_ascii_uppercase().replace('-', "_")
    )
}

/// `value` as one shell word: as it is when it needs no quoting, else in
/// single quotes.
fn shell_word(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=+@%,".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The signature header's value for a body, as the provider would send it
/// to the running stack.
fn sign(
    s: &StackState,
    provider: Provider,
    file: &std::path::Path,
    tenant: Option<&str>,
    timestamp: Option<i64>,
    url: Option<String>,
) -> Result<String> {
    let d = registry::descriptor(provider);
    let keys = s.keys(provider)?;
    let Some(header) = d.signature_header else {
        bail!(
            "{} requests are not signed: the credential is in the URL ({})",
            d.display_name,
            keys.signing_for(tenant)
                .map_or_else(|_| d.route.to_owned(), |token| d.path(token))
        );
    };
    let signing = keys.signing_for(tenant)?;
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let url = match url {
        Some(url) => url,
        None => url_settings(s, provider)?
            .into_iter()
            .next()
            .map(|(_, url)| url)
            .unwrap_or_else(|| format!("{}{}", s.gateway, d.path(signing))),
    };
    let headers = (d.sign)(&SignRequest {
        key: signing,
        url: &url,
        body: &body,
        timestamp: timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp()),
    })
    .map_err(|e| anyhow::anyhow!("the {} signing key: {e}", d.display_name))?;
    headers
        .into_iter()
        .find(|(name, _)| *name == header)
        .map(|(_, value)| value)
        .context("the signer sets its signature header")
}

/// The URL of the GET check `provider` sends to verify its webhook: the
/// stack's route (or `url`) with the check's query, the first verify token
/// the running function has, and the challenge (Meta's sample's unless
/// given).
fn url_check_url(
    s: &StackState,
    provider: Provider,
    url: Option<String>,
    challenge: Option<String>,
) -> Result<String> {
    let d = registry::descriptor(provider);
    let Some(check) = &d.url_check else {
        bail!(
            "{} sends no URL check; sign a body instead (switchboard-local sign {} FILE)",
            d.display_name,
            d.name()
        );
    };
    let tokens = s
        .function_env(d.function)?
        .get(check.tokens)
        .map(|list| switchboard_providers::split_key_list(list))
        .unwrap_or_default();
    let Some(token) = tokens.first() else {
        bail!(
            "the stack has no {} verify token: set {} and restart make local",
            d.display_name,
            check.tokens
        );
    };
    let challenge = challenge.unwrap_or_else(|| "1158201444".to_owned());
    let base = url.unwrap_or_else(|| format!("{}{}", s.gateway, d.route));
    Ok(format!("{base}?{}", (check.query)(token, &challenge)))
}

/// Runs `replay` or `reprocess` with the environment the stack runs the
/// Lambda of the same name with (and the developer's settings over it).
async fn run_tool(s: &StackState, tool: &str, request: &str) -> Result<()> {
    let mut function_env: HashMap<String, String> = s
        .function_env(tool)?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    function_env.extend(env_overrides());
    let env = |name: &str| function_env.get(name).cloned();
    let payload: serde_json::Value =
        serde_json::from_str(request).context("REQUEST must be JSON (see --help)")?;
    // Signed as the Lambda's role, through the running stack's proxy, which
    // checks every call against that role (as AWS does the Lambda's).
    let sdk = match (&s.proxy, s.role_keys.get(tool)) {
        (Some(proxy), Some(key)) => switchboard_local::as_role(
            &local_sdk_config_at(&s.endpoint)
                .await
                .to_builder()
                .endpoint_url(proxy)
                .build(),
            key,
        ),
        _ => local_sdk_config_at(&s.endpoint).await,
    };
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

/// One received message, as `watch` prints it.
fn render(queue: &str, message: &aws_sdk_sqs::types::Message) -> Result<String> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as System;
    use std::fmt::Write;
    let system = |name: System| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .map_or("-", String::as_str)
    };
    let mut out = format!("── {queue}\n");
    writeln!(out, "   group    {}", system(System::MessageGroupId))?;
    writeln!(
        out,
        "   dedup    {}",
        system(System::MessageDeduplicationId)
    )?;
    let mut attributes: Vec<(&String, &str)> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name, value.string_value().unwrap_or("(binary)")))
        .collect();
    attributes.sort();
    for (name, value) in attributes {
        writeln!(out, "   {name:<8} {value}")?;
    }
    let body = message.body().unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?,
        Err(_) => writeln!(out, "{body}")?,
    }
    Ok(out)
}

/// Long-polls every queue of the stack at once and prints each message as
/// it arrives, then deletes it.
async fn watch(s: &StackState) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(&local_sdk_config_at(&s.endpoint).await);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<String>>();
    for (name, url) in s.queues.clone() {
        let (sqs, tx) = (sqs.clone(), tx.clone());
        tokio::spawn(async move {
            loop {
                let received = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::All,
                    )
                    .message_attribute_names("All")
                    .send()
                    .await
                    .with_context(|| format!("receiving from {name} (did the stack stop?)"));
                let out = match received {
                    Ok(out) => out,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                for message in out.messages() {
                    if tx.send(render(&name, message)).is_err() {
                        return;
                    }
                    if let Some(handle) = message.receipt_handle() {
                        let _ = sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(handle)
                            .send()
                            .await;
                    }
                }
            }
        });
    }
    drop(tx);
    eprintln!(
        "watching {} queues of '{}'; Ctrl-C stops",
        s.queues.len(),
        s.stack
    );
    while let Some(message) = rx.recv().await {
        println!("{}", message?);
    }
    Ok(())
}

/// Moves every message of each dead-letter queue (`only`, else all of the
/// stack's) back to the queue whose redrive policy names it. moto has no
/// message move tasks (`StartMessageMoveTask`), so this is a loop of
/// receive, send, delete; it does what AWS documents for a FIFO redrive:
/// oldest first, each message again in its group, its deduplication id the
/// message's id (so SQS does not drop it as a copy of its first send).
async fn redrive(s: &StackState, only: Option<&str>) -> Result<()> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as System;
    let sqs = aws_sdk_sqs::Client::new(&local_sdk_config_at(&s.endpoint).await);
    if let Some(name) = only {
        if !s.queues.contains_key(name) {
            let names: Vec<&str> = s.queues.keys().map(String::as_str).collect();
            bail!(
                "the stack has no queue {name} (its queues: {})",
                names.join(", ")
            );
        }
    }
    let mut redriven_any = false;
    for (name, url) in &s.queues {
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let sources = sqs
            .list_dead_letter_source_queues()
            .queue_url(url)
            .send()
            .await
            .with_context(|| format!("the queues {name} is the dead-letter queue of"))?;
        let [source] = sources.queue_urls() else {
            if only.is_some() {
                bail!("{name} is the dead-letter queue of no queue (or of several)");
            }
            continue;
        };
        redriven_any = true;
        let mut moved = 0;
        loop {
            let received = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(System::All)
                .message_attribute_names("All")
                .send()
                .await
                .with_context(|| format!("receiving from {name}"))?;
            if received.messages().is_empty() {
                break;
            }
            for message in received.messages() {
                let group = message
                    .attributes()
                    .and_then(|a| a.get(&System::MessageGroupId));
                sqs.send_message()
                    .queue_url(source)
                    .message_body(message.body().unwrap_or_default())
                    .set_message_attributes(message.message_attributes().cloned())
                    .set_message_group_id(group.cloned())
                    .set_message_deduplication_id(
                        group.and(message.message_id().map(str::to_owned)),
                    )
                    .send()
                    .await
                    .with_context(|| format!("sending to {}", queue_name(source)))?;
                if let Some(handle) = message.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .with_context(|| format!("deleting from {name}"))?;
                }
                moved += 1;
            }
        }
        println!(
            "{name}: {moved} messages moved back to {}",
            queue_name(source)
        );
    }
    if !redriven_any {
        println!("the stack has no dead-letter queue");
    }
    Ok(())
}

/// Lists the stored events, oldest first.
async fn events(s: &StackState) -> Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&local_sdk_config_at(&s.endpoint).await);
    let mut items: Vec<switchboard_types::StoredEvent> = Vec::new();
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(&s.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .with_context(|| format!("reading {} at {}", s.table, s.endpoint))?;
        for item in page.items() {
            items.push(serde_dynamo::from_item(item.clone())?);
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    // The events of one request share their receive time: then in the
    // order of their signed times (a body's order, for WhatsApp's).
    items.sort_by(|a, b| {
        a.received_at
            .cmp(&b.received_at)
            .then_with(|| a.sk.cmp(&b.sk))
    });
    println!("{}: {} events", s.table, items.len());
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
    Ok(())
}

/// The webhook paths a provider's senders post to, each with the tenants
/// whose events it takes: one per token where the token is in the path,
/// else its one route.
fn webhook_urls(k: &LocalKeys) -> Vec<(String, String)> {
    let d = k.descriptor;
    if d.token_prefix().is_some() {
        return k
            .configured
            .iter()
            .map(|c| {
                (
                    d.path(&c.key),
                    format!("tenant {}", LocalKeys::tenant_of(c)),
                )
            })
            .collect();
    }
    // Where one key signs every account's webhooks, the body names the
    // tenant (the listed account).
    let tenants = if d.accounts.is_some() {
        "the tenant each body names".to_owned()
    } else {
        let mut tenants: Vec<&str> = Vec::new();
        for tenant in k.configured.iter().map(LocalKeys::tenant_of) {
            if !tenants.contains(&tenant) {
                tenants.push(tenant);
            }
        }
        format!(
            "tenant{} {}, by the key that signs",
            if tenants.len() == 1 { "" } else { "s" },
            tenants.join(", ")
        )
    };
    vec![(d.route.to_owned(), tenants)]
}

/// Waits for Ctrl-C, or a plain `kill`.
async fn stopped() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn up(
    path: &std::path::Path,
    port: u16,
    stack_name: String,
    template: Option<PathBuf>,
    consumer: ConsumerArgs,
) -> Result<()> {
    // Colour only for a person at a terminal (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match state::status(path)? {
        Status::Running(s) => bail!(
            "a local stack is already running: '{}', PID {}, gateway {}; reach it from any \
             terminal in the repository (switchboard-local status, env, events, watch); stop \
             it with Ctrl-C in its terminal, or `kill {}`",
            s.stack,
            s.pid,
            s.gateway,
            s.pid
        ),
        Status::Stale(s) => tracing::info!(
            pid = s.pid,
            "replacing the state of a stack that stopped without removing it"
        ),
        Status::None => {}
    }
    let root = state::repository()?;
    let keys = local_keys(
        &DevSecrets::load_or_create(&root.join(SECRETS_FILE))?,
        &|name| std::env::var(name).ok(),
    )?;
    let mut options = LocalOptions::new(
        template.unwrap_or_else(|| root.join("template.yaml")),
        &stack_name,
        ([127, 0, 0, 1], port).into(),
    );
    options.secret_values = keys
        .iter()
        .map(|k| (k.descriptor.credentials.secret.to_owned(), k.secret_value()))
        .collect();
    options.env_overrides = env_overrides();
    if consumer.example_consumer {
        options
            .parameters
            .insert("ExampleConsumer".into(), "true".into());
        // The function binaries are built beside this one.
        options.binaries = std::env::current_exe()?.parent().map(Into::into);
        options.visibility_timeout = Some(Duration::from_secs(consumer.visibility_timeout));
        options.echo = Echo::Prefixed;
    }
    let stack = LocalStack::start(options).await?;
    let recorded = stack.state(keys.iter().map(|k| k.recorded()).collect());
    recorded.write(path)?;
    let shown = |p: &std::path::Path| {
        p.strip_prefix(&root)
            .map_or_else(|_| p.display().to_string(), |p| p.display().to_string())
    };
    let base = &recorded.gateway;
    println!();
    println!("switchboard local stack '{stack_name}' is up (Ctrl-C stops it)");
    println!();
    println!("  Webhook URLs");
    let width = registry::all()
        .map(|d| d.display_name.len())
        .max()
        .unwrap_or(0);
    for k in &keys {
        for (path, tenants) in webhook_urls(k) {
            println!(
                "    {:<width$} POST {base}{path}  ({tenants})",
                k.descriptor.display_name
            );
        }
    }
    println!();
    println!(
        "  Secrets in use (dev values live in {SECRETS_FILE}; override with the env variables, \
         in the syntax shown)"
    );
    // The settings the local stack or the developer set; the others are
    // the template's.
    let mut set = switchboard_local::local_defaults(stack.addr);
    set.extend(env_overrides());
    for k in &keys {
        let d = k.descriptor;
        let env = recorded.function_env(d.function)?;
        println!("    {:<30} {}", d.credentials.inline, k.shown());
        for s in d.settings {
            let value = match (set.get(s.name), env.get(s.name)) {
                (Some(value), _) => value.clone(),
                _ if s.local == LocalDefault::Derived => {
                    format!("(unset: each request's own URL, {base}{})", d.route)
                }
                (None, Some(value)) => format!("{value} (template default)"),
                (None, None) => "(unset)".to_owned(),
            };
            println!("    {:<30} {value}", s.name);
        }
        if let (true, Some(signing)) = (k.asymmetric(), &k.signing) {
            println!(
                "    {:<30} {signing}  (signs as the provider)",
                d.credentials.dev_variable
            );
        }
    }
    println!();
    println!("  DynamoDB table  {}", stack.table_name);
    for family in Family::ALL {
        println!("  SQS {:<13} {}", family.as_str(), stack.queue_url(family));
    }
    if !stack.processes.is_empty() {
        println!();
        for binary in stack.processes.keys() {
            println!(
                "  {binary} reads the queues (failed messages return after {} s); its output \
                 follows, each line after `{binary} | `",
                consumer.visibility_timeout
            );
        }
    }
    println!();
    println!("  State: {} (what the other commands read)", shown(path));
    println!("  Tools: export PATH=\"$PWD/infra/bin:$PATH\", then switchboard-local --help");
    println!();
    stopped().await?;
    stack.stop();
    state::remove_own(path, recorded.pid);
    println!("local stack stopped");
    Ok(())
}
