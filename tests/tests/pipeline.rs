//! The whole pipeline with in-memory ports: HTTP outcomes, storage once,
//! quarantine, and the fanout's partial failures.

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, Method};
use std::sync::Arc;
use switchboard_pipeline::{
    fanout, Handled, Ingest, Limits, MemoryPublisher, MemoryStore, OutcomeKind, Reply, Run,
    StreamRecord, WebhookRequest,
};
use switchboard_providers::{sha256_hex, Admission, Partoo, Zipmessage};
use switchboard_tests::{fixture, keys, partoo_signature, PARTOO_SEED_ORG};
use switchboard_types::{Family, Provider, Status};

/// The seed's organisation listed, as a deployment lists its own.
fn seed_org() -> Admission {
    Admission::default().listing(Provider::Partoo, &[PARTOO_SEED_ORG])
}

fn partoo_ingest(store: Arc<MemoryStore>) -> Ingest {
    partoo_ingest_with(store, Limits::default())
}

/// A 4096-byte body limit.
const LIMIT_4096: Limits = Limits {
    max_body_bytes: 4096,
    retention_days: 0,
};

/// The Partoo pipeline with these limits and the seed's organisation listed.
fn partoo_ingest_with(store: Arc<MemoryStore>, limits: Limits) -> Ingest {
    Ingest::new(
        Arc::new(Partoo::new(&keys::partoo_public_keys()).expect("keys")),
        store,
        limits,
    )
    .with_admission(seed_org())
}

fn signed(body: &[u8]) -> WebhookRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    headers.insert(
        "x-partoo-signature-v1",
        partoo_signature(&keys::partoo(), body)
            .parse()
            .expect("value"),
    );
    WebhookRequest {
        method: Method::POST,
        headers,
        body: Bytes::copy_from_slice(body),
        path_token: None,
        public_url: None,
        query: None,
    }
}

async fn send(ingest: &Ingest, request: &WebhookRequest) -> Reply {
    ingest.handle(request, Utc::now()).await.reply
}

#[tokio::test]
async fn accepted_then_duplicate_with_the_same_event_id() {
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest(store.clone());
    let body = fixture("partoo", "message_created.json");
    let first = send(&ingest, &signed(&body)).await;
    assert_eq!(first.status, 200, "Partoo documents 200 as success");
    assert_eq!(first.json_body()["status"], "accepted");
    let second = send(&ingest, &signed(&body)).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json_body()["status"], "duplicate");
    assert_eq!(
        first.json_body()["event_ids"],
        second.json_body()["event_ids"]
    );
    assert_eq!(store.items().len(), 1);
}

#[tokio::test]
async fn outcomes_name_the_event_for_logs_and_metrics() {
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest(store.clone());
    let body = fixture("partoo", "message_created.json");
    let first = ingest
        .handle(&signed(&body), Utc::now())
        .await
        .outcome()
        .clone();
    let again = ingest
        .handle(&signed(&body), Utc::now())
        .await
        .outcome()
        .clone();
    assert_eq!(first.kind, OutcomeKind::Accepted);
    assert_eq!(again.kind, OutcomeKind::Duplicate);
    let event = first.event.clone().expect("event");
    assert_eq!(Some(&event), again.event.as_ref());
    assert_eq!(event.event_id, store.items()[0].event_id);
    assert_eq!(event.event_type, "message.created");
    assert!(!event.conversation.is_empty());
    let quarantined = ingest
        .handle(&signed(b"[]"), Utc::now())
        .await
        .outcome()
        .clone();
    assert_eq!(quarantined.kind, OutcomeKind::Quarantined);
    assert!(quarantined.reason.is_some());
}

#[tokio::test]
async fn retention_sets_the_ttl_attribute_and_zero_keeps_forever() {
    let body = fixture("partoo", "message_created.json");
    let now = Utc::now();
    for (days, expected) in [(0, None), (30, Some(now.timestamp() + 30 * 86_400))] {
        let store = Arc::new(MemoryStore::default());
        let ingest = partoo_ingest_with(
            store.clone(),
            Limits {
                retention_days: days,
                ..Limits::default()
            },
        );
        assert_eq!(ingest.handle(&signed(&body), now).await.reply.status, 200);
        assert_eq!(store.items()[0].expires_at, expected, "{days} days");
    }
}

