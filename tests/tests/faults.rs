//! Nothing lost, nothing twice — under faults. Each test puts the fault
//! proxy (`switchboard_tests::faults`) between the AWS SDK and moto, breaks
//! DynamoDB or SQS in one precise way, and checks the promise the README
//! makes: an authentic event is answered 5xx (so the provider retries) or
//! stored exactly once, and every stored accepted event reaches its queue.

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, Method};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_aws::{DynamoStore, QueueUrls, SqsPublisher};
use switchboard_pipeline::{
    fanout, item, FanoutReport, Handled, Ingest, Limits, OutcomeKind, StreamRecord, WebhookRequest,
};
use switchboard_providers::{WebhookProvider, Zipmessage};
use switchboard_tests::faults::{sdk_config_for, Fault, FaultProxy};
use switchboard_tests::runtime::{http_api_event, RuntimeApi};
use switchboard_tests::{binary, distinct, fixture, keys, lambda_env, moto_endpoint, TestStack};
use switchboard_types::{Family, Provider};

fn zipmessage() -> Arc<dyn WebhookProvider> {
    Arc::new(Zipmessage::new(&[keys::zipmessage_token()]).expect("token"))
}

/// The ZipMessage pipeline of `t`'s table, its DynamoDB calls going to `endpoint`.
async fn ingest_via(t: &TestStack, endpoint: &str) -> Ingest {
    let sdk = sdk_config_for(endpoint).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &t.stack.table_name);
    Ingest::new(zipmessage(), Arc::new(store), Limits::default())
}

fn zip_request(body: &[u8]) -> WebhookRequest {
    WebhookRequest {
        method: Method::POST,
        headers: HeaderMap::new(),
        body: Bytes::copy_from_slice(body),
        path_token: Some(keys::zipmessage_token().into()),
        public_url: None,
        query: None,
    }
}

async fn deliver(ingest: &Ingest, body: &[u8]) -> Handled {
    ingest.handle(&zip_request(body), Utc::now()).await
}

/// How many stored items carry `event_id`.
async fn stored(t: &TestStack, event_id: &str) -> usize {
    t.items()
        .await
        .iter()
        .filter(|i| i.event_id == event_id)
        .count()
}

fn event_id(handled: &Handled) -> String {
    handled
        .outcome()
        .event
        .as_ref()
        .map(|e| e.event_id.clone())
        .expect("an authenticated request names its event")
}

