//! The operator tools on the local stack (moto): `replay` re-publishes
//! stored events by window, conversation or id with the same CloudEvent ids;
//! `reprocess` accepts quarantined events that decode today. Both report
//! counts and are idempotent; the replay Lambda binary is driven through the
//! Runtime API emulator as in AWS.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration as Span, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchboard_aws::{DynamoStore, SqsPublisher};
use switchboard_pipeline::{item, replay, reprocess, Run, Selection, ToolError, ToolRequest};
use switchboard_providers::{Admission, DecodeError, Delivery};
use switchboard_tests::runtime::{Outcome, RuntimeApi};
use switchboard_tests::{binary, fixture, lambda_env, TestStack, PARTOO_SEED_ORG};
use switchboard_types::{Family, Provider, Status};

/// The replay function's table.
fn store(t: &TestStack) -> DynamoStore {
    t.store_of("replay")
}

/// The queues as the replay function publishes to them.
fn publisher(t: &TestStack) -> SqsPublisher {
    t.publisher_of("replay")
}

/// The admission settings of the test stacks: the Partoo seed's organisation.
fn seed_org() -> Admission {
    switchboard_providers::Admission::from_lookup(&|name: &str| {
        (name == "PARTOO_ORG_IDS").then(|| PARTOO_SEED_ORG.to_owned())
    })
}

fn around_now() -> Selection {
    Selection::Window {
        from: Utc::now() - Span::hours(1),
        to: Utc::now() + Span::hours(1),
        tenant: None,
    }
}

