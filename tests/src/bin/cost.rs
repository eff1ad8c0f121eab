//! `make cost`: what one event costs, per seed, from the committed price
//! table (`infra/prices.json`) and what the code really does:
//!
//! - item bytes and write units, of the table and of its `by-day` index
//!   (the stored form `switchboard_aws::dynamo::attributes` writes, sized by
//!   DynamoDB's rules);
//! - the SQS message each event becomes (requests per 64 KiB);
//! - log bytes per event: the API's access log line (template.yaml's format
//!   with typical values), and, measured, the real webhook and fanout binaries
//!   (as built, debug or release log the same) run behind the Lambda Runtime
//!   API emulator with the template's log settings, and every line they
//!   print is counted — with `SystemLogLevel: WARN` Lambda adds no
//!   START/END/REPORT lines of its own;
//! - dollars per million events at the stated volume: with X-Ray off, with
//!   `Tracing: Active` (Lambda's fixed sampling), and the floor (one write
//!   unit, no tracing);
//! - the provisioned-capacity alternative for the writes at 10 and 100
//!   million events a month.
//!
//! Needs moto at AWS_ENDPOINT_URL (`infra/scripts/cost.sh` starts one) and
//! the debug binaries (`cargo build --workspace --bins`).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use switchboard_pipeline::fanout::message_for;
use switchboard_providers::registry::{self, Descriptor};
use switchboard_tests::cost::{index_entry_size, item_size, seed_item, write_units};
use switchboard_tests::runtime::{
    signed_api_event, stream_event, Outcome, RuntimeApi, PUBLIC_BASE_URL,
};
use switchboard_tests::{binary, distinct, fixture, lambda_env, provision_only, root, unique};

#[derive(Debug, Deserialize)]
struct Price {
    usd: f64,
}

#[derive(Debug, Deserialize)]
struct Prices {
    api_gateway_http_per_million_requests: Price,
    lambda_per_million_requests: Price,
    lambda_arm64_per_gb_second: Price,
    dynamodb_on_demand_per_million_write_units: Price,
    dynamodb_provisioned_per_wcu_hour: Price,
    sqs_fifo_per_million_requests: Price,
    cloudwatch_logs_ingest_per_gb: Price,
    xray_per_million_traces_recorded: Price,
}

#[derive(Debug, Deserialize)]
struct Assumptions {
    events_per_month: f64,
    memory_mb: f64,
    webhook_billed_ms: f64,
    fanout_billed_ms: f64,
    fanout_records_per_invocation: f64,
    consumer_messages_per_receive: f64,
}

#[derive(Debug, Deserialize)]
struct Table {
    region: String,
    checked: String,
    prices: Prices,
    assumptions: Assumptions,
}

/// Invocations per seed when measuring log bytes.
const RUNS: usize = 5;
/// Seconds in an average month.
const MONTH_SECONDS: f64 = 30.44 * 86_400.0;
/// SQS bills each 64 KiB of a request's payload as one request.
const SQS_CHUNK: usize = 64 * 1024;

/// What one seed event costs the pipeline, in units.
struct Units {
    seed: String,
    item_bytes: usize,
    table_wru: usize,
    index_bytes: usize,
    index_wru: usize,
    message_bytes: usize,
    webhook_log_bytes: f64,
    fanout_log_bytes: f64,
    access_log_bytes: usize,
}

/// Bytes a function printed (each line and its newline).
fn printed(api: &RuntimeApi) -> usize {
    api.stdout_lines()
        .iter()
        .chain(api.stderr_lines().iter())
        .map(|l| l.len() + 1)
        .sum()
}

fn ok(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Response(r) => r["statusCode"] == 200 || r.get("batchItemFailures").is_some(),
        Outcome::Error(_) => false,
    }
}

