//! Order and exactly-once under faults and load: the acceptance run of the
//! conversation-keyed table and the in-order fanout.
//!
//! N events over at least 50 ZipMessage conversations (a
//! `conversation_created` and messages in each, so two queues), each
//! delivered 2 or 3 times, shuffled, 32 requests in flight, through a local
//! stack whose every AWS call crosses the fault proxy: about 10% of
//! `PutItem`s throttled, 5% of write answers lost after the write, 10% of
//! `SendMessageBatch` calls failed and 5% of their entries refused — while
//! the stream runs 4 virtual shards concurrently. A sender retries a 5xx, as
//! the providers do. Then:
//!
//! - every event answered 2xx is stored exactly once;
//! - every stored accepted event is delivered;
//! - per conversation and queue, the consumer sees the events in write order
//!   (the stream's order) with no inversion;
//! - a message arrives twice only with the same deduplication id, within
//!   the run (under 5 minutes): a copy SQS FIFO drops.
//!
//! `ORDER_EVENTS` sets N (1,000 in `make test`; the note's run used 2,000).

use futures::stream::{self, StreamExt};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use switchboard_tests::faults::{Chaos, Fault, FaultProxy};
use switchboard_tests::{distinct, fixture, moto_endpoint, patient, QueueMessage, TestStack};
use switchboard_types::{key, Family};

const CONVERSATIONS: usize = 50;
const IN_FLIGHT: usize = 32;
const VIRTUAL_SHARDS: usize = 4;
/// The faults' seed (any constant: a failing run can be repeated).
const SEED: u64 = 0x5eed_0de5;

/// The `n`-th event: conversation `n % 50`, its first event a
/// `conversation_created`, the others `message_created`.
fn event(n: usize) -> Vec<u8> {
    let conversation = n % CONVERSATIONS;
    let seed = if n < CONVERSATIONS {
        "conversation_created.json"
    } else {
        "message_created.json"
    };
    let text = String::from_utf8(fixture("zipmessage", seed))
        .expect("utf-8")
        .replace(
            "april-1st-2022-conversation1",
            &format!("order-conversation-{conversation}"),
        );
    distinct(text.as_bytes(), &format!("order-{n}"))
}

/// Posts until a 2xx (a provider retries a 5xx); returns the event id and
/// how many 5xx it took.
async fn deliver(t: &TestStack, body: &[u8]) -> (String, usize) {
    let mut refused = 0;
    loop {
        let (status, reply) = t.post_zipmessage(body).await;
        if (200..300).contains(&status) {
            let id = reply["event_ids"][0].as_str().expect("an id").to_owned();
            return (id, refused);
        }
        assert!(
            status >= 500,
            "only a 5xx may refuse an authentic event: {status} {reply}"
        );
        refused += 1;
        assert!(refused < 50, "still refused after 50 tries: {reply}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The event ids of the table's stream INSERTs, in stream order, by partition.
async fn written_order(t: &TestStack) -> BTreeMap<String, Vec<String>> {
    // The test's own reading: patient, in pages of 100 as the poller reads
    // (a 1,000-record page timed out under the product's 5 s on a busy box).
    let streams = aws_sdk_dynamodbstreams::Client::new(&patient(&t.stack.sdk));
    let arn = switchboard_local::poller::stream_arn(&t.stack.sdk, &t.stack.table_name)
        .await
        .expect("stream");
    let description = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe");
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shard in description
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
    {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator()
            .map(str::to_owned);
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .limit(100)
                .send()
                .await
                .expect("records");
            for record in page.records() {
                let keys = record.dynamodb().and_then(|d| d.keys());
                let text = |name: &str| {
                    keys.and_then(|k| k.get(name))
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                let sk = text("sk");
                let (_, id) = key::parse_sort(&sk).unwrap_or_default();
                order.entry(text("pk")).or_default().push(id.to_owned());
            }
            iterator = if page.records().is_empty() {
                None
            } else {
                page.next_shard_iterator().map(str::to_owned)
            };
        }
    }
    order
}

/// Every message a consumer gets in its queue's receive order, with when.
type Received = BTreeMap<Family, Vec<(Instant, QueueMessage)>>;

/// A consumer's SQS client, straight to moto (behind the AWS-limits proxy,
/// not the fault proxy) and patient: moto answers slowly under this load,
/// and a receive the client gave up on would still have put its messages
/// in flight, holding their groups back for the visibility timeout.
async fn consumer_client() -> aws_sdk_sqs::Client {
    let sdk = switchboard_tests::faults::sdk_config_for(
        &switchboard_local::aws_limits::guarded_endpoint(&moto_endpoint()),
    )
    .await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(120))
        .operation_attempt_timeout(Duration::from_secs(120))
        .build();
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .timeout_config(timeouts)
            .build(),
    )
}

/// One receive of up to 10 messages, then one `DeleteMessageBatch`.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<QueueMessage> {
    let Ok(received) = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
    else {
        return Vec::new();
    };
    let entries: Vec<_> = received
        .messages()
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        // A failed delete only brings the message back later: a duplicate.
        let _ = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await;
    }
    received
        .messages()
        .iter()
        .map(QueueMessage::from_sdk)
        .collect()
}

