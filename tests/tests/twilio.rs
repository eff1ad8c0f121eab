//! Twilio, end to end through the local gateway against moto, from
//! Twilio's documented behaviour: form bodies signed over the URL Twilio
//! requested (its query included) and the sorted parameters; an incoming
//! SMS and the status callbacks of a message sent to the same contact in
//! one conversation, each status its own event and a repeated one a
//! duplicate; the form published as a JSON object of arrays; an account's
//! labelled auth token naming its tenant. On the code before Twilio, every
//! request here was a 404. Needs the moto server `make test` starts.

use std::collections::HashMap;
use std::time::Duration;
use switchboard_providers::twilio::{self, SIGNATURE_HEADER};
use switchboard_tests::{fixture, keys, TestStack};
use switchboard_types::{Family, Provider};

const SETTLE: Duration = Duration::from_millis(1500);
const ROUTE: &str = "/webhooks/twilio";

fn form_type() -> (&'static str, String) {
    (
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_and_its_reply_statuses_are_one_conversation() {
    let t = TestStack::start().await;
    let inbound = fixture("twilio", "sms.inbound.form");
    let (status, reply) = t.post_as(Provider::Twilio, &inbound, &[form_type()]).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    // A status callback of the business's reply, then the same callback
    // again (Twilio may repeat it): one event.
    let delivered = String::from_utf8(fixture("twilio", "status.delivered.form")).expect("ASCII");
    let sent = delivered.replace("=delivered", "=sent");
    for (body, expected) in [
        (&sent, "accepted"),
        (&delivered, "accepted"),
        (&delivered, "duplicate"),
    ] {
        let (status, reply) = t
            .post_as(Provider::Twilio, body.as_bytes(), &[form_type()])
            .await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some(expected)),
            "{reply}"
        );
    }
    let got = t.consume(Family::Messages, 3, SETTLE).await;
    assert_eq!(got.len(), 3);
    let subjects: Vec<&str> = got
        .iter()
        .filter_map(|m| m.body["subject"].as_str())
        .collect();
    assert!(
        subjects.iter().all(|s| *s == "+15017122661:+15558675310"),
        "{subjects:?}"
    );
    let types: Vec<(&str, &str)> = got
        .iter()
        .map(|m| {
            (
                m.body["type"].as_str().unwrap_or_default(),
                m.body["data"]["message"]["status"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("message.created", "received"),
            ("message.updated", "sent"),
            ("message.updated", "delivered"),
        ]
    );
    let first = &got[0].body;
    assert_eq!(first["data"]["message"]["direction"], "incoming");
    assert_eq!(first["data"]["message"]["text"], "Hello from Twilio!");
    assert_eq!(
        first["data"]["message"]["recipient"]["phone"],
        "+15017122661"
    );
    // The form, as a JSON object of arrays.
    assert_eq!(first["data"]["raw"]["Body"][0], "Hello from Twilio!");
    assert_eq!(first["data"]["raw"]["From"][0], "+15558675310");
    assert_eq!(got[2].body["data"]["message"]["direction"], "outgoing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signature_covers_the_url_twilio_requested_with_its_query() {
    let t = TestStack::start().await;
    let body = fixture("twilio", "whatsapp.inbound.form");
    let token = &keys::current(Provider::Twilio).signing;
    let path = format!("{ROUTE}?customer=acme&x=1");
    // Signed for the URL with its query, as Twilio signs it: accepted.
    let signature = twilio::sign(token, &t.stack.url(&path), &body);
    let headers = [(SIGNATURE_HEADER, signature.clone()), form_type()];
    let (status, reply) = t.post(&path, &body, &headers).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    // The same signature on another query, or without it: refused.
    for other in [format!("{ROUTE}?customer=globex&x=1"), ROUTE.to_owned()] {
        let (status, reply) = t.post(&other, &body, &headers).await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (401, Some("invalid_signature")),
            "{other}"
        );
        assert!(reply["message"].as_str().is_some_and(|m| m.contains("URL")));
    }
    let got = t.consume(Family::Messages, 1, SETTLE).await;
    assert_eq!(got.len(), 1);
    let message = &got[0].body["data"]["message"];
    assert_eq!(message["channel"], "whatsapp");
    assert_eq!(message["sender"]["phone"], "+15558675310");
    assert_eq!(message["sender"]["name"], "Sheena");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_labelled_token_names_its_tenant() {
    let token = "0123456789abcdef0123456789abcdef";
    let secret = serde_json::json!([format!("acme:{token}")]);
    let t = TestStack::start_with_secrets(
        HashMap::from([("TWILIO_SECRET_ID".to_owned(), secret.to_string())]),
        HashMap::new(),
    )
    .await;
    let body = fixture("twilio", "mms.inbound.form");
    let (status, _) = t
        .post_signed(Provider::Twilio, token, &body, &[form_type()])
        .await;
    assert_eq!(status, 200);
    let got = t.consume(Family::Messages, 1, SETTLE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["tenant"], "acme");
    assert_eq!(got[0].body["subject"], "acme/+15017122661:+15558675310");
    assert!(got[0].body["data"]["message"]["media_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://api.twilio.com/")));
}