#[tokio::test]
async fn concurrent_copies_store_one_event() {
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest(store.clone());
    let body = fixture("partoo", "message_created.json");
    let request = signed(&body);
    let replies = futures_join(&ingest, &request, 16).await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.json_body()["status"] == "accepted")
            .count(),
        1
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.json_body()["status"] == "duplicate")
            .count(),
        15
    );
    assert_eq!(store.items().len(), 1);
}

async fn futures_join(ingest: &Ingest, request: &WebhookRequest, n: usize) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (ingest, request) = (ingest.clone(), request.clone());
            tokio::spawn(async move { ingest.handle(&request, Utc::now()).await.reply })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn authentic_but_undecodable_is_quarantined_never_refused() {
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest(store.clone());
    for body in [&b"{\"type\":"[..], b"[]", b"null", b"\xff\xfe"] {
        let reply = send(&ingest, &signed(body)).await;
        assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(reply.json_body()["status"], "quarantined");
        assert!(reply.json_body()["reason"].is_string());
    }
    let items = store.items();
    assert_eq!(items.len(), 4);
    assert!(items
        .iter()
        .all(|i| i.status == Status::Quarantined && i.reason.is_some()));
}

#[tokio::test]
async fn invalid_utf8_in_a_field_no_model_reads_is_quarantined_not_accepted() {
    // JSON is UTF-8. Such a body used to be accepted (serde_json checks only
    // the strings it keeps), then fail in the fanout, which publishes the
    // body as text, on every retry of its stream record.
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest(store.clone());
    let seed = fixture("partoo", "message_created.json");
    let rest = seed
        .trim_ascii_start()
        .strip_prefix(b"{")
        .expect("an object");
    let body = [&b"{\"unread\": \"caf\xe9\","[..], rest].concat();
    let reply = send(&ingest, &signed(&body)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json_body()["status"], "quarantined");
    // The bare code for machines, what went wrong for people.
    assert_eq!(reply.json_body()["reason"], "malformed_json");
    let detail = reply.json_body()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(detail.contains("invalid UTF-8 at byte 15"), "{detail}");
    let items = store.items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status, Status::Quarantined);
    assert_eq!(
        switchboard_pipeline::codec::raw_body(&items[0]).expect("stored"),
        body,
        "kept as sent, for reprocessing"
    );
}

#[tokio::test]
async fn refusals_are_only_for_requests_that_cannot_be_authentic() {
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest_with(store.clone(), LIMIT_4096);
    let body = fixture("partoo", "message_created.json");
    let mut unsigned = signed(&body);
    unsigned.headers.remove("x-partoo-signature-v1");
    let mut get = signed(&body);
    get.method = Method::GET;
    // Unauthenticated whatever else is wrong: 401 before the size or type.
    let mut unsigned_over = signed(&[b' '; 5000]);
    unsigned_over.headers.remove("x-partoo-signature-v1");
    unsigned_over
        .headers
        .insert("content-type", "text/plain".parse().expect("value"));
    let cases = [
        (unsigned, 401, "missing_signature"),
        (unsigned_over, 401, "missing_signature"),
        (get, 405, "method_not_allowed"),
    ];
    for (request, status, code) in cases {
        let Handled { reply, outcomes } = ingest.handle(&request, Utc::now()).await;
        let outcome = &outcomes[0];
        assert_eq!(
            (reply.status.as_u16(), reply.json_body()["error"].as_str()),
            (status, Some(code))
        );
        assert!(reply.json_body()["message"].is_string());
        // Logs and metrics see the same code, and no event.
        let kind = if status == 401 {
            OutcomeKind::AuthFailed
        } else {
            OutcomeKind::Rejected
        };
        assert_eq!((outcome.kind, outcome.reason), (kind, Some(code)));
        assert!(outcome.event.is_none());
    }
    assert!(
        store.items().is_empty(),
        "nothing stored for refused requests"
    );

    // Authentic: any content type is decoded; exactly at the limit is
    // stored whole (and, being blank, quarantined).
    let mut text = signed(&body);
    text.headers
        .insert("content-type", "text/plain".parse().expect("value"));
    let reply = send(&ingest, &text).await;
    assert_eq!(
        (reply.status.as_u16(), reply.json_body()["status"].as_str()),
        (200, Some("accepted"))
    );
    let at_limit = vec![b' '; 4096];
    let reply = send(&ingest, &signed(&at_limit)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json_body()["reason"], "malformed_json");
}

