//! Whose event it is: a credential's tenant label, end to end through the
//! local gateway against moto. Two ZipMessage accounts can share a
//! conversation slug (slugs are unique per account only), one Bird
//! deployment serves several subscriptions, and one Partoo key signs every
//! organisation (`payload.org_id` says whose). Needs the moto server
//! `make test` starts (AWS_ENDPOINT_URL).

use chrono::Utc;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_pipeline::{replay, Run, ToolRequest};
use switchboard_providers::timestamp;
use switchboard_tests::{fixture, keys, QueueMessage, TestStack, PARTOO_SEED_ORG};
use switchboard_types::{Family, Provider};

const SETTLE: Duration = Duration::from_millis(1500);

/// Two URL-safe ZipMessage tokens of two accounts.
const ACME_TOKEN: &str = "acme-token-0123456789abcdef";
const GLOBEX_TOKEN: &str = "globex-token-0123456789abcdef";

fn by_tenant(messages: Vec<QueueMessage>) -> HashMap<String, QueueMessage> {
    messages
        .into_iter()
        .map(|m| {
            let tenant = m.body["tenant"].as_str().unwrap_or("(none)").to_owned();
            (tenant, m)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slug_from_two_zipmessage_accounts_is_two_conversations() {
    let t = TestStack::start_with(HashMap::from([(
        "ZIPMESSAGE_TOKENS".to_owned(),
        format!("acme:{ACME_TOKEN},globex:{GLOBEX_TOKEN}"),
    )]))
    .await;
    // The same documented body, sent by both accounts: two events.
    let body = fixture("zipmessage", "message_created.json");
    let mut ids = Vec::new();
    for token in [ACME_TOKEN, GLOBEX_TOKEN] {
        let (status, reply) = t.post_signed(Provider::Zipmessage, token, &body, &[]).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")));
        ids.push(reply["event_ids"][0].as_str().expect("an id").to_owned());
    }
    assert_ne!(ids[0], ids[1], "two accounts, two events");
    // A redelivery by one account is still a duplicate.
    let (_, again) = t
        .post_signed(Provider::Zipmessage, ACME_TOKEN, &body, &[])
        .await;
    assert_eq!(again["status"], "duplicate");

    let got = by_tenant(t.drain(Family::Messages, 2, SETTLE).await);
    assert_eq!(got.len(), 2, "{:?}", got.keys());
    let slug = "april-1st-2022-conversation1";
    for tenant in ["acme", "globex"] {
        let m = &got[tenant];
        let subject = format!("{tenant}/{slug}");
        assert_eq!(m.body["subject"], json!(subject));
        assert_eq!(m.body["data"]["conversation"]["key"], json!(subject));
        assert_eq!(m.group_id, format!("zipmessage:{tenant}/{slug}"));
        assert_eq!(m.attributes["tenant"], tenant, "consumers filter on it");
    }
    let items = t.items().await;
    let mut stored: Vec<&str> = items.iter().map(|i| i.tenant.as_str()).collect();
    stored.sort_unstable();
    assert_eq!(stored, ["acme", "globex"]);

    // Replay selects by tenant: one account's window, not the other's.
    let request: ToolRequest = serde_json::from_value(json!({
        "window": {
            "from": timestamp::format(Utc::now() - chrono::Duration::hours(1)),
            "to": timestamp::format(Utc::now() + chrono::Duration::hours(1)),
            "tenant": "globex",
        },
        "replay_id": "globex-only",
    }))
    .expect("a tool request");
    let (store, publisher) = (t.store_of("replay"), t.publisher_of("replay"));
    let selection = request.selection().expect("valid");
    let report = replay(
        &store,
        &publisher,
        &selection,
        "globex-only",
        &Run::to_the_end(),
    )
    .await
    .expect("replay");
    assert_eq!((report.matched, report.published), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlabelled_credential_is_tenant_default_and_keeps_todays_subject() {
    let t = TestStack::start().await;
    let body = fixture("zipmessage", "message_created.json");
    let (status, _) = t.post_zipmessage(&body).await;
    assert_eq!(status, 200);
    let got = t.drain(Family::Messages, 1, SETTLE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["tenant"], "default");
    assert_eq!(got[0].attributes["tenant"], "default");
    assert_eq!(got[0].body["subject"], "april-1st-2022-conversation1");
    assert_eq!(got[0].group_id, "zipmessage:april-1st-2022-conversation1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bird_key_labelled_in_a_json_secret_names_the_tenant() {
    // Bird keys are arbitrary strings, so a label comes only from JSON: an
    // object in the secret's array. A plain string beside it stays unlabelled.
    let labelled = "acme signing key: any characters, even , and :";
    let secret = json!([{"tenant": "acme", "key": labelled}, keys::bird_key()]);
    let t = TestStack::start_with_secrets(
        HashMap::from([("BIRD_SECRET_ID".to_owned(), secret.to_string())]),
        HashMap::new(),
    )
    .await;
    let body = fixture("bird", "conversation.updated.json");
    let (status, reply) = t.post_signed(Provider::Bird, labelled, &body, &[]).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")));
    let (status, reply) = t.post_bird(&body, &[]).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "the same body under another tenant is another event"
    );
    let got = by_tenant(t.drain(Family::Conversations, 2, SETTLE).await);
    let conversation = "badbf15c-bad3-4bf3-9223-6b7f414f9770";
    assert_eq!(got["acme"].body["subject"], format!("acme/{conversation}"));
    assert_eq!(got["acme"].attributes["tenant"], "acme");
    assert_eq!(got["default"].body["subject"], conversation);
    assert_eq!(got["default"].group_id, format!("bird:{conversation}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partoo_events_tenant_is_its_organisation() {
    // One key signs every organisation: the body's org_id says whose.
    let t = TestStack::start().await;
    let body = fixture("partoo", "message_created.json");
    let (status, _) = t.post_partoo(&body).await;
    assert_eq!(status, 200);
    let got = t.drain(Family::Messages, 1, SETTLE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["tenant"], PARTOO_SEED_ORG);
    assert_eq!(got[0].attributes["tenant"], PARTOO_SEED_ORG);
    assert_eq!(got[0].body["subject"], format!("{PARTOO_SEED_ORG}/123"));
    assert_eq!(got[0].group_id, format!("partoo:{PARTOO_SEED_ORG}/123"));
}

#[test]
fn a_label_that_breaks_the_rule_stops_the_start_with_its_position() {
    // Labels are [a-z0-9-]{1,32}; the value itself is never echoed.
    let config = switchboard_aws::config::WebhookConfig::from_lookup(
        Provider::Zipmessage,
        &|name| match name {
            "ZIPMESSAGE_TOKENS" => Some(format!("Acme:{ACME_TOKEN}")),
            "TABLE_NAME" => Some("t".into()),
            _ => None,
        },
    );
    let text = config.expect_err("refused at start-up").to_string();
    assert!(
        text.contains("number 1") && text.contains("[a-z0-9-]"),
        "{text}"
    );
    assert!(!text.contains(ACME_TOKEN), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_tenants_key_never_shares_a_subject_or_group_with_a_labelled_tenants() {
    const DEFAULT_TOKEN: &str = "default-token-0123456789abcdef";
    let t = TestStack::start_with(HashMap::from([(
        "ZIPMESSAGE_TOKENS".to_owned(),
        format!("acme:{ACME_TOKEN},{DEFAULT_TOKEN}"),
    )]))
    .await;
    // The default tenant's conversation `acme/x`, and tenant acme's `x`.
    let seed: serde_json::Value =
        serde_json::from_slice(&fixture("zipmessage", "conversation_created.json")).expect("seed");
    for (token, slug) in [(DEFAULT_TOKEN, "acme/x"), (ACME_TOKEN, "x")] {
        let mut body = seed.clone();
        body["payload"]["conversation"]["slug"] = json!(slug);
        body["id"] = json!(format!("created-{slug}"));
        let (status, reply) = t
            .post_signed(
                Provider::Zipmessage,
                token,
                body.to_string().as_bytes(),
                &[],
            )
            .await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")));
    }
    let got = by_tenant(t.consume(Family::Conversations, 2, SETTLE).await);
    assert_eq!(got.len(), 2, "{:?}", got.keys());
    assert_eq!(got["default"].body["subject"], "default/acme/x");
    assert_eq!(got["default"].group_id, "zipmessage:default/acme/x");
    assert_eq!(got["acme"].body["subject"], "acme/x");
    assert_eq!(got["acme"].group_id, "zipmessage:acme/x");

    // A subject names its tenant: replayed by subject alone, each is its own.
    let (store, publisher) = (t.store_of("replay"), t.publisher_of("replay"));
    for (subject, tenant) in [("acme/x", "acme"), ("default/acme/x", "default")] {
        let request: ToolRequest = serde_json::from_value(json!({
            "conversation": {"provider": "zipmessage", "subject": subject},
        }))
        .expect("a tool request");
        let report = replay(
            &store,
            &publisher,
            &request.selection().expect("valid"),
            subject,
            &Run::to_the_end(),
        )
        .await
        .expect("replay");
        assert_eq!((report.matched, report.published), (1, 1), "{subject}");
        let replayed = t.consume(Family::Conversations, 1, SETTLE).await;
        assert_eq!(replayed[0].body["tenant"], tenant, "{subject}");
    }
    // Another tenant's subject under a tenant it does not name: refused,
    // with the tenant it names, never a silent zero.
    let request: ToolRequest = serde_json::from_value(json!({
        "conversation": {"provider": "zipmessage", "tenant": "default", "subject": "acme/x"},
    }))
    .expect("a tool request");
    let refused = request.selection().expect_err("refused");
    assert!(refused.0.contains("\"tenant\": \"acme\""), "{refused}");
}
