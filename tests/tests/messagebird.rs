//! The legacy MessageBird Conversations API, end to end through the local
//! gateway against moto: a `message.created` signed with
//! `MessageBird-Signature-JWT` as MessageBird signs it reaches the messages
//! queue once; a token for another URL, an expired one and a labelled key's
//! tenant behave as documented. Needs the moto server `make test` starts.

use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_providers::messagebird::{sign, SIGNATURE_HEADER};
use switchboard_tests::{fixture, keys, TestStack};
use switchboard_types::{Family, Provider};

const SETTLE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_message_created_reaches_the_messages_queue_once() {
    let t = TestStack::start().await;
    let body = fixture("messagebird", "message.created.json");
    let (status, reply) = t.post_as(Provider::Messagebird, &body, &[]).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    // MessageBird signs each attempt anew: a retry is a new token over the
    // same body, and the same event.
    let (_, again) = t.post_as(Provider::Messagebird, &body, &[]).await;
    assert_eq!(again["status"], "duplicate");

    let got = t.drain(Family::Messages, 1, SETTLE).await;
    assert_eq!(got.len(), 1);
    let event = &got[0].body;
    assert_eq!(event["type"], "message.created");
    assert_eq!(event["source"], "urn:switchboard:messagebird");
    assert_eq!(event["subject"], "2e15efafec384e1c82e9842075e87beb");
    assert_eq!(event["time"], "2018-08-24T09:49:01Z");
    assert_eq!(
        got[0].group_id,
        "messagebird:2e15efafec384e1c82e9842075e87beb"
    );
    let message = &event["data"]["message"];
    assert_eq!(message["id"], "5f3437fdb8444583aea093a047ac014b");
    assert_eq!(message["text"], "Hello world");
    assert_eq!(message["direction"], "incoming");
    assert_eq!(message["channel"], "sms");
    assert_eq!(message["sender"]["phone"], "31612345678");
    assert_eq!(message["sender"]["name"], "Foo Bar");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_for_another_url_or_past_their_window_are_refused() {
    let t = TestStack::start().await;
    let body = fixture("messagebird", "message.created.json");
    let path = "/webhooks/messagebird";
    let key = keys::current(Provider::Messagebird).signing.as_bytes();
    let now = chrono::Utc::now().timestamp();
    for (url, at, code) in [
        // Signed for the URL a Host header would claim, not the configured one.
        (
            "https://attacker.example/webhooks/messagebird".to_owned(),
            now,
            "invalid_claim",
        ),
        // Ten minutes past its 60 s life: beyond the 300 s leeway.
        (t.stack.url(path), now - 660, "token_out_of_window"),
    ] {
        let token = sign(key, &url, &body, at).expect("signs");
        let (status, reply) = t.post(path, &body, &[(SIGNATURE_HEADER, token)]).await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (401, Some(code)),
            "{url}"
        );
    }
    // Within the leeway (a clock 4 minutes behind): accepted.
    let token = sign(key, &t.stack.url(path), &body, now - 240).expect("signs");
    let (status, _) = t.post(path, &body, &[(SIGNATURE_HEADER, token)]).await;
    assert_eq!(status, 200);
    assert_eq!(t.items().await.len(), 1, "only the valid one is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labelled_messagebird_key_names_the_tenant() {
    let labelled = "acme's MessageBird signing key";
    let secret = json!([{"tenant": "acme", "key": labelled}]);
    let t = TestStack::start_with_secrets(
        HashMap::from([("MESSAGEBIRD_SECRET_ID".to_owned(), secret.to_string())]),
        HashMap::new(),
    )
    .await;
    let body = fixture("messagebird", "conversation.created.json");
    let (status, _) = t
        .post_signed(Provider::Messagebird, labelled, &body, &[])
        .await;
    assert_eq!(status, 200);
    let got = t.drain(Family::Conversations, 1, SETTLE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["type"], "conversation.created");
    assert_eq!(got[0].body["tenant"], "acme");
    assert_eq!(
        got[0].body["subject"],
        "acme/2e15efafec384e1c82e9842075e87beb"
    );
}