/// Receives and deletes (acknowledges, as a consumer does) every message on
/// the three queues until they stay quiet: `(CloudEvent id, deduplication id)`.
async fn consume(t: &TestStack) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut quiet = 0;
    while quiet < 3 {
        let mut got = 0;
        for family in [Family::Conversations, Family::Messages, Family::Other] {
            for m in t.receive_and_delete(family).await {
                got += 1;
                out.push((
                    m.body["id"].as_str().unwrap_or_default().to_owned(),
                    m.dedup_id,
                ));
            }
        }
        quiet = if got == 0 { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_republishes_by_window_conversation_and_id_with_the_same_cloudevent_ids() {
    let t = TestStack::start().await;
    let mut accepted = Vec::new();
    for name in [
        "conversation_created.json",
        "message_created.json",
        "message_played.json",
    ] {
        let (status, reply) = t.post_zipmessage(&fixture("zipmessage", name)).await;
        assert_eq!(status, 200);
        accepted.push(reply["event_ids"][0].as_str().expect("id").to_owned());
    }
    let (status, reply) = t
        .post_partoo(&fixture("partoo", "message_created.json"))
        .await;
    assert_eq!(status, 200);
    accepted.push(reply["event_ids"][0].as_str().expect("id").to_owned());
    // A documented type switchboard does not model: the `other` queue.
    let mut purchase: Value =
        serde_json::from_slice(&fixture("zipmessage", "conversation_created.json")).expect("seed");
    purchase["type"] = json!("new_purchase");
    purchase["id"] = json!("purchase-1");
    let (status, reply) = t.post_zipmessage(purchase.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    accepted.push(reply["event_ids"][0].as_str().expect("id").to_owned());
    let (status, _) = t.post_zipmessage(b"[\"not an envelope\"]").await;
    assert_eq!(status, 200, "quarantined");
    // The originals, published by the fanout (and acknowledged).
    assert_eq!(consume(&t).await.len(), 5);

    // By window: every accepted event again, same ids; the quarantined one skipped.
    let (store, publisher) = (store(&t), publisher(&t));
    let window = around_now();
    let report = replay(&store, &publisher, &window, "r1", &Run::to_the_end())
        .await
        .expect("replay");
    assert_eq!(
        (report.matched, report.published, report.skipped_quarantined),
        (6, 5, 1)
    );
    assert!(report.failed.is_empty());
    // The same replay again before anyone consumed the first: SQS
    // deduplicates it (same deduplication id), so each event arrives once.
    // (Real SQS also drops it after the first copy was consumed, for 5
    // minutes; moto forgets deleted messages, so this test does not rely on it.)
    let again = replay(&store, &publisher, &window, "r1", &Run::to_the_end())
        .await
        .expect("replay");
    assert_eq!((again.matched, again.published), (6, 5));
    let replayed = consume(&t).await;
    assert_eq!(replayed.len(), 5, "idempotent: {replayed:?}");
    let ids: BTreeSet<&str> = replayed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, accepted.iter().map(String::as_str).collect());
    assert!(replayed
        .iter()
        .all(|(id, dedup)| *dedup == format!("{id}:replay:r1")));

    // By conversation: that conversation's events only.
    let items = t.items().await;
    let message = items
        .iter()
        .find(|i| i.event_id == accepted[1])
        .expect("message item");
    // Named as on the CloudEvent: provider and subject (tenant `default`).
    let request: ToolRequest = serde_json::from_value(json!({
        "conversation": {"provider": "zipmessage", "subject": message.conversation_key}
    }))
    .expect("request");
    let conversation = request.selection().expect("selection");
    let in_conversation = items
        .iter()
        .filter(|i| {
            i.provider == Provider::Zipmessage && i.conversation_key == message.conversation_key
        })
        .count();
    let report = replay(&store, &publisher, &conversation, "r2", &Run::to_the_end())
        .await
        .expect("replay");
    assert_eq!(
        (report.matched, report.published),
        (in_conversation, in_conversation)
    );
    assert_eq!(consume(&t).await.len(), in_conversation);

    // By event, named by its CloudEvent's attributes (a whole CloudEvent
    // names it too), including an unknown one.
    let partoo = items
        .iter()
        .find(|i| i.event_id == accepted[3])
        .expect("partoo item");
    let request: ToolRequest = serde_json::from_value(json!({"events": [
        {"specversion": "1.0", "provider": "partoo", "tenant": partoo.tenant,
         "subject": partoo.conversation_key, "id": accepted[3], "type": "message.created"},
        {"provider": "zipmessage", "id": "no-such-event"},
    ]}))
    .expect("request");
    let by_id = request.selection().expect("selection");
    let report = replay(&store, &publisher, &by_id, "r3", &Run::to_the_end())
        .await
        .expect("replay");
    assert_eq!((report.matched, report.published), (1, 1));
    let one = consume(&t).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, accepted[3]);

    // A window with nothing in it.
    let empty = Selection::Window {
        from: Utc::now() + Span::days(2),
        to: Utc::now() + Span::days(3),
        tenant: None,
    };
    let report = replay(&store, &publisher, &empty, "r4", &Run::to_the_end())
        .await
        .expect("replay");
    assert_eq!((report.matched, report.published), (0, 0));
    // Nothing stored was changed by replaying.
    assert_eq!(t.items().await, items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_pages_through_a_window_and_resumes_from_its_cursor() {
    let t = TestStack::start().await;
    let mut seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "conversation_created.json")).expect("seed");
    let mut posted = BTreeSet::new();
    let mut of_three = Vec::new();
    // Seven conversations, one event each, and one conversation of three.
    for n in 0..10 {
        seed["id"] = json!(format!("paged-{n}"));
        seed["payload"]["conversation"]["slug"] = json!(format!("paged-{}", n.min(7)));
        let (status, reply) = t.post_zipmessage(seed.to_string().as_bytes()).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("accepted")),
            "{reply}"
        );
        let id = reply["event_ids"][0].as_str().expect("id").to_owned();
        if n >= 7 {
            of_three.push(id.clone());
        }
        posted.insert(id);
    }
    assert_eq!(consume(&t).await.len(), 10);
    // Two items a Scan page per segment: a small table read in many pages,
    // a partition held back when a page ends within it.
    let (store, publisher) = (store(&t).with_scan_page(2), publisher(&t));
    // Days without events at its start (as a window around midnight has):
    // the window is a receive-time filter of the Scan, whatever its days.
    let window = Selection::Window {
        from: Utc::now() - Span::days(2),
        to: Utc::now() + Span::hours(1),
        tenant: None,
    };

    // Two pages, then the run is told to stop: a cursor to go on from.
    let asked = AtomicUsize::new(0);
    let two_pages = || asked.fetch_add(1, Ordering::SeqCst) < 1;
    let run = Run {
        cursor: None,
        page_size: 2,
        keep_going: &two_pages,
    };
    let first = replay(&store, &publisher, &window, "paged", &run)
        .await
        .expect("replay");
    assert!(
        first.matched > 0 && first.matched < 10 && first.published == first.matched,
        "{first:?}"
    );
    let cursor = first
        .cursor
        .clone()
        .expect("stopped before the end: a cursor");
    let mut replayed: Vec<String> = consume(&t).await.into_iter().map(|(id, _)| id).collect();
    // A cursor is refused with another selection.
    let other = Selection::Window {
        from: Utc::now() - Span::days(9),
        to: Utc::now() - Span::days(8),
        tenant: None,
    };
    let run = Run {
        cursor: Some(&cursor),
        ..Run::to_the_end()
    };
    let refused = replay(&store, &publisher, &other, "paged", &run).await;
    assert!(matches!(refused, Err(ToolError::Request(_))), "{refused:?}");

    // The same request with the cursor finishes the window.
    let rest = replay(&store, &publisher, &window, "paged", &run)
        .await
        .expect("replay");
    assert_eq!(first.matched + rest.matched, 10, "{first:?} {rest:?}");
    assert_eq!(rest.published, rest.matched);
    assert_eq!(rest.cursor, None, "done");
    replayed.extend(consume(&t).await.into_iter().map(|(id, _)| id));
    // A conversation is handed on whole, in the order it was stored.
    let at: Vec<usize> = of_three
        .iter()
        .map(|id| replayed.iter().position(|r| r == id).expect("replayed"))
        .collect();
    assert!(at.windows(2).all(|w| w[1] == w[0] + 1), "{at:?}");
    replayed.sort();
    assert_eq!(
        replayed,
        posted.into_iter().collect::<Vec<_>>(),
        "every event once, across the two runs"
    );

    // Reprocess reads a window's quarantined events only, on the sparse
    // index: with nothing quarantined it reads no event at all.
    let reprocess_store = t.store_of("reprocess");
    let report = reprocess(
        &reprocess_store,
        &reprocess_store,
        &seed_org(),
        &window,
        &Run::to_the_end(),
    )
    .await
    .expect("reprocess");
    assert_eq!(
        (report.examined, report.cursor.as_deref()),
        (0, None),
        "{report:?}"
    );
}

