//! `make cost`: what one event costs, per seed, from the committed price
//! table (`infra/prices.json`), the template's defaults (`template.yaml`:
//! retention, log retention, batching window, point-in-time recovery) and
//! what the code really does:
//!
//! - item bytes and write units, of the table and of its `by-day` index
//!   (the stored form `switchboard_aws::dynamo::attributes` writes, sized by
//!   DynamoDB's rules; the index is sparse, so an accepted seed has no
//!   entry), and what they cost to keep for the retention period
//!   (each item and index entry plus DynamoDB's 100 bytes of overhead; the
//!   table's bytes again for point-in-time recovery);
//! - the SQS message each event becomes (requests per 64 KiB);
//! - log bytes per event: the API's access log line (template.yaml's format
//!   with typical values), and, measured, the real webhook and fanout binaries
//!   (as built, debug or release log the same) run behind the Lambda Runtime
//!   API emulator with the template's log settings, and every line they
//!   print is counted — with `SystemLogLevel: WARN` Lambda adds no
//!   START/END/REPORT lines of its own; ingested, and stored for the log
//!   retention;
//! - the CloudWatch metrics those lines publish (each metric name and
//!   dimension-value combination one custom metric a month), shared by the
//!   month's events;
//! - dollars per million events at the stated volume: at the template's
//!   defaults, with X-Ray off and with `Tracing: Active` (Lambda's fixed
//!   sampling); then with a 1 s batching window, a year of retention, and the
//!   Standard-IA table class;
//! - the provisioned-capacity alternative for the writes at 10 and 100
//!   million events a month.
//!
//! Needs moto at AWS_ENDPOINT_URL (`infra/scripts/cost.sh` starts one) and
//! the debug binaries (`cargo build --workspace --bins`).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeSet;
use switchboard_pipeline::fanout::message_for;
use switchboard_providers::registry::{self, Descriptor};
use switchboard_providers::split_body;
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
    dynamodb_ia_on_demand_per_million_write_units: Price,
    dynamodb_provisioned_per_wcu_hour: Price,
    dynamodb_storage_per_gb_month: Price,
    dynamodb_ia_storage_per_gb_month: Price,
    dynamodb_pitr_per_gb_month: Price,
    sqs_fifo_per_million_requests: Price,
    cloudwatch_logs_ingest_per_gb: Price,
    cloudwatch_logs_storage_per_gb_month: Price,
    cloudwatch_custom_metric_per_month: Price,
    xray_per_million_traces_recorded: Price,
}

#[derive(Debug, Deserialize)]
struct Assumptions {
    events_per_month: f64,
    memory_mb: f64,
    webhook_billed_ms: f64,
    fanout_billed_ms: f64,
    stream_shards: f64,
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
/// Days in an average month.
const MONTH_DAYS: f64 = 30.44;
/// Seconds in an average month.
const MONTH_SECONDS: f64 = MONTH_DAYS * 86_400.0;
/// SQS bills each 64 KiB of a request's payload as one request.
const SQS_CHUNK: usize = 64 * 1024;
/// Entries of one `SendMessageBatch`.
const SQS_BATCH: f64 = 10.0;
/// Bytes DynamoDB adds to each item (and index entry) it stores.
const ITEM_OVERHEAD: usize = 100;
/// Bytes in the GB the prices are per (10^9: an upper bound on AWS's 2^30).
const GB: f64 = 1e9;
const MILLION: f64 = 1e6;

/// What the template deploys unless told otherwise.
struct Defaults {
    retention_days: f64,
    log_retention_days: f64,
    batching_window_s: f64,
    batch_size: f64,
    point_in_time_recovery: bool,
}

impl Defaults {
    fn read() -> Result<Self> {
        let template = switchboard_local::template::Template::load(
            &root().join("template.yaml"),
            "cost",
            "us-east-1",
            &Default::default(),
        )?;
        let number = |name: &str| -> Result<f64> {
            template
                .parameter(name)
                .with_context(|| format!("template.yaml has no parameter {name}"))?
                .parse()
                .with_context(|| format!("{name} is not a number"))
        };
        let text = std::fs::read_to_string(root().join("template.yaml"))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let stream =
            &doc["Resources"]["FanoutFunction"]["Properties"]["Events"]["Stream"]["Properties"];
        Ok(Self {
            retention_days: number("RetentionDays")?,
            log_retention_days: number("LogRetentionDays")?,
            batching_window_s: number("FanoutBatchingWindowSeconds")?,
            batch_size: stream["BatchSize"]
                .as_f64()
                .context("the fanout's stream source has a BatchSize")?,
            point_in_time_recovery: doc["Resources"]["EventsTable"]["Properties"]
                ["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
                .as_bool()
                .unwrap_or(false),
        })
    }
}

/// What one seed event costs the pipeline, in units.
/// What one seed request writes, sends and logs: every figure is the sum
/// over the `events` its body carries (one, but for a WhatsApp batch).
struct Units {
    seed: String,
    /// Events in the request.
    events: usize,
    item_bytes: usize,
    table_wru: usize,
    index_bytes: usize,
    index_wru: usize,
    message_bytes: usize,
    webhook_log_bytes: f64,
    fanout_log_bytes: f64,
    access_log_bytes: usize,
}

/// A way to run the stack.
#[derive(Clone, Copy)]
struct Scenario {
    retention_days: f64,
    batching_window_s: f64,
    infrequent_access: bool,
}

/// Dollars per million events, by service.
#[derive(Default)]
struct Bill {
    api: f64,
    lambda: f64,
    writes: f64,
    storage: f64,
    sqs: f64,
    logs: f64,
    metrics: f64,
    xray: f64,
}

impl Bill {
    fn total(&self) -> f64 {
        self.api + self.lambda + self.writes + self.storage + self.sqs + self.logs + self.metrics
    }
}

/// The prices, the volume and what the stack does, for [`bill`].
struct Model<'a> {
    p: &'a Prices,
    a: &'a Assumptions,
    defaults: &'a Defaults,
    /// Custom metrics the seeds' requests published.
    series: usize,
}

impl Model<'_> {
    /// Events per second.
    fn rate(&self) -> f64 {
        self.a.events_per_month / MONTH_SECONDS
    }

