//! Everything the webhooks accept reaches a queue, under AWS's real limits:
//! the local stack reaches moto through the proxy that refuses what SQS and
//! DynamoDB refuse (`switchboard_local::aws_limits`), so a message AWS would
//! refuse fails here too. Each case posts what a sender may post and reads
//! what a consumer reads.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use switchboard_aws::DynamoStore;
use switchboard_local::aws_limits::sqs_allows;
use switchboard_pipeline::item::MAX_BODY_LIMIT;
use switchboard_pipeline::{Ingest, Limits};
use switchboard_providers::Zipmessage;
use switchboard_tests::faults::{sdk_config_for, Fault, FaultProxy};
use switchboard_tests::{fixture, keys, moto_endpoint, QueueMessage, TestStack, PARTOO_SEED_ORG};
use switchboard_types::{Family, Provider};

const SETTLE: Duration = Duration::from_millis(1500);

fn seed(provider: &str, name: &str) -> Value {
    serde_json::from_slice(&fixture(provider, name)).expect("seed is JSON")
}

/// `value` with the string at `path` set to `text`.
fn with(mut value: Value, path: &[&str], text: Value) -> Value {
    let mut at = &mut value;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = text;
    value
}

/// Pads `make(pad)` so its JSON is `size` bytes (within a few).
fn padded(size: usize, make: impl Fn(&str) -> Value) -> Vec<u8> {
    let base = make("").to_string().len();
    let body = make(&"x".repeat(size.saturating_sub(base))).to_string();
    assert!(body.len() <= size, "{} > {size}", body.len());
    body.into_bytes()
}

/// The posted bodies as JSON values, to compare with `data.raw`.
fn values(bodies: &[Vec<u8>]) -> Vec<Value> {
    let mut out: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_slice(b).expect("JSON"))
        .collect();
    out.sort_by_key(Value::to_string);
    out
}

fn raws(messages: &[QueueMessage]) -> Vec<Value> {
    let mut out: Vec<Value> = messages
        .iter()
        .map(|m| m.body["data"]["raw"].clone())
        .collect();
    out.sort_by_key(Value::to_string);
    out
}

/// Builds the n-th body of a case.
type BodyMaker = Box<dyn Fn(usize) -> Vec<u8>>;

/// Two near-limit bodies of each provider whose normalised copies double or
/// triple them (ZipMessage's text and HTML, Partoo's message text, Bird's
/// conversation name), posted back to back so the fanout gets them together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bodies_near_the_limit_posted_together_are_both_delivered() {
    // The largest body limit the template allows (MaxBodyBytes' MaxValue).
    let t =
        TestStack::start_with([("MAX_BODY_BYTES".to_owned(), MAX_BODY_LIMIT.to_string())].into())
            .await;
    let limit = MAX_BODY_LIMIT - 64;
    let cases: [(Provider, Family, BodyMaker); 3] = [
        (
            Provider::Zipmessage,
            Family::Messages,
            Box::new(move |n| {
                padded(limit, |pad| {
                    let body = with(
                        seed("zipmessage", "message_created.json"),
                        &["id"],
                        json!(format!("big-{n}")),
                    );
                    with(
                        body,
                        &["payload", "message", "text"],
                        json!(format!("<div>{n}{pad}</div>")),
                    )
                })
            }),
        ),
        (
            Provider::Partoo,
            Family::Messages,
            Box::new(move |n| {
                padded(limit, |pad| {
                    let body = with(
                        seed("partoo", "message_created.json"),
                        &["payload", "message", "id"],
                        json!(900 + n),
                    );
                    with(
                        body,
                        &["payload", "message", "content"],
                        json!(format!("{n}{pad}")),
                    )
                })
            }),
        ),
        (
            Provider::Bird,
            Family::Conversations,
            Box::new(move |n| {
                padded(limit, |pad| {
                    // Two updates of one conversation: Bird's dedup key is
                    // (event, payload.id, payload.updatedAt).
                    let body = with(
                        seed("bird", "conversation.updated.json"),
                        &["payload", "updatedAt"],
                        json!(format!("2026-11-30T10:00:0{n}.000Z")),
                    );
                    with(body, &["payload", "name"], json!(format!("{n}{pad}")))
                })
            }),
        ),
    ];
    for (provider, family, make) in cases {
        let bodies = [make(1), make(2)];
        for body in &bodies {
            let (status, reply) = t.post_as(provider, body, &[]).await;
            assert_eq!(
                (status, reply["status"].as_str()),
                (200, Some("accepted")),
                "{provider}: {reply}"
            );
        }
        let got = t.consume(family, 2, SETTLE).await;
        assert_eq!(
            got.len(),
            2,
            "{provider}: both near-limit events reach the queue"
        );
        assert_eq!(
            raws(&got),
            values(&bodies),
            "{provider}: data.raw is the body as posted"
        );
        for message in &got {
            let data = &message.body["data"];
            if provider == Provider::Zipmessage {
                // Body, text and HTML: three times the body, over SQS's
                // 1 MiB, so the normalised copies are left out, and said so.
                assert_eq!(data["omitted"], json!(["conversation", "message", "actor"]));
                assert!(data.get("message").is_none());
            } else {
                assert!(
                    data.get("omitted").is_none(),
                    "{provider}: {}",
                    data["omitted"]
                );
                assert!(data.get("conversation").is_some(), "{provider}");
            }
        }
    }
}