fn assert_retry_later(handled: &Handled) {
    assert_eq!(handled.reply.status, 503, "{}", handled.reply.body);
    assert_eq!(handled.reply.json_body()["error"], "storage_unavailable");
    assert!(handled
        .reply
        .headers
        .iter()
        .any(|(n, _)| *n == "retry-after"));
    assert_eq!(handled.outcome().kind, OutcomeKind::StorageUnavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_or_failing_storage_answers_503_stores_nothing_and_the_redelivery_lands_once() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let ingest = ingest_via(&t, &proxy.url()).await;
    let cases = [
        (
            "ProvisionedThroughputExceeded",
            Fault::PROVISIONED_THROUGHPUT_EXCEEDED,
            "conversation_created.json",
        ),
        ("Throttling", Fault::THROTTLING, "message_created.json"),
        (
            "InternalServerError",
            Fault::INTERNAL_SERVER_ERROR,
            "message_played.json",
        ),
    ];
    for (name, fault, seed) in cases {
        let body = fixture("zipmessage", seed);
        proxy.arm("PutItem", fault, usize::MAX);
        let failed = deliver(&ingest, &body).await;
        assert_retry_later(&failed);
        // The SDK's policy: 3 attempts (shared/aws/src/sdk.rs), then give up.
        assert_eq!(proxy.seen(), 3, "{name}: attempts");
        let id = event_id(&failed);
        assert_eq!(stored(&t, &id).await, 0, "{name}: nothing half-written");

        // The provider retries after recovery: stored exactly once.
        proxy.heal();
        let retried = deliver(&ingest, &body).await;
        assert_eq!(retried.reply.status, 200, "{name}: {}", retried.reply.body);
        assert_eq!(retried.reply.json_body()["status"], "accepted", "{name}");
        assert_eq!(event_id(&retried), id, "{name}: the same event id");
        assert_eq!(stored(&t, &id).await, 1, "{name}");
        let again = deliver(&ingest, &body).await;
        assert_eq!(
            (
                again.reply.status,
                again.reply.json_body()["status"].as_str()
            ),
            (http::StatusCode::OK, Some("duplicate")),
            "{name}: a later copy is a duplicate"
        );
        assert_eq!(stored(&t, &id).await, 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_storage_answers_503_well_inside_the_providers_timeouts() {
    let t = TestStack::start().await;
    // A loopback port with nothing listening: every connection is refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let ingest = ingest_via(&t, &format!("http://{closed}")).await;
    let body = fixture("zipmessage", "message_created.json");
    let started = Instant::now();
    let failed = deliver(&ingest, &body).await;
    assert_retry_later(&failed);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(t.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_slower_than_the_sdk_timeout_answers_503_and_the_event_lands_once() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let ingest = ingest_via(&t, &proxy.url()).await;
    let body = fixture("zipmessage", "message_created.json");

    // One slow attempt: the SDK cuts it at 2 s and the retry stores it.
    proxy.arm("PutItem", Fault::Delay(Duration::from_millis(2500)), 1);
    let handled = deliver(&ingest, &body).await;
    assert!(handled.reply.status == 200, "{}", handled.reply.body);
    let id = event_id(&handled);

    // Every attempt slow: the whole call is cut at 5 s and the answer is 503.
    let other = fixture("zipmessage", "message_played.json");
    proxy.arm("PutItem", Fault::Delay(Duration::from_secs(30)), usize::MAX);
    let started = Instant::now();
    let failed = deliver(&ingest, &other).await;
    assert_retry_later(&failed);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "the operation timeout is 5 s, waited {waited:?}"
    );
    proxy.heal();
    let retried = deliver(&ingest, &other).await;
    assert_eq!(retried.reply.status, 200);
    assert_eq!(stored(&t, &event_id(&retried)).await, 1);
    assert_eq!(stored(&t, &id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_lands_but_fails_on_the_way_back_is_stored_once_and_published_once() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let ingest = ingest_via(&t, &proxy.url()).await;

    // The first attempt's write lands but its answer is lost; the SDK's retry
    // finds the item (conditional put) and the webhook answers "duplicate".
    let body = fixture("zipmessage", "message_created.json");
    proxy.arm("PutItem", Fault::ForwardThenFail, 1);
    let handled = deliver(&ingest, &body).await;
    assert_eq!(handled.reply.status, 200, "{}", handled.reply.body);
    let id = event_id(&handled);
    assert_eq!(stored(&t, &id).await, 1);

    // Every answer lost: 503, although the item is there; the provider's
    // redelivery is a duplicate. Still one item.
    let other = fixture("zipmessage", "message_played.json");
    proxy.arm("PutItem", Fault::ForwardThenFail, usize::MAX);
    let failed = deliver(&ingest, &other).await;
    assert_retry_later(&failed);
    let other_id = event_id(&failed);
    assert_eq!(stored(&t, &other_id).await, 1);
    proxy.heal();
    assert_eq!(deliver(&ingest, &other).await.reply.status, 200);
    assert_eq!(stored(&t, &other_id).await, 1);

    // Both reach the queue exactly once, through the stream.
    let messages = t
        .drain(Family::Messages, 2, Duration::from_millis(1500))
        .await;
    let ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.body["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([id.as_str(), other_id.as_str()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_process_dying_after_its_write_still_delivers_the_event() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let mut env = lambda_env(&t.stack.provisioned.functions, "zipmessage-webhook");
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
    let mut api = RuntimeApi::start().await;
    api.spawn(&binary("zipmessage-webhook"), "zipmessage-webhook", &env);
    api.wait_ready().await;

    // The write reaches DynamoDB, then the answer never comes back and the
    // process is killed mid-invocation: the provider sees no 2xx.
    proxy.arm("PutItem", Fault::ForwardThenHang, 1);
    let body = fixture("zipmessage", "message_created.json");
    let path = format!("/webhooks/zipmessage/{}", keys::zipmessage_token());
    api.enqueue(&http_api_event(
        "POST",
        "/webhooks/zipmessage/{token}",
        &path,
        &[("content-type", "application/json")],
        &body,
        Some(("token", keys::zipmessage_token())),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.items().await.is_empty() {
        assert!(Instant::now() < deadline, "the write never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.kill().await;

    // The stream still carries it to its queue.
    let messages = t
        .drain(Family::Messages, 1, Duration::from_millis(1000))
        .await;
    assert_eq!(messages.len(), 1);
    let id = messages[0].body["id"].as_str().expect("id").to_owned();
    // The provider's retry is recognised; nothing is published twice.
    let (status, reply) = t.post_zipmessage(&body).await;
    assert_eq!(
        (status, reply["event_ids"][0].as_str()),
        (200, Some(id.as_str()))
    );
    assert!(t
        .drain(Family::Messages, 0, Duration::from_millis(1500))
        .await
        .is_empty());
    assert_eq!(t.items().await.len(), 1);
}

/// `n` distinct ZipMessage message events, as stream records of stored
/// items: in one conversation, or each in its own.
fn message_records(n: usize, one_conversation: bool) -> Vec<StreamRecord> {
    let seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "message_created.json")).expect("json");
    (0..n)
        .map(|i| {
            let mut body = seed.clone();
            body["id"] = Value::String(format!("fault-test-{i}"));
            let mut text = serde_json::to_string(&body).expect("encode");
            if !one_conversation {
                text = text.replace("april-1st-2022-conversation1", &format!("conversation-{i}"));
            }
            let bytes = text.into_bytes();
            let decoded = switchboard_providers::decode_body(Provider::Zipmessage, &bytes);
            StreamRecord {
                id: format!("seq-{i}"),
                event_name: "INSERT".into(),
                item: Ok(Some(item::build(
                    Provider::Zipmessage,
                    &decoded,
                    &switchboard_providers::Delivery::default(),
                    &bytes,
                    Utc::now(),
                ))),
            }
        })
        .collect()
}

fn publisher_via(t: &TestStack, sdk: &aws_config::SdkConfig) -> SqsPublisher {
    let queues = QueueUrls(
        Family::ALL
            .iter()
            .map(|f| (*f, t.stack.queue_url(*f).to_owned()))
            .collect(),
    );
    SqsPublisher::new(aws_sdk_sqs::Client::new(sdk), queues)
}

/// The records Lambda hands the function again after `report`: every record
/// from the lowest reported one (its checkpoint), not only those reported.
fn from_checkpoint(records: &[StreamRecord], report: &FanoutReport) -> Vec<StreamRecord> {
    let first = records
        .iter()
        .position(|r| report.failed.contains(&r.id))
        .unwrap_or(records.len());
    records[first..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_sqs_batch_failure_reports_every_record_from_the_first_and_loses_none() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let publisher = publisher_via(&t, &sdk_config_for(&proxy.url()).await);
    // Six conversations: one batch, whose odd entries SQS refuses.
    let records = message_records(6, false);
    proxy.arm("SendMessageBatch", Fault::FailBatchEntries, 1);
    let first = fanout(&publisher, &records).await;
    assert_eq!(first.published, 3);
    assert_eq!(
        first.failed,
        ["seq-1", "seq-2", "seq-3", "seq-4", "seq-5"],
        "the first failure and every later record, as Lambda's checkpoint retries them"
    );

    // Lambda retries from the checkpoint; what was sent already is
    // deduplicated by SQS (same deduplication id within 5 minutes).
    proxy.heal();
    let second = fanout(&publisher, &from_checkpoint(&records, &first)).await;
    assert_eq!((second.published, second.failed.len()), (5, 0));

    // A whole batch refused: every record is reported, none dropped.
    proxy.arm("SendMessageBatch", Fault::INTERNAL_SERVER_ERROR, usize::MAX);
    let refused = fanout(&publisher, &records[..2]).await;
    assert_eq!(refused.failed, ["seq-0", "seq-1"]);
    proxy.heal();

    let messages = t
        .drain(Family::Messages, 6, Duration::from_millis(1500))
        .await;
    let ids: BTreeSet<String> = messages
        .iter()
        .filter_map(|m| m.body["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!((messages.len(), ids.len()), (6, 6), "each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_never_overtaken_by_a_later_one_of_its_conversation() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let publisher = publisher_via(&t, &sdk_config_for(&proxy.url()).await);
    // Four events of one conversation; SQS refuses the second message it
    // is sent.
    let records = message_records(4, true);
    proxy.arm("SendMessageBatch", Fault::FailNthEntry(2), usize::MAX);
    let mut pending = records.clone();
    for _ in 0..4 {
        let report = fanout(&publisher, &pending).await;
        pending = from_checkpoint(&pending, &report);
        if pending.is_empty() {
            break;
        }
        proxy.heal();
    }
    assert!(pending.is_empty(), "delivered after the retries");
    let messages = t
        .drain(Family::Messages, 4, Duration::from_millis(1500))
        .await;
    let order: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.body["id"].as_str())
        .collect();
    let written: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.item {
            Ok(Some(item)) => Some(item.event_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        order, written,
        "the queue holds the conversation in write order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_goes_to_the_failure_queue_after_bounded_retries_without_blocking_the_stream(
) {
    let t = TestStack::start().await;
    // An accepted item whose stored body cannot become a CloudEvent.
    let records = message_records(1, true);
    let mut poison = records[0].item.clone().ok().flatten().expect("an item");
    poison.raw = Some("this stored body is not JSON".into());
    poison.raw_gz = None;
    aws_sdk_dynamodb::Client::new(&t.stack.sdk)
        .put_item()
        .table_name(&t.stack.table_name)
        .set_item(Some(serde_dynamo::to_item(&poison).expect("encode")))
        .send()
        .await
        .expect("put the poison item");
    // Behind it on the stream: an event of another conversation, in
    // another virtual shard, and one of the poison's own conversation.
    let shards = switchboard_local::default_virtual_shards();
    let poison_shard = switchboard_local::poller::virtual_shard(&poison.pk, shards);
    let seed =
        String::from_utf8(fixture("zipmessage", "conversation_created.json")).expect("utf-8");
    let elsewhere = (0..)
        .map(|n| {
            let moved = seed.replace("april-1st-2022-conversation1", &format!("elsewhere-{n}"));
            String::from_utf8(distinct(moved.as_bytes(), "elsewhere")).expect("utf-8")
        })
        .find(|body| {
            let decoded = switchboard_providers::decode_body(Provider::Zipmessage, body.as_bytes());
            let item = item::build(
                Provider::Zipmessage,
                &decoded,
                &switchboard_providers::Delivery::default(),
                body.as_bytes(),
                Utc::now(),
            );
            switchboard_local::poller::virtual_shard(&item.pk, shards) != poison_shard
        })
        .expect("a conversation in another shard");
    let (status, other) = t.post_zipmessage(elsewhere.as_bytes()).await;
    assert_eq!(status, 200, "{other}");
    let (status, same) = t
        .post_zipmessage(&fixture("zipmessage", "conversation_created.json"))
        .await;
    assert_eq!(status, 200, "{same}");

    // Another shard is not held up by the poison...
    let delivered = t
        .drain(Family::Conversations, 1, Duration::from_millis(500))
        .await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].body["id"], other["event_ids"][0]);
    // ...the poison record, alone (the fanout fails the batch it heads, so
    // it is bisected), exhausts the template's retries and lands in the
    // on-failure queue as AWS describes a batch there...
    let failures = &t.stack.provisioned.queues["FanoutFailuresQueue"];
    let sqs = aws_sdk_sqs::Client::new(&t.stack.sdk);
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let received = sqs
            .receive_message()
            .queue_url(failures)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if let Some(message) = received.messages().first() {
            break message.body().unwrap_or_default().to_owned();
        }
        assert!(Instant::now() < deadline, "no failure record within 30 s");
    };
    let record: Value = serde_json::from_str(&body).expect("JSON");
    let info = &record["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1, "{record}");
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"]);
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    let retries = t
        .stack
        .provisioned
        .functions
        .iter()
        .find(|f| f.binary == "fanout")
        .map(|f| f.stream_settings.maximum_retry_attempts)
        .expect("the fanout's stream settings");
    assert_eq!(
        record["requestContext"]["approximateInvokeCount"],
        retries + 1,
        "template.yaml's MaximumRetryAttempts, plus the first attempt"
    );
    // ...and the event behind it in its own shard is then delivered, not lost.
    let after = t
        .drain(Family::Conversations, 1, Duration::from_secs(5))
        .await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].body["id"], same["event_ids"][0]);
    // The poison item was never published anywhere.
    assert!(t
        .drain(Family::Messages, 0, Duration::from_millis(500))
        .await
        .is_empty());
}