    /// Records per fanout invocation: one shard's arrivals while the window
    /// is open, after the record that opened it.
    fn records_per_invocation(&self, window_s: f64) -> f64 {
        (1.0 + self.rate() / self.a.stream_shards * window_s).min(self.defaults.batch_size)
    }

    /// Dollars a month of keeping one event's bytes, per million events, for
    /// each month it is kept.
    fn storage_per_month(&self, r: &Units, infrequent_access: bool) -> f64 {
        let p = self.p;
        let per_gb = if infrequent_access {
            p.dynamodb_ia_storage_per_gb_month.usd
        } else {
            p.dynamodb_storage_per_gb_month.usd
        };
        let backup = if self.defaults.point_in_time_recovery {
            p.dynamodb_pitr_per_gb_month.usd
        } else {
            0.0
        };
        let events = r.events as f64;
        let table = (r.item_bytes + ITEM_OVERHEAD * r.events) as f64 / events;
        // index_bytes holds its own overhead.
        (table * (per_gb + backup) + r.index_bytes as f64 / events * per_gb) / GB * MILLION
    }

    fn write_price(&self, infrequent_access: bool) -> f64 {
        if infrequent_access {
            self.p.dynamodb_ia_on_demand_per_million_write_units.usd
        } else {
            self.p.dynamodb_on_demand_per_million_write_units.usd
        }
    }

    fn bill(&self, r: &Units, s: Scenario) -> Bill {
        let (p, a) = (self.p, self.a);
        let n = self.records_per_invocation(s.batching_window_s);
        // One request carries `events`: its request fees are shared; the
        // webhook's time grows with each event it stores (one PutItem each),
        // so its billed milliseconds are counted per event.
        let events = r.events as f64;
        let gb_s = |ms: f64| a.memory_mb / 1024.0 * ms / 1000.0;
        let lambda = p.lambda_per_million_requests.usd * (1.0 / events + 1.0 / n)
            + MILLION
                * p.lambda_arm64_per_gb_second.usd
                * (gb_s(a.webhook_billed_ms) + gb_s(a.fanout_billed_ms) / n);
        let wru = (r.table_wru + r.index_wru) as f64 / events;
        // One family's traffic: a batch is one request per 10 entries or
        // per 64 KiB, whichever is more.
        let send_requests = (n / SQS_BATCH)
            .ceil()
            .max((n * r.message_bytes as f64 / events / SQS_CHUNK as f64).ceil());
        let sqs = p.sqs_fifo_per_million_requests.usd
            * (send_requests / n + 2.0 / a.consumer_messages_per_receive);
        let log_bytes = (r.webhook_log_bytes + r.access_log_bytes as f64) / events
            + r.fanout_log_bytes / events / n;
        let logs = log_bytes / GB
            * MILLION
            * (p.cloudwatch_logs_ingest_per_gb.usd
                + p.cloudwatch_logs_storage_per_gb_month.usd * self.defaults.log_retention_days
                    / MONTH_DAYS);
        let rate = self.rate();
        Bill {
            api: p.api_gateway_http_per_million_requests.usd / events,
            lambda,
            writes: self.write_price(s.infrequent_access) * wru,
            storage: self.storage_per_month(r, s.infrequent_access) * s.retention_days / MONTH_DAYS,
            sqs,
            logs,
            metrics: self.series as f64 * p.cloudwatch_custom_metric_per_month.usd
                / (a.events_per_month / MILLION),
            xray: p.xray_per_million_traces_recorded.usd
                * (traced_share(rate) + traced_share(rate / n) / n),
        }
    }

