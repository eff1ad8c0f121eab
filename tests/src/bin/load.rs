//! `make load`: N distinct events across every provider's seeds, each
//! delivered 3 times in shuffled order with 64 requests in flight, through
//! the local stack's HTTP gateway (moto behind it). Then it checks and
//! prints: every response 2xx, every copy of an event answered with the same
//! event id, N distinct events stored, N distinct messages on the queues,
//! and the latency percentiles.
//!
//! Usage: `load [--events N] [--copies C] [--concurrency K]`
//! (defaults 2000, 3, 64). Needs `AWS_ENDPOINT_URL` (moto); the script
//! `infra/scripts/load.sh` starts moto and runs this.

use futures::stream::{self, StreamExt};
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use switchboard_tests::{distinct, seed_parts, TestStack};
use switchboard_types::{Family, Provider};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One logical event: which provider, and its body.
struct Event {
    provider: Provider,
    body: Vec<u8>,
}

/// `n` distinct events, taking every registered provider's seed events in
/// turn: one event per request (a seed that carries several is split, and
/// each part is a body its provider could send alone).
fn events(n: usize) -> Vec<Event> {
    let seeds: Vec<(Provider, Vec<u8>)> = seed_parts()
        .into_iter()
        .map(|(provider, _, body)| (provider, body))
        .collect();
    (0..n)
        .map(|i| {
            let (provider, seed) = &seeds[i % seeds.len()];
            Event {
                provider: *provider,
                body: distinct(seed, &format!("load-{i:08}")),
            }
        })
        .collect()
}

/// Sends one copy; returns (status, event id, latency).
async fn send(t: &TestStack, event: &Event) -> (u16, Option<String>, Duration) {
    let started = Instant::now();
    let (status, reply) = t.post_as(event.provider, &event.body, &[]).await;
    let id = reply["event_ids"][0].as_str().map(str::to_owned);
    (status, id, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Receives (and deletes) every message of the three queues until `n`
/// distinct event ids arrived and the queues stay quiet for 3 s.
async fn drain_all(t: &TestStack, n: usize) -> (usize, HashSet<String>) {
    let mut total = 0;
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut quiet_since: Option<Instant> = None;
    loop {
        let mut got = 0;
        for family in [Family::Conversations, Family::Messages, Family::Other] {
            for message in t.receive_and_delete(family).await {
                got += 1;
                total += 1;
                if let Some(id) = message.body["id"].as_str() {
                    ids.insert(id.to_owned());
                }
            }
        }
        if got == 0 {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if (ids.len() >= n && since.elapsed() > Duration::from_secs(3))
                || Instant::now() > deadline
            {
                return (total, ids);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else {
            quiet_since = None;
        }
    }
}

/// Distinct items in the table (a Scan that counts, paginated).
async fn stored_count(t: &TestStack) -> usize {
    let dynamodb = aws_sdk_dynamodb::Client::new(&t.stack.sdk);
    let mut count = 0;
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(&t.stack.table_name)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        count += page.count() as usize;
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return count;
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--events", 2000);
    let copies = arg(&args, "--copies", 3);
    let concurrency = arg(&args, "--concurrency", 64);

    let t = TestStack::start().await;
    let events = events(n);
    let mut plan: Vec<usize> = (0..n)
        .flat_map(|i| std::iter::repeat_n(i, copies))
        .collect();
    plan.shuffle(&mut rand::thread_rng());
    let seeds: Vec<String> = seed_parts().into_iter().map(|(_, name, _)| name).collect();
    println!(
        "load: {n} distinct events ({} in turn) x {copies} deliveries = {} requests, shuffled, {concurrency} in flight, gateway {}",
        seeds.join(", "),
        plan.len(),
        t.stack.url("/")
    );

    let started = Instant::now();
    let results: Vec<(usize, u16, Option<String>, Duration)> = stream::iter(plan)
        .map(|i| {
            let (t, events) = (&t, &events);
            async move {
                let (status, id, latency) = send(t, &events[i]).await;
                (i, status, id, latency)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let sending = started.elapsed();

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut ids_by_event: HashMap<usize, HashSet<Option<String>>> = HashMap::new();
    let mut latencies: Vec<Duration> = Vec::with_capacity(results.len());
    for (i, status, id, latency) in &results {
        *statuses.entry(*status).or_default() += 1;
        ids_by_event.entry(*i).or_default().insert(id.clone());
        latencies.push(*latency);
    }
    latencies.sort();
    let all_2xx = statuses.keys().all(|s| (200..300).contains(s));
    let consistent = ids_by_event
        .values()
        .all(|ids| ids.len() == 1 && ids.iter().all(Option::is_some));
    let distinct_ids: HashSet<&String> = ids_by_event
        .values()
        .flat_map(|ids| ids.iter().flatten())
        .collect();

    let stored = stored_count(&t).await;
    let (messages, message_ids) = drain_all(&t, n).await;
    let delivered = started.elapsed();

    println!(
        "responses: {} total, by status {statuses:?}; every response 2xx: {all_2xx}",
        results.len()
    );
    println!(
        "latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; sent in {:.1} s ({:.0} requests/s)",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        sending.as_secs_f64(),
        results.len() as f64 / sending.as_secs_f64()
    );
    println!(
        "event ids: {} distinct; every copy of an event got the same id: {consistent}",
        distinct_ids.len()
    );
    println!("stored: {stored} distinct events (expected {n})");
    println!(
        "queued: {messages} messages, {} distinct event ids (expected {n}); all delivered {:.1} s after the first request",
        message_ids.len(),
        delivered.as_secs_f64()
    );
    let ok = all_2xx
        && consistent
        && distinct_ids.len() == n
        && stored == n
        && messages == n
        && message_ids.len() == n;
    println!("load: {}", if ok { "PASS" } else { "FAIL" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
