//! End to end through the local gateway against moto: HTTP in, one item in
//! DynamoDB, one CloudEvent on the right FIFO queue with the right group id.
//! Needs the moto server `make test` starts (AWS_ENDPOINT_URL).

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_tests::{fixture, keys, partoo_signature, TestStack};
use switchboard_types::{index, Family, Provider, Status};

const SETTLE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_seed_is_stored_once_and_delivered_once_to_its_queue() {
    let t = TestStack::start().await;
    let seeds = [
        (
            "zipmessage",
            "conversation_created.json",
            Family::Conversations,
            "conversation.created",
            "zipmessage:april-1st-2022-conversation1",
        ),
        (
            "zipmessage",
            "message_created.json",
            Family::Messages,
            "message.created",
            "zipmessage:april-1st-2022-conversation1",
        ),
        (
            "zipmessage",
            "message_played.json",
            Family::Messages,
            "message.played",
            "zipmessage:conversation-with-emma-casel",
        ),
        (
            "partoo",
            "message_created.json",
            Family::Messages,
            "message.created",
            "partoo:123/123", // tenant: the org_id
        ),
        (
            "bird",
            "conversation.updated.json",
            Family::Conversations,
            "conversation.updated",
            "bird:badbf15c-bad3-4bf3-9223-6b7f414f9770",
        ),
    ];
    let mut expected: HashMap<String, (Family, &str, &str)> = HashMap::new();
    for (provider, file, family, event_type, group) in seeds {
        let body = fixture(provider, file);
        let sender = Provider::from_name(provider).expect("a registered provider");
        let (status, reply) = t.post_as(sender, &body, &[]).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("accepted")),
            "{provider}/{file}: {reply}"
        );
        expected.insert(
            reply["event_ids"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            (family, event_type, group),
        );
    }

    let items = t.items().await;
    assert_eq!(items.len(), 5, "exactly one item per seed");
    for item in &items {
        let (_, event_type, _) = expected
            .get(&item.event_id)
            .expect("the item belongs to a seed");
        assert_eq!(&item.event_type, event_type);
        assert_eq!(item.status, Status::Accepted);
        assert!(
            !item.received_at.is_empty()
                && !item.occurred_at.is_empty()
                && !item.conversation_key.is_empty()
        );
    }

    let mut delivered = 0;
    for family in Family::ALL {
        let want = expected.values().filter(|(f, _, _)| *f == family).count();
        let messages = t.drain(family, want, SETTLE).await;
        assert_eq!(messages.len(), want, "{family:?} gets exactly its events");
        for m in messages {
            let id = m.body["id"].as_str().unwrap_or_default();
            let (_, event_type, group) = expected.get(id).expect("the message is a seed's event");
            assert_eq!(m.body["specversion"], "1.0");
            assert_eq!(m.body["type"], *event_type);
            assert_eq!(m.group_id, *group);
            assert_eq!(m.dedup_id, id);
            assert_eq!(
                m.attributes.get("type").map(String::as_str),
                Some(*event_type)
            );
            assert_eq!(
                m.attributes.get("provider").map(String::as_str),
                m.body["provider"].as_str()
            );
            delivered += 1;
        }
    }
    assert_eq!(delivered, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_a_duplicate_and_publishes_nothing_more() {
    let t = TestStack::start().await;
    let body = fixture("bird", "conversation.updated.json");
    let (first, a) = t.post_bird(&body, &[]).await;
    // Bird retries with a fresh timestamp and signature: still the same event.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (second, b) = t.post_bird(&body, &[]).await;
    assert_eq!((first, second), (200, 200));
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("accepted"), Some("duplicate"))
    );
    assert_eq!(a["event_ids"], b["event_ids"]);
    // Concurrent copies: exactly one is stored.
    let partoo = fixture("partoo", "message_created.json");
    let replies = futures::future::join_all((0..8).map(|_| t.post_partoo(&partoo))).await;
    assert_eq!(
        replies
            .iter()
            .filter(|(s, r)| *s == 200 && r["status"] == "accepted")
            .count(),
        1,
        "{replies:?}"
    );
    assert!(replies.iter().all(|(s, _)| *s == 200), "{replies:?}");
    assert_eq!(
        replies
            .iter()
            .filter(|(_, r)| r["status"] == "duplicate")
            .count(),
        7
    );
    assert_eq!(t.items().await.len(), 2);
    assert_eq!(t.drain(Family::Conversations, 1, SETTLE).await.len(), 1);
    assert_eq!(t.drain(Family::Messages, 1, SETTLE).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_body_is_stored_with_its_reason_and_not_published() {
    let t = TestStack::start().await;
    let body = b"{\"type\": \"message_created\", \"payload\": ";
    let (status, reply) = t.post_partoo(body).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("quarantined")),
        "{reply}"
    );
    let items = t.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status, Status::Quarantined);
    assert!(items[0]
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with("malformed_json")));
    assert_eq!(items[0].raw.as_deref().map(str::as_bytes), Some(&body[..]));
    for family in Family::ALL {
        assert!(
            t.drain(family, 0, SETTLE).await.is_empty(),
            "{family:?} must stay empty"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthentic_requests_store_nothing() {
    let t = TestStack::start().await;
    let body = fixture("partoo", "message_created.json");
    let stranger = partoo_signature(&keys::partoo_stranger(), &body);
    let (s1, e1) = t
        .post(
            "/webhooks/partoo",
            &body,
            &[("x-partoo-signature-v1", stranger)],
        )
        .await;
    let (s2, _) = t
        .post(
            "/webhooks/zipmessage/not-the-token-0123456789",
            &fixture("zipmessage", "message_created.json"),
            &[],
        )
        .await;
    let (s3, _) = t
        .post(
            "/webhooks/bird",
            &fixture("bird", "conversation.updated.json"),
            &[],
        )
        .await;
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert_eq!(e1["error"], "invalid_signature");
    assert!(t.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_types_go_to_the_other_queue_and_conversations_read_in_order() {
    let t = TestStack::start().await;
    // A business event names its organisation in the business.
    let business = json!({"type": "business_updated", "payload": {"business": {"id": "5409c35a97bbc544d8e26737", "org_id": 123, "name": "Corner shop"}}}).to_string();
    let (status, reply) = t.post_partoo(business.as_bytes()).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    // Two events of one ZipMessage conversation, posted newest first.
    for body in [
        fixture("zipmessage", "message_created.json"),
        fixture("zipmessage", "conversation_created.json"),
    ] {
        assert_eq!(t.post_zipmessage(&body).await.0, 200);
    }
    let other = t.drain(Family::Other, 1, SETTLE).await;
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].body["type"], "partoo.business_updated");
    assert_eq!(
        other[0].body["data"]["raw"]["payload"]["business"]["name"],
        "Corner shop"
    );

    // One Query of the table reads the conversation in occurrence order:
    // its partition.
    let dynamodb = aws_sdk_dynamodb::Client::new(&t.stack.sdk);
    let page = dynamodb
        .query()
        .table_name(&t.stack.table_name)
        .key_condition_expression("pk = :c")
        .expression_attribute_values(
            ":c",
            AttributeValue::S("zipmessage#default#april-1st-2022-conversation1".into()),
        )
        .send()
        .await
        .expect("query");
    let types: Vec<&str> = page
        .items()
        .iter()
        .filter_map(|i| {
            i.get("type")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
        })
        .collect();
    assert_eq!(types, ["conversation.created", "message.created"]);

    // No accepted event writes to the by-day index: it is sparse, for
    // quarantined events only.
    let entries = dynamodb
        .scan()
        .table_name(&t.stack.table_name)
        .index_name(index::BY_DAY)
        .send()
        .await
        .expect("scan of the index");
    assert_eq!(entries.count(), 0, "{:?}", entries.items());
}

/// Every seed, delivered as its provider delivers it, is one item within
/// one write unit by DynamoDB's size rules (counted here from the stored
/// attributes, not by the pipeline's own sizing), and no index entry: an
/// accepted event is the only write. A quarantined one writes the sparse
/// by-day index, where reprocess finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_event_is_one_write_unit_and_a_quarantined_one_is_indexed() {
    let t = TestStack::start().await;
    for (provider, dir, file) in switchboard_tests::seeds() {
        let (status, reply) = t.post_as(provider, &fixture(dir, file), &[]).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("accepted")),
            "{dir}/{file}: {reply}"
        );
    }
    let (status, reply) = t.post_zipmessage(b"not json").await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("quarantined")),
        "{reply}"
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&t.stack.sdk);
    let items = dynamodb
        .scan()
        .table_name(&t.stack.table_name)
        .send()
        .await
        .expect("scan")
        .items()
        .to_vec();
    assert_eq!(items.len(), switchboard_tests::seed_events() + 1);
    let status_of = |i: &HashMap<String, AttributeValue>| {
        i.get("status")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    for item in items.iter().filter(|i| status_of(i) == "accepted") {
        let bytes = switchboard_tests::cost::item_size(item);
        assert!(bytes <= 1024, "{bytes} bytes: {:?}", item.get("sk"));
        assert!(
            item.contains_key("expires_at"),
            "the default retention applies"
        );
        assert!(
            !item.contains_key("day"),
            "no by-day entry: {:?}",
            item.get("sk")
        );
    }
    let entries = dynamodb
        .scan()
        .table_name(&t.stack.table_name)
        .index_name(index::BY_DAY)
        .send()
        .await
        .expect("scan of the index");
    assert_eq!(entries.count(), 1, "{:?}", entries.items());
    let quarantined = items
        .iter()
        .find(|i| status_of(i) == "quarantined")
        .expect("one");
    assert_eq!(entries.items()[0].get("sk"), quarantined.get("sk"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_speaks_the_http_contract() {
    let t = TestStack::start_with(HashMap::from([(
        "MAX_BODY_BYTES".to_owned(),
        "2048".to_owned(),
    )]))
    .await;
    let client = &t.http;
    let get = client
        .get(t.stack.url("/webhooks/partoo"))
        .send()
        .await
        .expect("answers");
    assert_eq!(get.status(), 405);
    assert_eq!(
        get.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let missing = client
        .post(t.stack.url("/webhooks/slack"))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 404);
    // Unauthenticated, whatever else is wrong with it: 401.
    let form = client
        .post(t.stack.url("/webhooks/partoo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .expect("answers");
    assert_eq!(form.status(), 401);
    assert!(t.items().await.is_empty());
    // Authentic and over MAX_BODY_BYTES: 200, kept in part.
    let big = vec![b' '; 2049];
    let (status, reply) = t.post_partoo(&big).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("quarantined"))
    );
    assert_eq!(t.items().await.len(), 1);
    // Past what a Lambda invocation carries, API Gateway answers 413 before
    // any function runs; the local gateway does the same.
    let huge = vec![b' '; switchboard_local::gateway::LAMBDA_PAYLOAD_LIMIT + 1];
    let (status, error) = t.post_partoo(&huge).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(t.items().await.len(), 1);
}