    /// The retention in days past which Standard-IA costs less (its writes
    /// cost more, its storage less).
    fn infrequent_access_wins_after(&self, r: &Units) -> f64 {
        let wru = (r.table_wru + r.index_wru) as f64 / r.events as f64;
        let dearer_writes = (self.write_price(true) - self.write_price(false)) * wru;
        let cheaper_storage = self.storage_per_month(r, false) - self.storage_per_month(r, true);
        dearer_writes / cheaper_storage * MONTH_DAYS
    }
}

/// The distinct metrics (namespace, name, dimension names and values) the
/// EMF documents among `lines` publish.
fn metrics_of(lines: &[String], out: &mut BTreeSet<String>) {
    for line in lines {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(directives) = doc["_aws"]["CloudWatchMetrics"].as_array() else {
            continue;
        };
        for directive in directives {
            let namespace = directive["Namespace"].as_str().unwrap_or_default();
            for dimensions in directive["Dimensions"].as_array().into_iter().flatten() {
                let values: Vec<String> = dimensions
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str())
                    .map(|d| format!("{d}={}", doc[d]))
                    .collect();
                for metric in directive["Metrics"].as_array().into_iter().flatten() {
                    let name = metric["Name"].as_str().unwrap_or_default();
                    out.insert(format!("{namespace}/{name}[{}]", values.join(",")));
                }
            }
        }
    }
}

/// Bytes a function printed (each line and its newline).
fn printed(api: &RuntimeApi) -> usize {
    api.stdout_lines()
        .iter()
        .chain(api.stderr_lines().iter())
        .map(|l| l.len() + 1)
        .sum()
}

