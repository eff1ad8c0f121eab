//! What Bird and Partoo really send (`../shared/PROVIDERS.md`), end to end on
//! the local stack against moto: Bird's retries keep their original
//! timestamp and signature; `messagebird-request-id` is not signed; one
//! Partoo key signs every organisation; Partoo tryouts carry real data and
//! real ids; Partoo drops any 4xx. Each test posts what the sender posts and
//! reads what a consumer reads.

use chrono::{Duration as Span, Utc};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_pipeline::WebhookRequest;
use switchboard_providers::{bird, sha256_hex};
use switchboard_tests::faults::{sdk_config_for, Fault, FaultProxy};
use switchboard_tests::{binary, fixture, keys, moto_endpoint, root, TestStack};
use switchboard_types::{Family, Provider, Status};

const SETTLE: Duration = Duration::from_millis(1500);

/// A Bird delivery as Bird builds it: signed at `sent_at` for `url`.
fn bird_request(body: &[u8], url: &str, sent_at: i64, request_id: &str) -> WebhookRequest {
    let timestamp = sent_at.to_string();
    let signature = bird::sign(keys::bird_key().as_bytes(), &timestamp, url, body);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json".to_owned()),
        ("messagebird-request-timestamp", timestamp),
        ("messagebird-signature", signature),
        ("messagebird-request-id", request_id.to_owned()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    }
    WebhookRequest {
        method: Method::POST,
        headers,
        body: body.to_vec().into(),
        path_token: None,
        public_url: Some(url.to_owned()),
        query: None,
    }
}

fn status_word(reply: &Value) -> &str {
    reply["status"]
        .as_str()
        .or(reply["error"].as_str())
        .unwrap_or_default()
}

/// Asserts a 200 `quarantined` answer whose reason has `code`.
fn assert_quarantined(status: u16, reply: &Value, code: &str) {
    assert_eq!(
        (status, status_word(reply)),
        (200, "quarantined"),
        "{reply}"
    );
    assert_eq!(reply["reason"], code, "{reply}");
}