/// The API's access log line for one request to `route`: template.yaml's
/// `AccessLogSettings.Format` with typical values (API Gateway writes it;
/// the local gateway cannot, so this one figure is rendered, not measured).
fn access_log_bytes(route: &str) -> Result<usize> {
    let text = std::fs::read_to_string(root().join("template.yaml"))?;
    let format = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Format: "))
        .context("template.yaml has an access log Format")?
        .trim_matches('\'');
    let values = [
        ("$context.requestId", "Jx8QZhZqoAMEVNQ="),
        ("$context.requestTime", "02/Dec/2026:15:08:34 +0000"),
        ("$context.identity.sourceIp", "203.0.113.42"),
        ("$context.identity.userAgent", "Go-http-client/1.1"),
        ("$context.routeKey", &format!("POST {route}")),
        ("$context.status", "200"),
        ("$context.responseLength", "70"),
        ("$context.responseLatency", "14"),
        ("$context.integrationStatus", "200"),
        ("$context.integrationLatency", "12"),
        ("$context.error.message", "-"),
        ("$context.integrationErrorMessage", "-"),
    ];
    let mut line = format.to_owned();
    for (name, value) in values {
        line = line.replace(name, value);
    }
    if line.contains("$context") {
        bail!("a $context variable of the access log format has no typical value: {line}");
    }
    Ok(line.len() + 1)
}

/// Traces X-Ray records per event of one function at `rate` requests per
/// second: Lambda samples the first request each second and 5% of the rest.
fn traced_share(rate: f64) -> f64 {
    if rate <= 0.0 {
        return 0.0;
    }
    (rate.min(1.0) + 0.05 * (rate - 1.0).max(0.0)) / rate
}