/// Scanning past a table's events outside the window is work a deadline
/// bounds: a run told to stop stops with a cursor, even before it found
/// an event, rather than reading the whole table in one invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_scan_stops_at_the_deadline_even_between_empty_pages() {
    let t = TestStack::start().await;
    let mut seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "conversation_created.json")).expect("seed");
    for n in 0..6 {
        seed["id"] = json!(format!("outside-{n}"));
        seed["payload"]["conversation"]["slug"] = json!(format!("outside-{n}"));
        assert_eq!(t.post_zipmessage(seed.to_string().as_bytes()).await.0, 200);
    }
    assert_eq!(consume(&t).await.len(), 6);
    let (store, publisher) = (store(&t).with_scan_page(1), publisher(&t));
    // A window with none of them: every page of the Scan is empty.
    let window = Selection::Window {
        from: Utc::now() - Span::days(9),
        to: Utc::now() - Span::days(8),
        tenant: None,
    };
    let asked = AtomicUsize::new(0);
    let stop = || {
        asked.fetch_add(1, Ordering::SeqCst);
        false
    };
    let run = Run {
        cursor: None,
        page_size: 1,
        keep_going: &stop,
    };
    let report = replay(&store, &publisher, &window, "deadline", &run)
        .await
        .expect("replay");
    assert_eq!(report.matched, 0);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "asked once, after one page"
    );
    let cursor = report.cursor.expect("stopped before the end: a cursor");
    // The same request with its cursor goes on to the end.
    let run = Run {
        cursor: Some(&cursor),
        ..Run::to_the_end()
    };
    let rest = replay(&store, &publisher, &window, "deadline", &run)
        .await
        .expect("replay");
    assert_eq!((rest.matched, rest.cursor), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocess_accepts_quarantined_events_that_decode_now_once() {
    let t = TestStack::start().await;
    // An event quarantined by an older decoder: its body is fine today.
    let body = fixture("partoo", "message_created.json");
    let old = item::build(
        Provider::Partoo,
        &Err(DecodeError::MalformedJson("an older parser choked".into())),
        &Delivery::default(),
        &body,
        Utc::now(),
    );
    assert_eq!(old.status, Status::Quarantined);
    aws_sdk_dynamodb::Client::new(&t.stack.sdk)
        .put_item()
        .table_name(&t.stack.table_name)
        .set_item(Some(serde_dynamo::to_item(&old).expect("encode")))
        .send()
        .await
        .expect("put");
    // And one that still does not decode.
    let (status, _) = t.post_partoo(b"{\"not\": \"partoo\"}").await;
    assert_eq!(status, 200);
    assert!(consume(&t).await.is_empty(), "quarantined: never published");

    let store = t.store_of("reprocess");
    let report = reprocess(
        &store,
        &store,
        &seed_org(),
        &around_now(),
        &Run::to_the_end(),
    )
    .await
    .expect("reprocess");
    assert_eq!(report.examined, 2);
    assert_eq!(report.accepted.len(), 1);
    assert_eq!(report.still_quarantined, 1);
    assert!(report.failed.is_empty());
    let (quarantined_id, accepted_id) = report.accepted[0].clone();
    assert_eq!(quarantined_id, old.event_id);

    // The accepted event is published through the stream like a fresh one.
    let messages = t
        .drain(Family::Messages, 1, Duration::from_millis(800))
        .await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body["id"], accepted_id.as_str());
    assert_eq!(messages[0].body["type"], "message.created");
    consume(&t).await;
    // The original stays quarantined, pointing at its accepted twin.
    let items = t.items().await;
    let original = items.iter().find(|i| i.pk == old.pk).expect("original");
    assert_eq!(original.status, Status::Quarantined);
    assert_eq!(
        original.reprocessed_to.as_deref(),
        Some(accepted_id.as_str())
    );
    assert_eq!(
        original.received_at,
        items
            .iter()
            .find(|i| i.event_id == accepted_id)
            .expect("accepted")
            .received_at
    );

    // Idempotent: a second run accepts nothing more and publishes nothing.
    let again = reprocess(
        &store,
        &store,
        &seed_org(),
        &around_now(),
        &Run::to_the_end(),
    )
    .await
    .expect("reprocess");
    assert_eq!((again.examined, again.accepted.len()), (1, 0));
    assert_eq!(again.still_quarantined, 1);
    // By id (the table itself, not the by-day index): the one still
    // quarantined is examined again, and stays.
    let still = t
        .items()
        .await
        .into_iter()
        .find(|i| i.status == Status::Quarantined && i.reprocessed_to.is_none())
        .expect("the event that still does not decode");
    let request: ToolRequest = serde_json::from_value(json!({
        "events": [{"provider": "partoo", "id": still.event_id}]
    }))
    .expect("request");
    let by_id = reprocess(
        &store,
        &store,
        &seed_org(),
        &request.selection().expect("selection"),
        &Run::to_the_end(),
    )
    .await
    .expect("reprocess by id");
    assert_eq!((by_id.examined, by_id.still_quarantined), (1, 1));
    assert_eq!(t.items().await.len(), 3);
    assert!(consume(&t).await.is_empty());
}