fn first_id(reply: &Value) -> String {
    reply["event_ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bird_retry_with_its_original_timestamp_after_a_503_is_stored_and_published_once() {
    let t = TestStack::start().await;
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    // The Bird webhook as configured by default (no tolerance variable set),
    // its DynamoDB calls going through the fault proxy.
    let url = t.bird_url();
    let env = HashMap::from([
        ("TABLE_NAME".to_owned(), t.stack.table_name.clone()),
        ("BIRD_SIGNING_KEYS".to_owned(), keys::bird_key().to_owned()),
        ("BIRD_WEBHOOK_URL".to_owned(), url.clone()),
    ]);
    let lookup = |name: &str| env.get(name).cloned();
    let sdk = sdk_config_for(&proxy.url()).await;
    let (ingest, _) = switchboard_aws::lambda::webhook_ingest(Provider::Bird, &lookup, &sdk)
        .await
        .expect("the Bird webhook starts with its defaults");

    // Bird's first delivery, four hours ago, met a storage outage: 503.
    let body = fixture("bird", "conversation.updated.json");
    let first_sent = Utc::now() - Span::hours(4);
    let request = bird_request(&body, &url, first_sent.timestamp(), "req-1");
    proxy.arm("PutItem", Fault::INTERNAL_SERVER_ERROR, usize::MAX);
    let failed = ingest.handle(&request, first_sent).await;
    assert_eq!(failed.reply.status, 503, "{}", failed.reply.body);

    // Bird retries now with the same timestamp and signature.
    proxy.heal();
    let retried = ingest.handle(&request, Utc::now()).await;
    let reply = retried.reply.json_body();
    assert_eq!(
        (retried.reply.status.as_u16(), status_word(&reply)),
        (200, "accepted"),
        "a validly signed retry 4 h late is stored: {reply}"
    );
    let id = first_id(&reply);
    let again = ingest.handle(&request, Utc::now()).await;
    assert_eq!(
        (
            again.reply.status.as_u16(),
            status_word(&again.reply.json_body())
        ),
        (200, "duplicate")
    );
    let stored: Vec<_> = t
        .items()
        .await
        .into_iter()
        .filter(|i| i.event_id == id)
        .collect();
    assert_eq!(stored.len(), 1, "stored once");
    let published = t.drain(Family::Conversations, 1, SETTLE).await;
    assert_eq!(published.len(), 1, "published once");
    assert_eq!(published[0].body["id"], id.as_str());

    // A delivery signed 48 hours ago is past the window: 401, nothing stored.
    let mut other: Value = serde_json::from_slice(&body).expect("json");
    other["payload"]["updatedAt"] = "2024-11-28T10:00:00.000Z".into();
    let other = serde_json::to_vec(&other).expect("json");
    let stale = bird_request(
        &other,
        &url,
        (Utc::now() - Span::hours(48)).timestamp(),
        "req-2",
    );
    let refused = ingest.handle(&stale, Utc::now()).await;
    assert_eq!(refused.reply.status, 401);
    assert_eq!(
        refused.reply.json_body()["error"],
        "timestamp_out_of_window"
    );
    assert_eq!(t.items().await.len(), 1, "nothing more stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bird_request_replayed_with_another_request_id_is_the_same_event() {
    let t = TestStack::start().await;
    let body = fixture("bird", "conversation.updated.json");
    let (status, first) = t
        .post_bird(&body, &[("messagebird-request-id", "req-a".into())])
        .await;
    assert_eq!((status, status_word(&first)), (200, "accepted"), "{first}");
    // The captured request re-sent with ids the signature does not cover.
    for other in ["req-b", "req-c", ""] {
        let (status, reply) = t
            .post_bird(&body, &[("messagebird-request-id", other.into())])
            .await;
        assert_eq!(
            (status, status_word(&reply)),
            (200, "duplicate"),
            "{other:?}: {reply}"
        );
        assert_eq!(first_id(&reply), first_id(&first), "the same event id");
    }
    assert_eq!(t.items().await.len(), 1);
    let published = t.drain(Family::Conversations, 1, SETTLE).await;
    assert_eq!(published.len(), 1);
    // The request id is kept as metadata of the delivery that was stored.
    assert_eq!(published[0].body["deliveryid"], "req-a");
}

/// The Partoo seed as sent for organisation `org_id`.
fn partoo_seed_for(org_id: u64) -> Vec<u8> {
    let mut seed: Value =
        serde_json::from_slice(&fixture("partoo", "message_created.json")).expect("json");
    seed["payload"]["org_id"] = org_id.into();
    serde_json::to_vec(&seed).expect("json")
}

/// Runs `switchboard-local reprocess` (the operator's local command) with
/// `PARTOO_ORG_IDS` set; returns its JSON report.
fn reprocess_locally(t: &TestStack, request: &Value, partoo_org_ids: &str) -> Value {
    let output = std::process::Command::new(binary("switchboard-local"))
        .current_dir(root())
        .args(["reprocess", &request.to_string()])
        .env("SWITCHBOARD_STATE", t.state_file())
        .env("PARTOO_ORG_IDS", partoo_org_ids)
        .output()
        .expect("switchboard-local runs");
    assert!(
        output.status.success(),
        "reprocess failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partoo_event_of_an_unlisted_org_is_kept_unpublished_until_the_list_is_fixed() {
    // The test stack lists only the seed's organisation in PARTOO_ORG_IDS.
    let t = TestStack::start().await;
    // Genuinely signed by Partoo, for somebody else's organisation.
    let stranger = partoo_seed_for(999_999);
    let (status, reply) = t.post_partoo(&stranger).await;
    assert_quarantined(status, &reply, "org_not_allowed");
    let items = t.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status, Status::Quarantined);
    assert!(
        t.drain(Family::Messages, 0, SETTLE).await.is_empty(),
        "never published"
    );

    // A misconfiguration loses nothing: the operator lists the organisation
    // and reprocesses, and the event is published once.
    // Quarantined, it has no conversation: provider and id name it.
    let request = serde_json::json!({ "events": [{"provider": "partoo", "id": first_id(&reply)}] });
    let report = reprocess_locally(&t, &request, "123,999999");
    assert_eq!(
        report["accepted"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    let published = t.consume(Family::Messages, 1, SETTLE).await;
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0].body["data"]["raw"]["payload"]["org_id"],
        999_999
    );
    let again = reprocess_locally(&t, &request, "123,999999");
    assert_eq!(again["examined"], 0, "idempotent: {again}");
    assert!(t.consume(Family::Messages, 0, SETTLE).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partoo_tryout_does_not_shadow_the_genuine_event_with_the_same_message_id() {
    let t = TestStack::start().await;
    let seed = fixture("partoo", "message_created.json");
    let tryout = [("x-partoo-webhook-tryout", "true".to_owned())];
    let (status, test_reply) = t.post_partoo_with(&seed, &tryout).await;
    assert_eq!(
        (status, status_word(&test_reply)),
        (200, "accepted"),
        "{test_reply}"
    );
    let (status, again) = t.post_partoo_with(&seed, &tryout).await;
    assert_eq!((status, status_word(&again)), (200, "duplicate"), "{again}");
    // The genuine message 123 arrives after the tryout of message 123.
    let (status, genuine) = t.post_partoo(&seed).await;
    assert_eq!(
        (status, status_word(&genuine)),
        (200, "accepted"),
        "{genuine}"
    );
    assert_ne!(first_id(&genuine), first_id(&test_reply));

    let published = t.consume(Family::Messages, 2, SETTLE).await;
    assert_eq!(published.len(), 2);
    let by_id: HashMap<String, &Value> = published
        .iter()
        .map(|m| {
            (
                m.body["id"].as_str().unwrap_or_default().to_owned(),
                &m.body,
            )
        })
        .collect();
    assert_eq!(by_id[&first_id(&test_reply)]["test"], true);
    assert!(
        by_id[&first_id(&genuine)].get("test").is_none(),
        "the genuine event is not marked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentic_partoo_bodies_of_any_content_type_or_size_get_200_and_are_kept() {
    let t = TestStack::start_with(HashMap::from([(
        "MAX_BODY_BYTES".to_owned(),
        "4096".to_owned(),
    )]))
    .await;
    // Authentic, with a content type Partoo does not document.
    let seed = fixture("partoo", "message_created.json");
    let plain = [("content-type", "text/plain".to_owned())];
    let (status, reply) = t.post_partoo_with(&seed, &plain).await;
    assert_eq!((status, status_word(&reply)), (200, "accepted"), "{reply}");

    // Authentic, over the body limit.
    let mut big: Value = serde_json::from_slice(&partoo_seed_for(123)).expect("json");
    big["payload"]["message"]["id"] = 124.into();
    big["payload"]["message"]["content"] = "x".repeat(10_000).into();
    let big = serde_json::to_vec(&big).expect("json");
    let (status, reply) = t.post_partoo(&big).await;
    assert_quarantined(status, &reply, "too_large");
    let kept = t
        .items()
        .await
        .into_iter()
        .find(|i| i.event_id == first_id(&reply))
        .expect("the too-large event is kept");
    assert_eq!(kept.status, Status::Quarantined);
    assert_eq!(
        kept.raw_sha256,
        Some(sha256_hex(&big)),
        "the whole body's digest"
    );

    // Unauthenticated, whatever else is wrong with them: 401.
    for (headers, body) in [
        (
            vec![("content-type", "text/plain".to_owned())],
            seed.clone(),
        ),
        (vec![], big.clone()),
        (
            vec![("x-partoo-signature-v1", "AAAA".to_owned())],
            vec![b' '; 5000],
        ),
    ] {
        let (status, reply) = t.post("/webhooks/partoo", &body, &headers).await;
        assert_eq!(status, 401, "{reply}");
    }
    assert_eq!(t.items().await.len(), 2, "nothing unauthentic is stored");
    let published = t.drain(Family::Messages, 1, SETTLE).await;
    assert_eq!(published.len(), 1, "only the one that decoded is published");
}
