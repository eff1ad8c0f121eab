//! Meta's WhatsApp Cloud API, end to end through the local gateway against
//! moto, from Meta's documented behaviour: the `GET` URL check answered with
//! its challenge (403 for a wrong token, nothing stored), a signed body with
//! two messages and a status stored as three events in the body's order and
//! published once each (its redelivery is three duplicates, nothing more
//! published), and an unlisted WhatsApp Business Account's events kept, not
//! published. On the code before WhatsApp, every request here was a 404.
//! Needs the moto server `make test` starts.

use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_providers::whatsapp::{self, LOCAL_VERIFY_TOKEN};
use switchboard_tests::{binary, fixture, keys, root, TestStack};
use switchboard_types::{Family, Provider};

const SETTLE: Duration = Duration::from_millis(1500);
const ROUTE: &str = "/webhooks/whatsapp";

/// A GET of the route with `query`: (status, content type, body).
async fn get(t: &TestStack, query: &str) -> (u16, String, String) {
    let response = t
        .http
        .get(format!("{}?{query}", t.stack.url(ROUTE)))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_check_echoes_the_challenge_only_for_a_configured_token() {
    let t = TestStack::start().await;
    // Meta's sample verification request, with the stack's token.
    let query = whatsapp::url_check_query(LOCAL_VERIFY_TOKEN, "1158201444");
    let (status, content_type, body) = get(&t, &query).await;
    assert_eq!((status, body.as_str()), (200, "1158201444"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");

    // Meta's sample token is not this stack's: 403, Meta's convention.
    let (status, _, body) = get(
        &t,
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
    )
    .await;
    let error: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(
        (status, error["error"].as_str()),
        (403, Some("invalid_verify_token"))
    );
    // A GET that is no URL check is not served; the route serves GET
    // (the check) and POST, and says so (RFC 9110: Allow lists them all).
    let (status, _, _) = get(&t, "hub.challenge=1").await;
    assert_eq!(status, 405);
    let put = t
        .http
        .put(t.stack.url(ROUTE))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(put.status().as_u16(), 405);
    assert_eq!(
        put.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );
    assert!(t.items().await.is_empty(), "a URL check stores nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_two_messages_and_a_status_is_three_events_published_once() {
    let t = TestStack::start().await;
    let body = fixture("whatsapp", "batch.json");
    let (status, reply) = t.post_as(Provider::Whatsapp, &body, &[]).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")));
    let ids: Vec<&str> = reply["event_ids"]
        .as_array()
        .expect("event ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids.len(), 3, "{reply}");
    let outcomes: Vec<(&str, &str)> = reply["events"]
        .as_array()
        .expect("each event's outcome")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or_default(),
                e["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        ids.iter().map(|id| (*id, "accepted")).collect::<Vec<_>>()
    );

    // Meta retries the whole body: every event is a duplicate.
    let (status, again) = t.post_as(Provider::Whatsapp, &body, &[]).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(again["event_ids"], reply["event_ids"]);

    let got = t.consume(Family::Messages, 3, SETTLE).await;
    assert_eq!(got.len(), 3, "published once each");
    let published: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|m| {
            (
                m.body["id"].as_str().unwrap_or_default(),
                m.body["type"].as_str().unwrap_or_default(),
                m.body["subject"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    // Sheena's conversation: her message, then the status of the business's
    // message to her, in the body's order; Pablo's message in a group of
    // its own. The tenant is the WhatsApp Business Account.
    let sheena = "102290129340398/106540352242922:16505551234";
    let pablo = "102290129340398/106540352242922:16315551181";
    let of = |subject: &str| -> Vec<(&str, &str)> {
        published
            .iter()
            .filter(|(_, _, s)| *s == subject)
            .map(|(id, kind, _)| (*id, *kind))
            .collect()
    };
    assert_eq!(
        of(sheena),
        [(ids[0], "message.created"), (ids[2], "message.updated")]
    );
    assert_eq!(of(pablo), [(ids[1], "message.created")]);
    for message in &got {
        assert_eq!(message.body["tenant"], "102290129340398");
        assert_eq!(message.body["source"], "urn:switchboard:whatsapp");
        // Each event's raw data is its own part of Meta's body.
        let raw = &message.body["data"]["raw"]["entry"][0]["changes"][0]["value"];
        let items = raw["messages"].as_array().map_or(0, Vec::len)
            + raw["statuses"].as_array().map_or(0, Vec::len);
        assert_eq!(items, 1, "{raw}");
    }
    let first = got
        .iter()
        .find(|m| m.body["id"] == ids[1])
        .expect("Pablo's message");
    let message = &first.body["data"]["message"];
    assert_eq!(message["text"], "Is the store open on Sunday?");
    assert_eq!(message["direction"], "incoming");
    assert_eq!(message["channel"], "whatsapp");
    assert_eq!(message["sender"]["name"], "Pablo Morales");
    assert_eq!(message["recipient"]["phone"], "15550783881");
    assert_eq!(first.body["time"], "2025-06-08T21:03:11Z");
    assert_eq!(t.items().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_business_accounts_events_are_kept_not_published() {
    // Another account than the listed one (the stack lists the account of
    // Meta's examples): the same app secret signs both.
    let t = TestStack::start_with(HashMap::from([(
        whatsapp::ACCOUNT_IDS.to_owned(),
        "4242".to_owned(),
    )]))
    .await;
    let body = fixture("whatsapp", "batch.json");
    let (status, reply) = t.post_as(Provider::Whatsapp, &body, &[]).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("quarantined"))
    );
    for event in reply["events"].as_array().expect("events") {
        assert_eq!(event["reason"], "org_not_allowed", "{event}");
        assert!(event["detail"]
            .as_str()
            .is_some_and(|d| d.contains("WhatsApp Business Account 102290129340398")));
    }
    assert!(t.consume(Family::Messages, 0, SETTLE).await.is_empty());
    assert_eq!(t.items().await.len(), 3);

    // Listing the account and reprocessing publishes each event once: the
    // quarantine rules and reprocess work per event.
    let ids: Vec<Value> = reply["event_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| serde_json::json!({"provider": "whatsapp", "id": id}))
        .collect();
    let request = serde_json::json!({ "events": ids });
    let output = std::process::Command::new(binary("switchboard-local"))
        .current_dir(root())
        .args(["reprocess", &request.to_string()])
        .env("SWITCHBOARD_STATE", t.state_file())
        .env(whatsapp::ACCOUNT_IDS, "4242,102290129340398")
        .output()
        .expect("switchboard-local runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(
        report["accepted"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    let published = t.consume(Family::Messages, 3, SETTLE).await;
    assert_eq!(published.len(), 3);
    assert!(published
        .iter()
        .all(|m| m.body["tenant"] == "102290129340398"));

    // A body signed with another app's secret is refused whole.
    let stranger = keys::old(Provider::Zipmessage).signing.clone();
    let (status, reply) = t
        .post_signed(Provider::Whatsapp, &stranger, &body, &[])
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("invalid_signature"))
    );
}

/// Posts `body` as Meta does until a 200 (Meta retries anything else);
/// returns the answer's event ids.
async fn deliver(t: &TestStack, body: &[u8]) -> Vec<String> {
    for _ in 0..50 {
        let (status, reply) = t.post_as(Provider::Whatsapp, body, &[]).await;
        if status == 200 {
            return reply["event_ids"]
                .as_array()
                .expect("ids")
                .iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect();
        }
        assert!(
            status >= 500,
            "only a 5xx may refuse Meta: {status} {reply}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("still refused after 50 tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_keep_their_order_and_exactly_once_under_faults() {
    use futures::stream::{self, StreamExt};
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use switchboard_tests::faults::{Chaos, Fault, FaultProxy};
    // 40 bodies of two messages and a status, each delivered twice,
    // shuffled, 8 in flight, through a stack whose AWS calls cross the
    // fault proxy: PutItems throttled or answered lost after the write,
    // SendMessageBatch calls failed. A body is answered 200 only when all
    // its events are stored, so every retry stores what failed.
    const BATCHES: usize = 40;
    let proxy = FaultProxy::start(&switchboard_tests::moto_endpoint()).await;
    let t = TestStack::start_via(&proxy.url(), 2).await;
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
                probability: 0.05,
            },
            Chaos {
                operation: "SendMessageBatch",
                fault: Fault::Respond {
                    status: 500,
                    error_type: "AWS.SimpleQueueService.InternalError",
                },
                probability: 0.10,
            },
        ],
        0x0dd_ba7c,
    );
    let seed = fixture("whatsapp", "batch.json");
    let bodies: Vec<Vec<u8>> = (0..BATCHES)
        .map(|n| switchboard_tests::distinct(&seed, &format!("batch-{n}")))
        .collect();
    let mut deliveries: Vec<usize> = (0..BATCHES).flat_map(|n| [n, n]).collect();
    deliveries.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let answers: Vec<(usize, Vec<String>)> = stream::iter(deliveries)
        .map(|n| {
            let (t, bodies) = (&t, &bodies);
            async move { (n, deliver(t, &bodies[n]).await) }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut ids: HashMap<usize, Vec<String>> = HashMap::new();
    for (n, got) in answers {
        assert_eq!(got.len(), 3);
        let first = ids.entry(n).or_insert_with(|| got.clone());
        assert_eq!(
            *first, got,
            "every delivery of a body names the same events"
        );
    }
    assert!(!proxy.injected().is_empty(), "faults were injected");
    proxy.heal();
    assert_eq!(t.items().await.len(), 3 * BATCHES, "each event stored once");

    // Every event published; within each body, Sheena's message before the
    // status that follows it in her conversation.
    let got = t.consume(Family::Messages, 3 * BATCHES, SETTLE).await;
    let mut first_seen: HashMap<String, (usize, String)> = HashMap::new();
    for (position, message) in got.iter().enumerate() {
        let id = message.body["id"].as_str().unwrap_or_default().to_owned();
        let kind = message.body["type"].as_str().unwrap_or_default().to_owned();
        first_seen.entry(id).or_insert((position, kind));
    }
    assert_eq!(first_seen.len(), 3 * BATCHES, "every event delivered");
    let sheena = "102290129340398/106540352242922:16505551234";
    for events in ids.values() {
        // Told apart by what was published, not by the answer's order.
        let of = |kind: &str| {
            events
                .iter()
                .filter(|id| first_seen[*id].1 == kind)
                .find(|id| {
                    got.iter()
                        .any(|m| m.body["id"] == id.as_str() && m.body["subject"] == sheena)
                })
                .map(|id| first_seen[id].0)
                .expect("published")
        };
        assert!(
            of("message.created") < of("message.updated"),
            "a conversation's events in the body's order"
        );
    }
}