#[tokio::test]
async fn an_authentic_body_over_the_limit_is_kept_in_part_never_refused() {
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest_with(store.clone(), LIMIT_4096);
    let mut big: serde_json::Value =
        serde_json::from_slice(&fixture("partoo", "message_created.json")).expect("json");
    big["payload"]["message"]["content"] = "x".repeat(6000).into();
    let big = serde_json::to_vec(&big).expect("json");
    let mut request = signed(&big);
    request
        .headers
        .insert("x-auth-token", "hunter2".parse().expect("value"));
    let Handled { reply, outcomes } = ingest.handle(&request, Utc::now()).await;
    let outcome = &outcomes[0];
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json_body()["status"], "quarantined");
    assert_eq!(
        (outcome.kind, outcome.reason),
        (OutcomeKind::Quarantined, Some("too_large"))
    );
    let items = store.items();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(
        item.raw_sha256,
        Some(sha256_hex(&big)),
        "the digest names the whole body"
    );
    assert_eq!(
        switchboard_pipeline::codec::raw_body(item).expect("readable"),
        big[..4096],
        "the first 4096 bytes are kept"
    );
    let headers = item.headers.as_ref().expect("headers kept");
    assert!(headers.contains_key("x-partoo-signature-v1"));
    assert!(
        !headers.contains_key("x-auth-token"),
        "no credential is stored"
    );
    // A redelivery of the same body is the same event.
    let again = send(&ingest, &signed(&big)).await;
    assert_eq!(again.json_body()["status"], "duplicate");

    // reprocess never decodes a body kept in part.
    let report = switchboard_pipeline::reprocess(
        store.as_ref(),
        store.as_ref(),
        &seed_org(),
        &switchboard_pipeline::Selection::Events(vec![switchboard_pipeline::EventRef {
            provider: item.provider,
            tenant: item.tenant.clone(),
            subject: None,
            id: item.event_id.clone(),
        }]),
        &Run::to_the_end(),
    )
    .await
    .expect("reprocess");
    assert_eq!((report.examined, report.still_quarantined), (1, 1));
    assert!(report.accepted.is_empty());
}