/// One consumer per queue, from the start (as a real one runs), until `n`
/// distinct events came (or the deadline passed), and 2 s more, to count
/// duplicates still on their way.
async fn consume(t: &TestStack, n: usize, started: Instant) -> (Received, HashSet<String>) {
    let sqs = consumer_client().await;
    let deadline = started + Duration::from_secs(180) + Duration::from_millis(150) * n as u32;
    let mut received = Received::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut report_at = Instant::now();
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if seen.len() >= n && settle_until.is_none() {
            settle_until = Some(now + Duration::from_secs(2));
        }
        if settle_until.is_some_and(|s| now >= s) || now >= deadline {
            return (received, seen);
        }
        if report_at.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "order: {} of {n} delivered after {:.0} s",
                seen.len(),
                started.elapsed().as_secs_f64()
            );
            report_at = now;
        }
        let batches = futures::future::join_all(Family::ALL.iter().map(|f| {
            let sqs = &sqs;
            async move { (*f, receive(sqs, t.stack.queue_url(*f)).await) }
        }))
        .await;
        let mut got = 0;
        for (family, messages) in batches {
            got += messages.len();
            let at = Instant::now();
            for m in messages {
                seen.insert(m.body["id"].as_str().unwrap_or_default().to_owned());
                received.entry(family).or_default().push((at, m));
            }
        }
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_and_exactly_once_hold_under_faults_and_load() {
    let n: usize = std::env::var("ORDER_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .max(CONVERSATIONS * 2);
    let started = Instant::now();
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let t = TestStack::start_via(&proxy.url(), VIRTUAL_SHARDS).await;
    proxy.chaos(
        vec![
            Chaos {
                operation: "PutItem",
                fault: Fault::PROVISIONED_THROUGHPUT_EXCEEDED,
                probability: 0.10,
            },
            Chaos {
                operation: "PutItem",
                fault: Fault::ForwardThenFail,
                probability: 0.05 / 0.90,
            },
            Chaos {
                operation: "SendMessageBatch",
                fault: Fault::Respond {
                    status: 500,
                    error_type: "AWS.SimpleQueueService.InternalError",
                },
                probability: 0.10,
            },
            Chaos {
                operation: "SendMessageBatch",
                fault: Fault::FailEntriesRandomly(0.05),
                probability: 1.0,
            },
        ],
        SEED,
    );

    // Each event 2 or 3 times, shuffled; the first copies of a conversation's
    // events race as its later ones do.
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let bodies: Vec<Vec<u8>> = (0..n).map(event).collect();
    let mut deliveries: Vec<usize> = (0..n)
        .flat_map(|i| std::iter::repeat_n(i, if rng.gen_bool(0.5) { 2 } else { 3 }))
        .collect();
    deliveries.shuffle(&mut rng);
    let requests = deliveries.len();
    let post = async {
        let answers: Vec<(usize, String, usize)> = stream::iter(deliveries)
            .map(|i| {
                let (t, bodies) = (&t, &bodies);
                async move {
                    let (id, refused) = deliver(t, &bodies[i]).await;
                    (i, id, refused)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        (answers, started.elapsed())
    };
    // The consumer runs from the start, as a real one does: one receiver
    // per queue, in receive order, deleting what it read.
    let ((answers, posted), (received, seen)) = tokio::join!(post, consume(&t, n, started));
    let mut ids: HashMap<usize, HashSet<String>> = HashMap::new();
    let mut refused = 0;
    for (i, id, r) in &answers {
        ids.entry(*i).or_default().insert(id.clone());
        refused += r;
    }
    assert!(
        ids.values().all(|set| set.len() == 1),
        "every copy of an event is answered with one id"
    );
    let expected: HashSet<String> = ids.values().flatten().cloned().collect();
    assert_eq!(expected.len(), n, "n distinct events");

    // Every 2xx'd event stored exactly once.
    let items = t.items().await;
    let mut stored: HashMap<&str, usize> = HashMap::new();
    for item in &items {
        *stored.entry(item.event_id.as_str()).or_default() += 1;
    }
    assert_eq!(items.len(), n, "one item per event");
    assert!(expected
        .iter()
        .all(|id| stored.get(id.as_str()) == Some(&1)));

    proxy.heal();
    let delivered = started.elapsed();
    let missing: Vec<&String> = expected.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} stored events never delivered: {missing:?}",
        missing.len()
    );

    // Duplicates only where SQS FIFO drops them: same deduplication id,
    // within 5 minutes.
    let mut copies: HashMap<&str, Vec<(Instant, &str)>> = HashMap::new();
    for (at, m) in received.values().flatten() {
        copies
            .entry(m.body["id"].as_str().unwrap_or_default())
            .or_default()
            .push((*at, m.dedup_id.as_str()));
    }
    let duplicates: usize = copies.values().map(|c| c.len() - 1).sum();
    for (id, copies) in &copies {
        assert!(copies.iter().all(|(_, d)| d == id), "{id}: {copies:?}");
        let first = copies.iter().map(|(at, _)| *at).min();
        let last = copies.iter().map(|(at, _)| *at).max();
        if let (Some(first), Some(last)) = (first, last) {
            assert!(
                last - first < Duration::from_secs(300),
                "{id}: copies within SQS's 5-minute window"
            );
        }
    }

    // Per conversation and queue, first receipts in write order.
    let written = written_order(&t).await;
    let by_id: HashMap<&str, &switchboard_types::StoredEvent> =
        items.iter().map(|i| (i.event_id.as_str(), i)).collect();
    let mut inversions = Vec::new();
    let mut checked_groups = 0;
    for (family, messages) in &received {
        let mut order: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut first = HashSet::new();
        for (_, m) in messages {
            let id = m.body["id"].as_str().unwrap_or_default();
            if first.insert(id) {
                order.entry(m.group_id.as_str()).or_default().push(id);
            }
        }
        for (group, got) in order {
            let pk = &by_id[got[0]].pk;
            let want: Vec<&str> = written[pk]
                .iter()
                .map(String::as_str)
                .filter(|id| by_id[id].family == *family)
                .collect();
            checked_groups += 1;
            if got != want {
                inversions.push(format!(
                    "{group} on {}: got {got:?}, written {want:?}",
                    family.as_str()
                ));
            }
        }
    }
    let injected = proxy.injected();
    println!(
        "order under faults: {n} events over {CONVERSATIONS} conversations, {requests} requests \
         ({IN_FLIGHT} in flight), {refused} answered 5xx and retried; posted in {:.1} s, all \
         delivered in {:.1} s; {VIRTUAL_SHARDS} virtual shards; {checked_groups} (conversation, \
         queue) groups checked, {} inversions; {duplicates} duplicate deliveries (same \
         deduplication id); faults injected: {injected:?}",
        posted.as_secs_f64(),
        delivered.as_secs_f64(),
        inversions.len()
    );
    assert!(inversions.is_empty(), "{inversions:#?}");
    assert!(
        injected.keys().any(|k| k.starts_with("PutItem"))
            && injected.keys().any(|k| k.starts_with("SendMessageBatch")),
        "the run met faults of both kinds: {injected:?}"
    );
}