/// What SQS refuses and a sender may still send: `&#xFFFF;` in ZipMessage
/// HTML (plain ASCII on the wire, U+FFFF once decoded), a raw U+FFFE in a
/// Partoo message, a control character in a pass-through type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn characters_sqs_refuses_are_accepted_and_delivered() {
    let t = TestStack::start().await;
    let zip = with(
        seed("zipmessage", "message_created.json"),
        &["payload", "message", "text"],
        json!("<div>odd &#xFFFF; and &#1; here</div>"),
    )
    .to_string()
    .into_bytes();
    let partoo = with(
        seed("partoo", "message_created.json"),
        &["payload", "message", "content"],
        json!("raw \u{fffe} and \u{ffff}"),
    )
    .to_string()
    .into_bytes();
    let control_type = json!({"type": "custom\u{1}\u{ffff}event", "payload": {"org_id": 123}})
        .to_string()
        .into_bytes();
    for (provider, body) in [
        (Provider::Zipmessage, &zip),
        (Provider::Partoo, &partoo),
        (Provider::Partoo, &control_type),
    ] {
        let (status, reply) = t.post_as(provider, body, &[]).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("accepted")),
            "{reply}"
        );
    }
    let messages = t.consume(Family::Messages, 2, SETTLE).await;
    assert_eq!(raws(&messages), values(&[zip.clone(), partoo.clone()]));
    let text = messages
        .iter()
        .find(|m| m.body["provider"] == "zipmessage")
        .map(|m| m.body["data"]["message"]["text"].clone());
    assert_eq!(
        text,
        Some(json!("odd \u{ffff} and \u{1} here")),
        "the text keeps what the HTML says"
    );
    let other = t.consume(Family::Other, 1, SETTLE).await;
    assert_eq!(raws(&other), values(&[control_type]));
    let message = &other[0];
    assert_eq!(
        message.body["type"], "partoo.custom\u{1}\u{ffff}event",
        "the CloudEvent keeps the type"
    );
    let attribute = &message.attributes["type"];
    assert!(attribute.chars().all(sqs_allows), "{attribute:?}");
    assert_eq!(attribute, "partoo.custom\u{fffd}\u{fffd}event");
}