#[tokio::main]
async fn main() -> Result<()> {
    let text =
        std::fs::read_to_string(root().join("infra/prices.json")).context("infra/prices.json")?;
    let table: Table = serde_json::from_str(&text).context("infra/prices.json")?;
    let (p, a) = (&table.prices, &table.assumptions);
    let (_sdk, provisioned) = provision_only().await;
    let env_of = |function: &str| {
        let mut env = lambda_env(&provisioned.functions, function);
        for (name, value) in registry::all().flat_map(|d| d.local_settings(PUBLIC_BASE_URL)) {
            env.insert(name.into(), value);
        }
        // As template.yaml deploys them: LogFormat JSON, LogLevel INFO.
        env.insert("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into());
        env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into());
        env
    };

    let mut fanout = RuntimeApi::start().await;
    fanout.spawn(&binary("fanout"), "fanout", &env_of("fanout"));
    let mut rows = Vec::new();
    for d in registry::all() {
        let d: &Descriptor = d;
        let mut webhook = RuntimeApi::start().await;
        webhook.spawn(&binary(d.function), d.function, &env_of(d.function));
        webhook.wait_ready().await;
        for file in d.fixtures {
            let body = fixture(d.name(), file);
            let item = seed_item(d.provider, &body);
            let attributes = switchboard_aws::dynamo::attributes(&item);
            let item_bytes = item_size(&attributes);
            let index_bytes = index_entry_size(
                &attributes,
                &["pk", "sk"],
                &["day", "received_at"],
                Some(&[]),
            )
            .context("every item has a by-day entry")?;
            let message = message_for(&item).map_err(anyhow::Error::msg)?;
            let (mut webhook_bytes, mut fanout_bytes) = (0, 0);
            for n in 0..RUNS {
                let run = unique("cost");
                let distinct_body = distinct(&body, &format!("{run}-{n}"));
                let before = printed(&webhook);
                let outcome = webhook
                    .invoke(&signed_api_event(d, &distinct_body, &run))
                    .await;
                if !ok(&outcome) {
                    bail!("{}: {file} answered {outcome:?}", d.function);
                }
                webhook_bytes += printed(&webhook) - before;
                let stored = seed_item(d.provider, &distinct_body);
                let image = serde_dynamo::to_item(&stored)?;
                let before = printed(&fanout);
                let outcome = fanout.invoke(&stream_event(&[("100", image)])).await;
                if !ok(&outcome) {
                    bail!("fanout: {file} answered {outcome:?}");
                }
                fanout_bytes += printed(&fanout) - before;
            }
            rows.push(Units {
                seed: format!("{}/{file}", d.name()),
                item_bytes,
                table_wru: write_units(item_bytes),
                index_bytes,
                index_wru: write_units(index_bytes),
                message_bytes: message.size(),
                webhook_log_bytes: webhook_bytes as f64 / RUNS as f64,
                fanout_log_bytes: fanout_bytes as f64 / RUNS as f64,
                access_log_bytes: access_log_bytes(d.route)?,
            });
        }
    }

    let million = 1_000_000.0;
    let gb_s = |ms: f64| a.memory_mb / 1024.0 * ms / 1000.0;
    let rate = a.events_per_month / MONTH_SECONDS;
    let fanout_rate = rate / a.fanout_records_per_invocation;
    println!(
        "== cost per event, {} prices checked {} (infra/prices.json), {:.0} million events a month ({rate:.2}/s)",
        table.region,
        table.checked,
        a.events_per_month / million
    );
    println!(
        "   assumed: {} MB; billed {} ms per webhook, {} ms per fanout invocation of {} record(s); consumers receive {} messages per call",
        a.memory_mb, a.webhook_billed_ms, a.fanout_billed_ms, a.fanout_records_per_invocation, a.consumer_messages_per_receive
    );
    println!(
        "{:<44} {:>6} {:>5} {:>6} {:>5} {:>7} {:>8} {:>8} {:>8}",
        "seed", "item B", "WRU", "day B", "WRU", "msg B", "log B wh", "log B fo", "log B gw"
    );
    for r in &rows {
        println!(
            "{:<44} {:>6} {:>5} {:>6} {:>5} {:>7} {:>8.0} {:>8.0} {:>8}",
            r.seed,
            r.item_bytes,
            r.table_wru,
            r.index_bytes,
            r.index_wru,
            r.message_bytes,
            r.webhook_log_bytes,
            r.fanout_log_bytes,
            r.access_log_bytes
        );
    }
    println!();
    println!(
        "{:<44} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7}",
        "$ per million events",
        "APIGW",
        "Lambda",
        "DDB",
        "SQS",
        "Logs",
        "X-Ray",
        "total",
        "+X-Ray",
        "floor"
    );
    let mut worst = (0.0f64, 0.0f64);
    for r in &rows {
        let api = p.api_gateway_http_per_million_requests.usd;
        let lambda = p.lambda_per_million_requests.usd
            * (1.0 + 1.0 / a.fanout_records_per_invocation)
            + million
                * p.lambda_arm64_per_gb_second.usd
                * (gb_s(a.webhook_billed_ms)
                    + gb_s(a.fanout_billed_ms) / a.fanout_records_per_invocation);
        let wru = (r.table_wru + r.index_wru) as f64;
        let dynamodb = p.dynamodb_on_demand_per_million_write_units.usd * wru;
        let chunks = r.message_bytes.div_ceil(SQS_CHUNK) as f64;
        let sqs = p.sqs_fifo_per_million_requests.usd
            * (chunks / a.fanout_records_per_invocation + 2.0 / a.consumer_messages_per_receive);
        let log_bytes = r.webhook_log_bytes + r.fanout_log_bytes + r.access_log_bytes as f64;
        let logs = p.cloudwatch_logs_ingest_per_gb.usd * log_bytes / 1e9 * million;
        let xray = p.xray_per_million_traces_recorded.usd
            * (traced_share(rate) + traced_share(fanout_rate) / a.fanout_records_per_invocation);
        let total = api + lambda + dynamodb + sqs + logs;
        let floor = total - dynamodb + p.dynamodb_on_demand_per_million_write_units.usd;
        if total > worst.0 {
            worst = (total, total + xray);
        }
        println!(
            "{:<44} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>7.2} {:>7.2} {:>7.2}",
            r.seed,
            api,
            lambda,
            dynamodb,
            sqs,
            logs,
            xray,
            total,
            total + xray,
            floor
        );
    }
    let max_wru = rows
        .iter()
        .map(|r| r.table_wru + r.index_wru)
        .max()
        .unwrap_or(0);
    println!();
    println!(
        "write units per event, worst seed: {max_wru} (target ≤ 2); $ per million, worst seed: {:.2} with X-Ray off (target ≤ 3.00), {:.2} with Tracing: Active",
        worst.0, worst.1
    );

    println!();
    println!("== the writes on provisioned capacity instead (table and index; 2x the average rate for peaks)");
    for events in [10.0 * million, 100.0 * million] {
        let wcu = (2.0 * events * max_wru as f64 / MONTH_SECONDS).ceil();
        let monthly = wcu * p.dynamodb_provisioned_per_wcu_hour.usd * MONTH_SECONDS / 3600.0;
        let on_demand =
            events / million * max_wru as f64 * p.dynamodb_on_demand_per_million_write_units.usd;
        println!(
            "{:>4.0} million events/month: {wcu:.0} WCU provisioned ${monthly:.2}/month (${:.2}/million) vs on demand ${on_demand:.2}/month (${:.2}/million)",
            events / million,
            monthly / (events / million),
            on_demand / (events / million),
        );
    }
    Ok(())
}
