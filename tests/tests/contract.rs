//! The HTTP contract, walked: the codes `docs/openapi.yaml` lists (error
//! codes and quarantine reasons) are the codes `docs/http.md` lists, and each one is answered to some request through the local
//! gateway, in the documented shape. A code no request can reach is not
//! listed.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchboard_providers::registry::{descriptor, SignRequest};
use switchboard_tests::faults::{Fault, FaultProxy};
use switchboard_tests::{distinct, fixture, keys, moto_endpoint, root, TestStack};
use switchboard_types::Provider;

const LIMIT: usize = 4096;

/// The codes the OpenAPI document lists: `Error.error` and `Reason` (a
/// quarantined event's, in `Stored` and each of its `events`).
fn openapi_codes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/openapi.yaml")).expect("openapi");
    let doc: Value = serde_yaml::from_str(&text).expect("YAML");
    let schemas = &doc["components"]["schemas"];
    [
        &schemas["Error"]["properties"]["error"]["enum"],
        &schemas["Reason"]["enum"],
    ]
    .into_iter()
    .flat_map(|codes| codes.as_array().expect("an enum").iter())
    .map(|code| code.as_str().expect("a string").to_owned())
    .collect()
}

/// The codes the HTTP contract's status table (`docs/http.md`) lists:
/// each code span of lowercase words, and each `"error"` or `"reason"` of
/// an example body.
fn documented_codes() -> BTreeSet<String> {
    let section = std::fs::read_to_string(root().join("docs/http.md")).expect("docs/http.md");
    let code_span = regex::Regex::new(r"`([a-z]+(?:_[a-z]+)+)`").expect("regex");
    let example = regex::Regex::new(r#""(?:error|reason)":"([a-z_]+)""#).expect("regex");
    section
        .lines()
        .filter(|line| {
            ["| `2", "| `4", "| `5"]
                .iter()
                .any(|status| line.starts_with(status))
        })
        .flat_map(|row| {
            code_span
                .captures_iter(row)
                .chain(example.captures_iter(row))
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Headers `provider` would send with `body`, signed for `url` at `timestamp`.
fn signed(
    provider: Provider,
    body: &[u8],
    url: &str,
    timestamp: i64,
) -> Vec<(&'static str, String)> {
    (descriptor(provider).sign)(&SignRequest {
        key: &keys::current(provider).signing,
        url,
        body,
        timestamp,
    })
    .expect("a test key signs")
}

#[test]
fn the_contract_and_the_openapi_document_list_the_same_codes() {
    assert_eq!(documented_codes(), openapi_codes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_code_is_answered_to_some_request() {
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let t = TestStack::start_configured(|options| {
        options.endpoint = Some(proxy.url());
        options.env_overrides = HashMap::from([("MAX_BODY_BYTES".into(), LIMIT.to_string())]);
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let zipmessage =
        descriptor(Provider::Zipmessage).path(&keys::current(Provider::Zipmessage).signing);
    let seed = fixture("zipmessage", "message_created.json");
    let zip = |tag: &str| distinct(&seed, tag);
    let partoo = fixture("partoo", "message_created.json");
    let bird = fixture("bird", "conversation.updated.json");
    let bird_url = t.stack.url("/webhooks/bird");
    let legacy = fixture("messagebird", "message.created.json");
    let legacy_url = t.stack.url("/webhooks/messagebird");
    let long_type = format!(
        r#"{{"type":"{}","id":"long","payload":{{}}}}"#,
        "t".repeat(300)
    );
    let mut too_large = zip("too-large");
    too_large.resize(LIMIT + 1, b' ');
    let other_org = String::from_utf8(partoo.clone())
        .expect("utf-8")
        .replace("\"org_id\": 123", "\"org_id\": 999")
        .replace("\"org_id\":123", "\"org_id\":999");
    assert_ne!(other_org.as_bytes(), &partoo[..], "the seed names org 123");

    // (what, path, headers, body): each answered with the code it names.
    type Case = (&'static str, String, Vec<(&'static str, String)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (
            "not_found",
            "/webhooks/nowhere".into(),
            vec![],
            b"{}".to_vec(),
        ),
        (
            "invalid_token",
            "/webhooks/zipmessage/not-a-token".into(),
            vec![],
            zip("t1"),
        ),
        (
            "missing_signature",
            "/webhooks/partoo".into(),
            vec![],
            partoo.clone(),
        ),
        (
            "malformed_signature",
            "/webhooks/partoo".into(),
            vec![("x-partoo-signature-v1", "not base64!".into())],
            partoo.clone(),
        ),
        (
            "invalid_signature",
            "/webhooks/partoo".into(),
            signed(Provider::Partoo, b"{}", "", now),
            partoo.clone(),
        ),
        (
            "missing_timestamp",
            "/webhooks/bird".into(),
            signed(Provider::Bird, &bird, &bird_url, now)
                .into_iter()
                .filter(|(name, _)| *name != "messagebird-request-timestamp")
                .collect(),
            bird.clone(),
        ),
        (
            "malformed_timestamp",
            "/webhooks/bird".into(),
            signed(Provider::Bird, &bird, &bird_url, now)
                .into_iter()
                .map(|(name, value)| match name {
                    "messagebird-request-timestamp" => (name, "yesterday".into()),
                    _ => (name, value),
                })
                .collect(),
            bird.clone(),
        ),
        (
            "timestamp_out_of_window",
            "/webhooks/bird".into(),
            signed(Provider::Bird, &bird, &bird_url, now - 48 * 3600),
            bird.clone(),
        ),
        (
            "token_out_of_window",
            "/webhooks/messagebird".into(),
            signed(Provider::Messagebird, &legacy, &legacy_url, now - 3600),
            legacy.clone(),
        ),
        (
            "invalid_claim",
            "/webhooks/messagebird".into(),
            signed(
                Provider::Messagebird,
                &legacy,
                "https://elsewhere.example/hook",
                now,
            ),
            legacy.clone(),
        ),
        (
            "malformed_json",
            zipmessage.clone(),
            vec![],
            b"not json".to_vec(),
        ),
        (
            "no_envelope",
            zipmessage.clone(),
            vec![],
            br#"{"hello":"world"}"#.to_vec(),
        ),
        (
            "missing_field",
            zipmessage.clone(),
            vec![],
            br#"{"type":"message_created","id":"no-payload-fields","payload":{}}"#.to_vec(),
        ),
        (
            "type_too_long",
            zipmessage.clone(),
            vec![],
            long_type.into_bytes(),
        ),
        (
            "org_not_allowed",
            "/webhooks/partoo".into(),
            signed(Provider::Partoo, other_org.as_bytes(), "", now),
            other_org.into_bytes(),
        ),
        ("too_large", zipmessage.clone(), vec![], too_large),
    ];
    let mut answered: BTreeMap<String, Value> = BTreeMap::new();
    let mut record = |expected: &str, status: u16, reply: Value| {
        let code = reply["reason"]
            .as_str()
            .or(reply["error"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(code, expected, "{status} {reply}");
        if reply.get("reason").is_some() {
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["status"], "quarantined", "{reply}");
            assert!(
                reply["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{reply}"
            );
        } else {
            assert!(status >= 400, "{reply}");
            assert!(
                reply["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{reply}"
            );
        }
        answered.insert(code, reply);
    };
    for (expected, path, headers, body) in cases {
        let (status, reply) = t.post(&path, &body, &headers).await;
        record(expected, status, reply);
    }
    // The gateway's own refusals: not POST, larger than Lambda carries.
    let get = t
        .http
        .get(t.stack.url("/webhooks/partoo"))
        .send()
        .await
        .expect("answered");
    let status = get.status().as_u16();
    record(
        "method_not_allowed",
        status,
        get.json().await.expect("JSON"),
    );
    // WhatsApp's URL check with a token that is not configured.
    let check = t
        .http
        .get(t.stack.url(&format!(
            "/webhooks/whatsapp?{}",
            switchboard_providers::whatsapp::url_check_query("not-ours", "7")
        )))
        .send()
        .await
        .expect("answered");
    let status = check.status().as_u16();
    assert_eq!(status, 403);
    record(
        "invalid_verify_token",
        status,
        check.json().await.expect("JSON"),
    );
    let huge = t
        .http
        .post(t.stack.url("/webhooks/partoo"))
        .body(vec![b' '; 6 * 1024 * 1024 + 1])
        .send()
        .await
        .expect("answered");
    let status = huge.status().as_u16();
    record(
        "payload_too_large",
        status,
        huge.json().await.expect("JSON"),
    );
    // Storage: refused for good (kept as quarantined), then unavailable.
    proxy.arm(
        "PutItem",
        Fault::Respond {
            status: 400,
            error_type: "com.amazon.coral.validate#ValidationException",
        },
        1,
    );
    let (status, reply) = t.post(&zipmessage, &zip("refused"), &[]).await;
    record("storage_refused", status, reply);
    proxy.arm("PutItem", Fault::INTERNAL_SERVER_ERROR, 100);
    let (status, reply) = t.post(&zipmessage, &zip("unavailable"), &[]).await;
    record("storage_unavailable", status, reply);
    proxy.heal();

    let answered_codes: BTreeSet<String> = answered.keys().cloned().collect();
    assert_eq!(
        answered_codes,
        openapi_codes(),
        "every listed code, and no other"
    );
    // A Bird signature for another URL or time says what it was compared with.
    let (_, other_url) = t
        .post(
            "/webhooks/bird",
            &bird,
            &signed(
                Provider::Bird,
                &bird,
                "https://elsewhere.example/webhooks/bird",
                now,
            ),
        )
        .await;
    let message = other_url["message"].as_str().unwrap_or_default();
    assert_eq!(other_url["error"], "invalid_signature");
    assert!(
        ["timestamp", "URL", "body"]
            .iter()
            .all(|w| message.contains(w)),
        "{message}"
    );
}