/// Key attributes built from the body, far past DynamoDB's key limits: a
/// 3,000-byte conversation key and a 3,000-byte event type. Stored and
/// delivered, or quarantined with a reason — never a 503 that the sender
/// retries until it gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_types_past_dynamodb_limits_are_stored_never_503() {
    let t = TestStack::start().await;
    let long_key = "k".repeat(3000);
    let keyed = with(
        seed("partoo", "message_created.json"),
        &["payload", "message", "conversation_id"],
        json!(long_key),
    );
    let keyed = with(keyed, &["payload", "conversation", "id"], json!(long_key))
        .to_string()
        .into_bytes();
    let (status, reply) = t.post_partoo(&keyed).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    let got = t.consume(Family::Messages, 1, SETTLE).await;
    assert_eq!(raws(&got), values(&[keyed]));
    let subject = got[0].body["subject"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        subject.len() <= 1024 && subject.starts_with(&format!("{PARTOO_SEED_ORG}/sha256:")),
        "{subject}"
    );
    assert_eq!(
        got[0].body["data"]["conversation"]["id"],
        json!(long_key),
        "the full id is kept"
    );

    let long_type = json!({"type": "t".repeat(3000), "payload": {"org_id": 123}})
        .to_string()
        .into_bytes();
    let (status, reply) = t.post_partoo(&long_type).await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        ["accepted", "quarantined"].contains(&reply["status"].as_str().unwrap_or_default()),
        "{reply}"
    );
    let items = t.items().await;
    assert_eq!(items.len(), 2, "both are stored");
}

/// A write DynamoDB refuses for good (`ValidationException`) is not a
/// throttle: the event is kept as quarantined with the reason, and the
/// sender gets 200, not a 503 it would retry until it gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_storage_refusal_quarantines_instead_of_503() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let sdk = sdk_config_for(&proxy.url()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &t.stack.table_name);
    let verifier = Zipmessage::new(&[keys::zipmessage_token()]).expect("token");
    let ingest = Ingest::new(Arc::new(verifier), Arc::new(store), Limits::default());
    proxy.arm(
        "PutItem",
        Fault::Respond {
            status: 400,
            error_type: "com.amazon.coral.validate#ValidationException",
        },
        1,
    );
    let body = fixture("zipmessage", "message_created.json");
    let request = switchboard_pipeline::WebhookRequest {
        method: http::Method::POST,
        headers: http::HeaderMap::new(),
        body: body.clone().into(),
        path_token: Some(keys::zipmessage_token().to_owned()),
        public_url: None,
        query: None,
    };
    let handled = ingest.handle(&request, chrono::Utc::now()).await;
    let reply = handled.reply.json_body();
    assert_eq!(handled.reply.status.as_u16(), 200, "{reply}");
    assert_eq!(reply["status"], "quarantined", "{reply}");
    assert_eq!(reply["reason"], "storage_refused", "{reply}");
    // DynamoDB's own message is an internal error: the stored reason and
    // the log have it, the sender's answer does not.
    let detail = reply["detail"].as_str().unwrap_or_default();
    assert!(!detail.is_empty(), "{reply}");
    assert!(!detail.contains("ValidationException"), "{reply}");
    let items = t.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        switchboard_pipeline::codec::raw_body(&items[0]).expect("raw"),
        body,
        "the body is kept whole"
    );
}

/// DynamoDB's conditional write is atomic: of many concurrent
/// `PutItem`s of one item with `attribute_not_exists(pk)`, exactly one
/// succeeds. moto checks the condition and writes in two steps, so the
/// local stack's AWS proxy holds one write of an item at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_writes_of_one_item_store_it_once() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let t = switchboard_tests::TestStack::start().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&switchboard_tests::patient(&t.stack.sdk));
    for round in 0..20 {
        let writes = (0..64).map(|copy| {
            dynamodb
                .put_item()
                .table_name(&t.stack.table_name)
                .item(
                    "pk",
                    AttributeValue::S(format!("zipmessage#default#race-{round}")),
                )
                .item("sk", AttributeValue::S("#race".into()))
                .item("copy", AttributeValue::N(copy.to_string()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
        });
        let results = futures::future::join_all(writes).await;
        let stored = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            stored, 1,
            "round {round}: {stored} of 64 conditional writes succeeded"
        );
    }
}