#[tokio::test]
async fn fanout_publishes_accepted_inserts_and_reports_the_first_failure_and_all_after_it() {
    let store = Arc::new(MemoryStore::default());
    let zip = Ingest::new(
        Arc::new(Zipmessage::new(&[keys::zipmessage_token()]).expect("token")),
        store.clone(),
        Limits::default(),
    );
    for name in [
        "conversation_created.json",
        "message_created.json",
        "message_played.json",
    ] {
        let body = fixture("zipmessage", name);
        let request = WebhookRequest {
            method: Method::POST,
            headers: HeaderMap::new(),
            body: Bytes::from(body),
            path_token: Some(keys::zipmessage_token().into()),
            public_url: None,
            query: None,
        };
        assert_eq!(zip.handle(&request, Utc::now()).await.reply.status, 200);
    }
    let items = store.items();
    let records: Vec<StreamRecord> = items
        .iter()
        .enumerate()
        .map(|(i, item)| StreamRecord {
            id: format!("seq-{i}"),
            event_name: "INSERT".into(),
            item: Ok(Some(item.clone())),
        })
        .chain([
            StreamRecord {
                id: "seq-modify".into(),
                event_name: "MODIFY".into(),
                item: Ok(None),
            },
            StreamRecord {
                id: "seq-poison".into(),
                event_name: "INSERT".into(),
                item: Err("bad image".into()),
            },
        ])
        .collect();
    let ids =
        |from: usize| -> Vec<String> { records[from..].iter().map(|r| r.id.clone()).collect() };
    // Every queue takes its messages: the record with the unreadable image
    // (last) is the first failure, and can never be published as it is.
    let publisher = MemoryPublisher::default();
    let report = fanout(&publisher, &records).await;
    assert_eq!((report.published, report.skipped), (3, 1));
    assert_eq!(report.failed, ids(4));
    assert!(report.poisoned);
    assert!(!report.isolate_poison(records.len()), "not at the head");
    // Heading a batch, it fails the invocation so that Lambda bisects it;
    // alone, it is reported (and exhausts its retries).
    let headed = [records[4].clone(), records[0].clone()];
    let report = fanout(&MemoryPublisher::default(), &headed).await;
    assert!(report.isolate_poison(headed.len()));
    let alone = fanout(&MemoryPublisher::default(), &headed[..1]).await;
    assert!(!alone.isolate_poison(1) && alone.failed == ["seq-poison"]);
    // A queue refuses the first record's message: it and every later record
    // are reported, as Lambda's checkpoint retries them.
    let publisher = MemoryPublisher::default();
    publisher.fail_message(&items[0].event_id);
    let report = fanout(&publisher, &records).await;
    assert_eq!(report.failed, ids(0));
    assert!(!report.poisoned, "a queue's refusal may pass on a retry");
    assert!(!publisher
        .sent()
        .iter()
        .any(|(_, m)| m.dedup_id == items[0].event_id));
    let sent = publisher.sent();
    assert!(sent
        .iter()
        .all(|(family, m)| *family == Family::of_type(&m.event_type)));
    assert!(sent.iter().all(
        |(_, m)| m.group_id == "zipmessage:april-1st-2022-conversation1"
            || m.group_id == "zipmessage:conversation-with-emma-casel"
    ));
}

#[tokio::test]
async fn reprocess_gives_an_event_the_identity_and_delivery_facts_the_webhook_gives_it() {
    use switchboard_pipeline::{item, reprocess, EventStore, Selection};
    use switchboard_providers::{decode_event, DecodeError, Delivery};
    use switchboard_types::Provider;
    let store = Arc::new(MemoryStore::default());
    let now = Utc::now();
    let cases = [
        (
            Provider::Bird,
            fixture("bird", "conversation.updated.json"),
            Delivery {
                test: false,
                delivery_id: Some("req-9".into()),
                tenant: Some("acme".into()),
            },
        ),
        (
            Provider::Partoo,
            fixture("partoo", "message_created.json"),
            Delivery {
                test: true,
                delivery_id: None,
                tenant: None,
            },
        ),
    ];
    let mut expected = Vec::new();
    for (provider, body, delivery) in &cases {
        // What the webhook stores for this delivery today...
        let webhook = item::build(
            *provider,
            &decode_event(*provider, body, &seed_org()),
            delivery,
            body,
            now,
        );
        expected.push((webhook.event_id.clone(), delivery.clone()));
        // ...and the same delivery as an older decoder quarantined it.
        let old = item::build(
            *provider,
            &Err(DecodeError::MalformedJson("an older parser choked".into())),
            delivery,
            body,
            now,
        );
        store.insert(&old).await.expect("insert");
    }
    let window = Selection::Window {
        from: now - chrono::Duration::hours(1),
        to: now + chrono::Duration::hours(1),
        tenant: None,
    };
    let report = reprocess(
        store.as_ref(),
        store.as_ref(),
        &seed_org(),
        &window,
        &Run::to_the_end(),
    )
    .await
    .expect("reprocess");
    assert_eq!(report.accepted.len(), 2, "{report:?}");
    for (event_id, delivery) in expected {
        let accepted = store
            .items()
            .into_iter()
            .find(|i| i.event_id == event_id)
            .expect("accepted under the webhook's own event id");
        assert_eq!(item::delivery_of(&accepted), delivery);
    }
}

