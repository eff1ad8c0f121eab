//! Nothing lost, nothing twice — under faults. Each test puts the fault
//! proxy (`switchboard_tests::faults`) between the AWS SDK and moto, breaks
//! DynamoDB or SQS in one precise way, and checks the promise the README
//! makes: an authentic event is answered 5xx (so the provider retries) or
//! stored exactly once, and every stored accepted event reaches its queue.

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, Method};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_aws::{DynamoStore, QueueUrls, SqsPublisher};
use switchboard_pipeline::{
    fanout, item, Handled, Ingest, Limits, OutcomeKind, StreamRecord, WebhookRequest,
};
use switchboard_providers::{WebhookProvider, Zipmessage};
use switchboard_tests::faults::{sdk_config_for, Fault, FaultProxy};
use switchboard_tests::runtime::{http_api_event, RuntimeApi};
use switchboard_tests::{binary, fixture, keys, lambda_env, moto_endpoint, TestStack};
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
        .outcome
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
    assert_eq!(handled.outcome.kind, OutcomeKind::StorageUnavailable);
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

/// `n` distinct ZipMessage message events, as stream records of stored items.
fn message_records(n: usize) -> Vec<StreamRecord> {
    let seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "message_created.json")).expect("json");
    (0..n)
        .map(|i| {
            let mut body = seed.clone();
            body["id"] = Value::String(format!("fault-test-{i}"));
            let bytes = serde_json::to_vec(&body).expect("encode");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_sqs_batch_failure_retries_only_the_failed_records_and_loses_none() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let sdk = sdk_config_for(&proxy.url()).await;
    let queues = QueueUrls(HashMap::from([
        (
            Family::Conversations,
            t.stack.queue_url(Family::Conversations).to_owned(),
        ),
        (
            Family::Messages,
            t.stack.queue_url(Family::Messages).to_owned(),
        ),
        (Family::Other, t.stack.queue_url(Family::Other).to_owned()),
    ]));
    let publisher = SqsPublisher::new(aws_sdk_sqs::Client::new(&sdk), queues);
    let records = message_records(6);

    proxy.arm("SendMessageBatch", Fault::FailBatchEntries, 1);
    let first = fanout(&publisher, &records).await;
    assert_eq!(first.published, 3);
    assert_eq!(first.failed, ["seq-1", "seq-3", "seq-5"]);

    // Lambda retries from the reported records only (the local poller the same way).
    proxy.heal();
    let retry: Vec<StreamRecord> = records
        .iter()
        .filter(|r| first.failed.contains(&r.id))
        .cloned()
        .collect();
    let second = fanout(&publisher, &retry).await;
    assert_eq!((second.published, second.failed.len()), (3, 0));

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
async fn a_poison_record_goes_to_the_failure_queue_after_bounded_retries_without_blocking_the_stream(
) {
    let t = TestStack::start().await;
    // An accepted item whose stored body cannot become a CloudEvent.
    let records = message_records(1);
    let mut poison = records[0].item.clone().ok().flatten().expect("an item");
    poison.raw = Some("this stored body is not JSON".into());
    poison.raw_lz4 = None;
    poison.raw_gz = None;
    aws_sdk_dynamodb::Client::new(&t.stack.sdk)
        .put_item()
        .table_name(&t.stack.table_name)
        .set_item(Some(serde_dynamo::to_item(&poison).expect("encode")))
        .send()
        .await
        .expect("put the poison item");
    // An ordinary event behind it on the same stream.
    let (status, reply) = t
        .post_zipmessage(&fixture("zipmessage", "conversation_created.json"))
        .await;
    assert_eq!(status, 200, "{reply}");

    // The good event is delivered (the shard is not blocked)...
    let delivered = t
        .drain(Family::Conversations, 1, Duration::from_millis(500))
        .await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].body["id"], reply["event_ids"][0]);
    // ...and the poison record, after its bounded retries, lands in the
    // on-failure queue instead of being dropped or retried forever.
    let failures = &t.stack.provisioned.queues["FanoutFailuresQueue"];
    let sqs = aws_sdk_sqs::Client::new(&t.stack.sdk);
    let deadline = Instant::now() + Duration::from_secs(20);
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
        assert!(Instant::now() < deadline, "no failure record within 20 s");
    };
    let record: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(record["sequenceNumbers"].as_array().map(Vec::len), Some(1));
    // The poison item was never published anywhere.
    assert!(t
        .drain(Family::Messages, 0, Duration::from_millis(500))
        .await
        .is_empty());
}