/// Bytes a function printed once its output has settled: a line written
/// just before the invocation's answer can reach the reader after it (on a
/// busy machine), so wait until nothing more arrives for 100 ms.
async fn printed_settled(api: &RuntimeApi) -> usize {
    let mut last = printed(api);
    let mut quiet = 0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let now = printed(api);
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
        if quiet >= 5 {
            break;
        }
    }
    last
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
    // Longest names first, so that no name replaces a prefix of another.
    let values = [
        ("$context.integrationErrorMessage", "-"),
        ("$context.identity.userAgent", "Go-http-client/1.1"),
        ("$context.identity.sourceIp", "203.0.113.42"),
        ("$context.integrationLatency", "12"),
        ("$context.integrationStatus", "200"),
        ("$context.requestTimeEpoch", "1796224114000"),
        ("$context.responseLatency", "14"),
        ("$context.responseLength", "70"),
        ("$context.error.message", "-"),
        ("$context.requestTime", "02/Dec/2026:15:08:34 +0000"),
        ("$context.requestId", "Jx8QZhZqoAMEVNQ="),
        ("$context.routeKey", &format!("POST {route}")),
        ("$context.status", "200"),
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
    let defaults = Defaults::read()?;
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
    let mut series = BTreeSet::new();
    for d in registry::all() {
        let d: &Descriptor = d;
        let mut webhook = RuntimeApi::start().await;
        webhook.spawn(&binary(d.function), d.function, &env_of(d.function));
        webhook.wait_ready().await;
        for file in d.fixtures {
            let body = fixture(d.name(), file);
            // Each event of the body, as the webhook stores it: with its
            // expiry when events expire.
            let items: Vec<_> = split_body(d.provider, &body)
                .iter()
                .map(|part| {
                    let mut item = seed_item(d.provider, part);
                    if defaults.retention_days > 0.0 {
                        item.expires_at = Some(
                            chrono::Utc::now().timestamp()
                                + defaults.retention_days as i64 * 86_400,
                        );
                    }
                    item
                })
                .collect();
            let (mut item_bytes, mut table_wru, mut index_bytes, mut index_wru) = (0, 0, 0, 0);
            let mut message_bytes = 0;
            for item in &items {
                let attributes = switchboard_aws::dynamo::attributes(item);
                let bytes = item_size(&attributes);
                // The by-day index is sparse: an accepted event has no entry.
                let index = index_entry_size(
                    &attributes,
                    &["pk", "sk"],
                    &["day", "received_at"],
                    Some(&[]),
                )
                .unwrap_or(0);
                item_bytes += bytes;
                table_wru += write_units(bytes);
                index_bytes += index;
                index_wru += if index > 0 { write_units(index) } else { 0 };
                message_bytes += message_for(item).map_err(anyhow::Error::msg)?.size();
            }
            let (mut webhook_bytes, mut fanout_bytes) = (0, 0);
            let mut last = Vec::new();
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
                webhook_bytes += printed_settled(&webhook).await - before;
                // Each event its own stream record and fanout invocation.
                for part in split_body(d.provider, &distinct_body).iter() {
                    let stored = seed_item(d.provider, part);
                    let image = serde_dynamo::to_item(&stored)?;
                    let before = printed(&fanout);
                    let outcome = fanout.invoke(&stream_event(&[("100", image)])).await;
                    if !ok(&outcome) {
                        bail!("fanout: {file} answered {outcome:?}");
                    }
                    fanout_bytes += printed_settled(&fanout).await - before;
                }
                last = distinct_body;
            }
            // A redelivery, as every provider sends some: its metrics are
            // part of the month's, its log bytes are not counted above.
            let outcome = webhook
                .invoke(&signed_api_event(d, &last, &unique("cost")))
                .await;
            if !ok(&outcome) {
                bail!("{}: {file} redelivered answered {outcome:?}", d.function);
            }
            printed_settled(&webhook).await;
            rows.push(Units {
                seed: format!("{}/{file}", d.name()),
                events: items.len(),
                item_bytes,
                table_wru,
                index_bytes,
                index_wru,
                message_bytes,
                webhook_log_bytes: webhook_bytes as f64 / RUNS as f64,
                fanout_log_bytes: fanout_bytes as f64 / RUNS as f64,
                access_log_bytes: access_log_bytes(d.route)?,
            });
        }
        metrics_of(&webhook.stdout_lines(), &mut series);
    }
    metrics_of(&fanout.stdout_lines(), &mut series);

    let model = Model {
        p,
        a,
        defaults: &defaults,
        series: series.len(),
    };
    let rate = model.rate();
    let at_defaults = Scenario {
        retention_days: defaults.retention_days,
        batching_window_s: defaults.batching_window_s,
        infrequent_access: false,
    };
    println!(
        "== cost per event, {} prices checked {} (infra/prices.json), {:.0} million events a month ({rate:.2}/s)",
        table.region,
        table.checked,
        a.events_per_month / MILLION
    );
    println!(
        "   assumed: {} MB; billed {} ms per webhook, {} ms per fanout invocation; {} stream shards; consumers receive {} messages per call",
        a.memory_mb, a.webhook_billed_ms, a.fanout_billed_ms, a.stream_shards, a.consumer_messages_per_receive
    );
    println!(
        "   template.yaml's defaults: RetentionDays {}, LogRetentionDays {}, FanoutBatchingWindowSeconds {} ({:.2} records per fanout invocation), point-in-time recovery {}",
        defaults.retention_days,
        defaults.log_retention_days,
        defaults.batching_window_s,
        model.records_per_invocation(defaults.batching_window_s),
        if defaults.point_in_time_recovery { "on" } else { "off" },
    );
    println!("per event (a request of several events: its figures over its events)");
    println!(
        "{:<44} {:>3} {:>6} {:>5} {:>6} {:>5} {:>7} {:>8} {:>8} {:>8}",
        "seed", "ev", "item B", "WRU", "day B", "WRU", "msg B", "log B wh", "log B fo", "log B gw"
    );
    for r in &rows {
        let e = r.events as f64;
        println!(
            "{:<44} {:>3} {:>6.0} {:>5.2} {:>6.0} {:>5.2} {:>7.0} {:>8.0} {:>8.0} {:>8.0}",
            r.seed,
            r.events,
            r.item_bytes as f64 / e,
            r.table_wru as f64 / e,
            r.index_bytes as f64 / e,
            r.index_wru as f64 / e,
            r.message_bytes as f64 / e,
            r.webhook_log_bytes / e,
            r.fanout_log_bytes / e,
            r.access_log_bytes as f64 / e
        );
    }
    println!(
        "custom metrics the seeds' requests published (one webhook per provider, one tenant each, accepted and duplicate): {}, ${:.2} a month",
        series.len(),
        series.len() as f64 * p.cloudwatch_custom_metric_per_month.usd
    );
    println!();
    println!(
        "{:<44} {:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7}",
        "$ per million events, defaults",
        "APIGW",
        "Lambda",
        "writes",
        "storage",
        "SQS",
        "Logs",
        "metrics",
        "total",
        "+X-Ray",
    );
    let mut worst: Option<&Units> = None;
    for r in &rows {
        let bill = model.bill(r, at_defaults);
        if worst.is_none_or(|w| bill.total() > model.bill(w, at_defaults).total()) {
            worst = Some(r);
        }
        println!(
            "{:<44} {:>6.2} {:>6.2} {:>6.2} {:>7.2} {:>6.2} {:>6.2} {:>7.2} {:>7.2} {:>7.2}",
            r.seed,
            bill.api,
            bill.lambda,
            bill.writes,
            bill.storage,
            bill.sqs,
            bill.logs,
            bill.metrics,
            bill.total(),
            bill.total() + bill.xray,
        );
    }
    let worst = worst.context("no seed")?;
    let max_wru = rows
        .iter()
        .map(|r| (r.table_wru + r.index_wru) as f64 / r.events as f64)
        .fold(0.0, f64::max);
    println!();
    println!(
        "write units per event, worst seed: {max_wru} (target 1); $ per million at the defaults, worst seed ({}): {:.2} (target ≤ 3.00), {:.2} with Tracing: Active",
        worst.seed,
        model.bill(worst, at_defaults).total(),
        model.bill(worst, at_defaults).total() + model.bill(worst, at_defaults).xray,
    );

    println!();
    println!("== the worst seed, other ways to run it");
    let year = 365.0;
    let window = 1.0;
    let n = model.records_per_invocation(window);
    let waits = window * (1.0 + (n - 1.0) / 2.0) / n;
    let ways = [
        (
            format!(
                "FanoutBatchingWindowSeconds {window}: {n:.2} records per invocation; delivery up to {window} s later ({waits:.2} s on average)"
            ),
            Scenario {
                batching_window_s: window,
                ..at_defaults
            },
        ),
        (
            format!("RetentionDays {year}"),
            Scenario {
                retention_days: year,
                ..at_defaults
            },
        ),
        (
            format!("RetentionDays {year}, Standard-IA table class"),
            Scenario {
                retention_days: year,
                infrequent_access: true,
                ..at_defaults
            },
        ),
    ];
    for (label, scenario) in ways {
        let bill = model.bill(worst, scenario);
        println!(
            "{label:<104} ${:.2} (storage ${:.2})",
            bill.total(),
            bill.storage
        );
    }
    println!(
        "RetentionDays 0 keeps events forever: storage grows by ${:.3} per million events for each month they are kept",
        model.storage_per_month(worst, false)
    );
    println!(
        "Standard-IA costs less once events are kept longer than {:.0} days (its writes cost {:.0}% more, its storage {:.0}% less)",
        model.infrequent_access_wins_after(worst),
        (model.write_price(true) / model.write_price(false) - 1.0) * 100.0,
        (1.0 - p.dynamodb_ia_storage_per_gb_month.usd / p.dynamodb_storage_per_gb_month.usd)
            * 100.0,
    );
    println!(
        "not counted: DynamoDB Streams reads by Lambda, TTL deletions and inbound transfer (free); Secrets Manager and KMS calls (once per cold start or per cached data key, not per event)"
    );

    println!();
    println!("== the writes on provisioned capacity instead (the worst seed's write units; 2x the average rate for peaks)");
    for events in [10.0 * MILLION, 100.0 * MILLION] {
        let wcu = (2.0 * events * max_wru / MONTH_SECONDS).ceil();
        let monthly = wcu * p.dynamodb_provisioned_per_wcu_hour.usd * MONTH_SECONDS / 3600.0;
        let on_demand =
            events / MILLION * max_wru * p.dynamodb_on_demand_per_million_write_units.usd;
        println!(
            "{:>4.0} million events/month: {wcu:.0} WCU provisioned ${monthly:.2}/month (${:.2}/million) vs on demand ${on_demand:.2}/month (${:.2}/million)",
            events / MILLION,
            monthly / (events / MILLION),
            on_demand / (events / MILLION),
        );
    }
    Ok(())
}