/// `n` ZipMessage events of one conversation, received a second apart in
/// this order; every other one carries no time of its own (its sort key is
/// `#<id>`, which sorts before every signed time).
async fn one_conversation(store: &MemoryStore, n: usize) -> Vec<String> {
    use switchboard_pipeline::{item, EventStore};
    use switchboard_providers::{decode_body, Delivery};
    let seed: serde_json::Value =
        serde_json::from_slice(&fixture("zipmessage", "message_created.json")).expect("seed");
    let start = Utc::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let mut body = seed.clone();
        body["id"] = serde_json::json!(format!("m{i}"));
        if i % 2 == 1 {
            switchboard_tests::without_times(&mut body);
        }
        let body = body.to_string().into_bytes();
        let decoded = decode_body(switchboard_types::Provider::Zipmessage, &body);
        let at = start + chrono::Duration::seconds(i64::try_from(i).expect("small"));
        let event = item::build(
            switchboard_types::Provider::Zipmessage,
            &decoded,
            &Delivery::default(),
            &body,
            at,
        );
        assert_eq!(event.status, Status::Accepted);
        store.insert(&event).await.expect("stored");
        ids.push(event.event_id);
    }
    ids
}

#[tokio::test]
async fn a_conversation_replays_in_stored_order_and_stops_at_the_first_failed_page() {
    use switchboard_pipeline::{replay, ToolRequest};
    let store = MemoryStore::default();
    let ids = one_conversation(&store, 7).await;
    let subject = store.items()[0].conversation_key.clone();
    let request: ToolRequest = serde_json::from_value(serde_json::json!({
        "conversation": {"provider": "zipmessage", "subject": subject}
    }))
    .expect("request");
    let selection = request.selection().expect("selection");
    let sent_ids = |publisher: &MemoryPublisher| -> Vec<String> {
        publisher
            .sent()
            .into_iter()
            .map(|(_, m)| m.dedup_id.split(':').next().unwrap_or_default().to_owned())
            .collect()
    };

    // In the order they were stored, whatever their sort keys say.
    let publisher = MemoryPublisher::default();
    let all = replay(&store, &publisher, &selection, "all", &Run::to_the_end())
        .await
        .expect("replay");
    assert_eq!(all.published, 7);
    assert_eq!(sent_ids(&publisher), ids);

    // The fifth fails (page 3 of 2): the run stops there, publishing
    // nothing after it, with a cursor that does its page again.
    let failing = MemoryPublisher::default();
    failing.fail_message(&format!("{}:replay:r", ids[4]));
    let run = Run {
        page_size: 2,
        ..Run::to_the_end()
    };
    let stopped = replay(&store, &failing, &selection, "r", &run)
        .await
        .expect("replay");
    // Failed: the fifth and the rest of its page (never attempted).
    assert_eq!(stopped.failed, ids[4..6]);
    assert_eq!(sent_ids(&failing), ids[..4], "nothing after the failure");
    let cursor = stopped.cursor.expect("a cursor to go on from");
    let resumed = MemoryPublisher::default();
    let run = Run {
        cursor: Some(&cursor),
        page_size: 2,
        ..Run::to_the_end()
    };
    let rest = replay(&store, &resumed, &selection, "r", &run)
        .await
        .expect("replay");
    assert_eq!(rest.cursor, None);
    assert_eq!(
        sent_ids(&resumed),
        ids[4..],
        "from the failed event's page on"
    );
}