#[test]
fn tool_requests_are_checked_with_clear_errors() {
    let parse = |v: Value| serde_json::from_value::<ToolRequest>(v).map_err(|e| e.to_string());
    let request =
        parse(json!({"window": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"}}))
            .expect("parses");
    assert!(matches!(request.selection(), Ok(Selection::Window { .. })));
    assert_eq!(
        request.replay_id().expect("id").len(),
        16,
        "derived from the request"
    );
    let mut resumed = request.clone();
    resumed.cursor = Some("from-an-earlier-report".into());
    assert_eq!(
        resumed.replay_id().expect("id"),
        request.replay_id().expect("id"),
        "a resumed replay is the same replay"
    );
    for (bad, says) in [
        (json!({}), "exactly one"),
        (
            json!({"events": [{"provider": "bird", "id": "a"}], "window": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"}}),
            "exactly one",
        ),
        (
            json!({"window": {"from": "yesterday", "to": "2026-11-23T00:00:00Z"}}),
            "not a timestamp",
        ),
        (
            json!({"window": {"from": "2026-11-23T00:00:00Z", "to": "2026-11-22T00:00:00Z"}}),
            "before",
        ),
        (
            json!({"conversation": {"provider": "slack", "key": "x"}}),
            "unknown provider",
        ),
        (json!({"events": []}), "at least one"),
        (
            json!({"events": [{"provider": "bird", "id": " "}]}),
            "non-empty `id`",
        ),
        (
            json!({"events": [{"provider": "bird", "tenant": "acme", "subject": "globex/c1", "id": "a"}]}),
            "not a conversation of tenant \"acme\"",
        ),
        (
            json!({"conversation": {"provider": "bird", "tenant": "acme", "subject": "c1"}}),
            "not a conversation of tenant",
        ),
        (json!({"event_ids": ["a"]}), "list `events`"),
    ] {
        let error = parse(bad.clone())
            .expect("parses")
            .selection()
            .expect_err("refused")
            .to_string();
        assert!(error.contains(says), "{bad}: {error}");
    }
    assert!(
        parse(json!({"windows": {}})).is_err(),
        "unknown fields are refused"
    );
    assert!(
        parse(json!({"events": [{"provider": "slack", "id": "a"}]})).is_err(),
        "an unknown provider is refused"
    );
    let bad_id =
        parse(json!({"events": [{"provider": "bird", "id": "a"}], "replay_id": "no spaces"}))
            .expect("parses");
    assert!(bad_id.replay_id().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_lambda_binary_replays_a_cloudevent_and_refuses_bad_requests() {
    let t = TestStack::start().await;
    let (status, reply) = t
        .post_zipmessage(&fixture("zipmessage", "conversation_created.json"))
        .await;
    assert_eq!(status, 200);
    let id = reply["event_ids"][0].as_str().expect("id").to_owned();
    // The consumer's CloudEvent names the event to replay.
    let mut published = Vec::new();
    for _ in 0..20 {
        published.extend(t.receive_and_delete(Family::Conversations).await);
        if !published.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(published.len(), 1);
    let mut cloudevent = published[0].body.clone();
    if let Some(fields) = cloudevent.as_object_mut() {
        fields.remove("data");
    }
    let env = lambda_env(&t.stack.provisioned.functions, "replay");
    let mut api = RuntimeApi::start().await;
    api.spawn(&binary("replay"), "replay", &env);
    let Outcome::Response(report) = api.invoke(&json!({"events": [cloudevent]})).await else {
        panic!("the replay failed")
    };
    assert_eq!(report["matched"], 1);
    assert_eq!(report["published"], 1);
    let replayed = consume(&t).await;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].0, id);
    let Outcome::Error(error) = api.invoke(&json!({"everything": true})).await else {
        panic!("a bad request must fail")
    };
    assert!(error.to_string().contains("invalid request"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_item_is_reported_and_skipped_and_never_fails_the_others() {
    let t = TestStack::start().await;
    let mut seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "conversation_created.json")).expect("seed");
    for n in 0..2 {
        seed["id"] = json!(format!("readable-{n}"));
        let (status, _) = t.post_zipmessage(seed.to_string().as_bytes()).await;
        assert_eq!(status, 200);
    }
    assert_eq!(consume(&t).await.len(), 2);
    // Beside them, in the same day and window: an item this version cannot
    // read, and one an earlier version wrote with a signed time past the
    // year 9999 (sort key `+54944-…`).
    let dynamodb = aws_sdk_dynamodb::Client::new(&t.stack.sdk);
    let stored = dynamodb
        .scan()
        .table_name(&t.stack.table_name)
        .send()
        .await
        .expect("scan");
    let original = stored.items()[0].clone();
    let id = |sk: &str| sk.rsplit('#').next().unwrap_or_default().to_owned();
    let original_sk = original["sk"].as_s().expect("sk").clone();
    let mut unreadable = original.clone();
    unreadable.insert(
        "sk".into(),
        AttributeValue::S(format!("#{}-copy", id(&original_sk))),
    );
    unreadable.insert("status".into(), AttributeValue::S("exploded".into()));
    // On the sparse by-day index too, as a quarantined item is, so that
    // reprocess reads it as well.
    let day = original["received_at"].as_s().expect("received_at")[..10].to_owned();
    unreadable.insert("day".into(), AttributeValue::S(day));
    let mut far_off = original.clone();
    let far_off_sk = format!("+54944-06-01T00:00:00.000000000Z#{}-far", id(&original_sk));
    far_off.insert("sk".into(), AttributeValue::S(far_off_sk.clone()));
    for item in [unreadable, far_off] {
        dynamodb
            .put_item()
            .table_name(&t.stack.table_name)
            .set_item(Some(item))
            .send()
            .await
            .expect("put");
    }
    // The stream publishes the legacy item once more: acknowledge it.
    consume(&t).await;

    let (store, publisher) = (store(&t), publisher(&t));
    let report = replay(&store, &publisher, &around_now(), "u1", &Run::to_the_end())
        .await
        .expect("one unreadable item fails no page");
    assert_eq!((report.matched, report.published), (3, 3), "{report:?}");
    assert_eq!(report.unreadable.len(), 1, "{report:?}");
    assert!(
        report.unreadable[0].contains("-copy") && report.unreadable[0].contains("exploded"),
        "{:?}",
        report.unreadable
    );
    // The legacy item is read with its receive time as its time.
    let republished = t
        .drain(Family::Conversations, 3, Duration::from_millis(800))
        .await;
    let legacy = republished
        .iter()
        .find(|m| m.body["id"].as_str().is_some_and(|id| id.ends_with("-far")))
        .expect("the legacy item republished");
    assert!(
        legacy.body["time"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{}",
        legacy.body
    );
    let reprocessed = reprocess(
        &t.store_of("reprocess"),
        &t.store_of("reprocess"),
        &seed_org(),
        &around_now(),
        &Run::to_the_end(),
    )
    .await
    .expect("reprocess too");
    assert_eq!(reprocessed.unreadable.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_time_past_the_year_9999_is_no_signed_time() {
    let t = TestStack::start().await;
    let mut seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "conversation_created.json")).expect("seed");
    seed["id"] = json!("year-10000");
    // Every time of the body (ZipMessage's own and its payload's).
    fn far_off(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key.ends_with("_at") {
                        *v = json!("9999-12-31T23:59:59-01:00");
                    } else {
                        far_off(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(far_off),
            _ => {}
        }
    }
    far_off(&mut seed);
    let (status, reply) = t.post_zipmessage(seed.to_string().as_bytes()).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")));
    let item = t
        .items()
        .await
        .into_iter()
        .find(|i| i.event_id == reply["event_ids"][0])
        .expect("stored");
    assert!(
        item.sk.starts_with('#'),
        "no signed time in the key: {}",
        item.sk
    );
    assert_eq!(item.occurred_at, item.received_at);
    let raw = switchboard_pipeline::codec::raw_body(&item).expect("raw body");
    assert!(
        String::from_utf8_lossy(&raw).contains("9999-12-31T23:59:59-01:00"),
        "the sender's value stays in the raw data"
    );
    // Published once, and replayed with every other event of the window.
    assert_eq!(consume(&t).await.len(), 1);
    let report = replay(
        &store(&t),
        &publisher(&t),
        &around_now(),
        "y",
        &Run::to_the_end(),
    )
    .await
    .expect("replay");
    assert_eq!((report.matched, report.published), (1, 1));
    assert!(report.unreadable.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_replays_in_the_order_it_was_stored() {
    let t = TestStack::start().await;
    // A message with its own time, then one without (Partoo's
    // message_updated never has one): the second's sort key is `#<id>`.
    let mut posted = Vec::new();
    for (id, timed) in [("m-timed", true), ("m-untimed", false)] {
        let mut body: Value =
            serde_json::from_slice(&fixture("zipmessage", "message_created.json")).expect("seed");
        body["id"] = json!(id);
        if !timed {
            switchboard_tests::without_times(&mut body);
        }
        let (status, reply) = t.post_zipmessage(body.to_string().as_bytes()).await;
        assert_eq!(status, 200);
        posted.push(reply["event_ids"][0].as_str().expect("id").to_owned());
    }
    let originals = t
        .consume(Family::Messages, 2, Duration::from_millis(800))
        .await;
    let subject = originals[0].body["subject"]
        .as_str()
        .expect("a subject")
        .to_owned();
    let order: Vec<&str> = originals
        .iter()
        .map(|m| m.body["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(order, posted, "published in the order stored");

    let request: ToolRequest = serde_json::from_value(json!({
        "conversation": {"provider": "zipmessage", "subject": subject}
    }))
    .expect("request");
    let report = replay(
        &store(&t),
        &publisher(&t),
        &request.selection().expect("selection"),
        "ordered",
        &Run::to_the_end(),
    )
    .await
    .expect("replay");
    assert_eq!(report.published, 2);
    let replayed = t
        .consume(Family::Messages, 2, Duration::from_millis(800))
        .await;
    let order: Vec<&str> = replayed
        .iter()
        .map(|m| m.body["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(order, posted, "replayed in the order consumers saw");
}

#[test]
fn a_conversation_named_with_or_without_its_tenant_is_one_replay() {
    let id = |request: Value| {
        serde_json::from_value::<ToolRequest>(request)
            .expect("a request")
            .replay_id()
            .expect("an id")
    };
    let without = id(json!({"conversation": {"provider": "zipmessage", "subject": "acme/x"}}));
    let with = id(
        json!({"conversation": {"provider": "zipmessage", "tenant": "acme", "subject": "acme/x"}}),
    );
    assert_eq!(without, with);
    assert_ne!(
        without,
        id(json!({"conversation": {"provider": "zipmessage", "subject": "default/acme/x"}}))
    );
}