/// Partoo's `message_updated` carries no version and no time: an update is
/// known only by the state it brings. The choice: an update whose state
/// equals one already stored is a `duplicate`, and is not published. Were
/// it published, a late retry of an older update, arriving after a newer
/// one (Partoo retries 5xx up to 5 times with backoff), would reach
/// consumers as a revert that never happened; a real return to an earlier
/// state cannot be told from that retry, so it is not published either.
#[tokio::test]
async fn a_partoo_update_back_to_an_earlier_state_is_a_duplicate_not_a_revert() {
    let store = Arc::new(MemoryStore::default());
    let ingest = partoo_ingest(store.clone());
    let update = |status: &str| {
        serde_json::json!({"type": "message_updated", "payload": {
            "org_id": PARTOO_SEED_ORG.parse::<u64>().expect("a number"),
            "message": {"id": "m-1", "conversation_id": "c-9", "status": status,
                        "content_type": "TEXT", "content": "hello",
                        "date": "2023-01-31 16:22:17+0000"}}})
        .to_string()
        .into_bytes()
    };
    let mut outcomes = Vec::new();
    for status in ["DELIVERED", "READ", "DELIVERED"] {
        let reply = send(&ingest, &signed(&update(status))).await;
        assert_eq!(reply.status.as_u16(), 200, "Partoo's success is 200");
        outcomes.push(
            reply.json_body()["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(outcomes, ["accepted", "accepted", "duplicate"]);
    assert_eq!(
        store.items().len(),
        2,
        "the earlier state is not stored again"
    );
}

/// A store whose `n`th insert (0-based) fails transiently, once.
struct FailingNth {
    inner: MemoryStore,
    n: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl switchboard_pipeline::ports::EventStore for FailingNth {
    async fn insert(
        &self,
        event: &switchboard_types::StoredEvent,
    ) -> Result<switchboard_pipeline::ports::InsertOutcome, switchboard_pipeline::ports::StoreError>
    {
        use std::sync::atomic::Ordering;
        if self.n.fetch_sub(1, Ordering::SeqCst) == 0 {
            return Err(switchboard_pipeline::ports::StoreError::transient(
                "throttled",
            ));
        }
        self.inner.insert(event).await
    }
}

/// A WhatsApp batch as Meta signs it, for a pipeline of `store`.
fn whatsapp(store: Arc<FailingNth>) -> (Ingest, WebhookRequest) {
    let secret = &keys::current(Provider::Whatsapp).signing;
    let provider =
        switchboard_providers::whatsapp::Whatsapp::new(&[secret.into()], &[]).expect("builds");
    let ingest = Ingest::new(Arc::new(provider), store, Limits::default()).with_admission(
        Admission::default().listing(
            Provider::Whatsapp,
            &[switchboard_providers::whatsapp::EXAMPLE_ACCOUNT],
        ),
    );
    let body = fixture("whatsapp", "batch.json");
    let mut headers = HeaderMap::new();
    headers.insert(
        switchboard_providers::whatsapp::SIGNATURE_HEADER,
        switchboard_providers::whatsapp::sign(secret, &body)
            .parse()
            .expect("value"),
    );
    let request = WebhookRequest {
        method: Method::POST,
        headers,
        body: Bytes::from(body),
        path_token: None,
        public_url: None,
        query: None,
    };
    (ingest, request)
}

#[tokio::test]
async fn a_body_of_many_events_is_answered_200_only_when_every_one_is_stored() {
    // The second of the body's three events cannot be stored: the request
    // is a 503 (Meta retries anything but a 200), the first is stored, the
    // third not tried — so no event of a conversation is stored after an
    // earlier one that failed. The retry finds the first a duplicate and
    // stores the other two, in the body's order.
    let store = Arc::new(FailingNth {
        inner: MemoryStore::default(),
        n: std::sync::atomic::AtomicUsize::new(1),
    });
    let (ingest, request) = whatsapp(store.clone());
    let first = ingest.handle(&request, Utc::now()).await;
    assert_eq!(first.reply.status, 503);
    let kinds: Vec<OutcomeKind> = first.outcomes.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [OutcomeKind::Accepted, OutcomeKind::StorageUnavailable]
    );
    assert_eq!(store.inner.items().len(), 1);

    let retry = ingest.handle(&request, Utc::now()).await;
    assert_eq!(retry.reply.status, 200);
    let body = retry.reply.json_body();
    assert_eq!(body["status"], "mixed");
    let statuses: Vec<&str> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(statuses, ["duplicate", "accepted", "accepted"]);
    assert_eq!(body["event_ids"][0], body["events"][0]["id"]);
    // One outcome per event, each with its own id: per-event metrics.
    let ids: Vec<String> = retry
        .outcomes
        .iter()
        .filter_map(|o| o.event.as_ref().map(|e| e.event_id.clone()))
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(store.inner.items().len(), 3);
    assert!(store
        .inner
        .items()
        .iter()
        .all(|i| i.status == Status::Accepted && i.tenant == "102290129340398"));
}
