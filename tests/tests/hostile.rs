//! Hostile input through the local gateway (HTTP, moto behind it): each
//! named case gets one of the defined outcomes with its stable code, and
//! every authentication bypass attempt gets 401 with nothing stored.

use chrono::Utc;
use serde_json::Value;
use std::collections::HashMap;
use switchboard_providers::bird;
use switchboard_tests::{fixture, keys, partoo_signature, TestStack};

const LIMIT: usize = 4096;

/// (name, path, headers, expected status, expected status word or code)
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a [u8])>, u16, &'a str);
/// (name, path, headers, body, expected error code)
type Attempt<'a> = (&'a str, &'a str, Vec<(String, Vec<u8>)>, Vec<u8>, &'a str);

async fn stack() -> TestStack {
    TestStack::start_with(HashMap::from([(
        "MAX_BODY_BYTES".to_owned(),
        LIMIT.to_string(),
    )]))
    .await
}

/// POST with exactly these headers (no default content type) and body.
async fn raw(t: &TestStack, path: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> (u16, Value) {
    let mut request = t.http.post(t.stack.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).expect("value"),
        );
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn zip_path() -> String {
    format!("/webhooks/zipmessage/{}", keys::zipmessage_token())
}

/// The status word (`accepted`, `quarantined`, …) or error code of a reply.
fn word(reply: &Value) -> &str {
    reply["status"]
        .as_str()
        .or_else(|| reply["error"].as_str())
        .unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_hostile_bodies_get_defined_outcomes() {
    let t = stack().await;
    let json: &[(&str, &[u8])] = &[("content-type", b"application/json")];
    let deep = format!("{}{}", "[".repeat(1500), "]".repeat(1500)).into_bytes();
    let deep_object = format!(
        r#"{{"type":"message_created","id":"deep","payload":{}{}}}"#,
        r#"{"a":"#.repeat(500),
        "}".repeat(500)
    )
    .into_bytes();
    let seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "message_created.json")).expect("seed");
    let mut huge_number = seed.clone();
    huge_number["id"] = "huge-number".into();
    huge_number["payload"]["message"]["id"] =
        serde_json::from_str("123456789012345678901234567890").expect("big number");
    let mut big = serde_json::to_vec(&seed).expect("encode");
    // Pad with trailing whitespace (still the same JSON) up to the limit.
    big.resize(LIMIT, b' ');
    let mut over = big.clone();
    over.push(b' ');
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("deeply nested array", deep, 200, "quarantined"),
        ("deeply nested object", deep_object, 200, "quarantined"),
        ("invalid UTF-8", b"{\"type\":\"\xff\xfe\"}".to_vec(), 200, "quarantined"),
        (
            "number beyond i64 in an id",
            serde_json::to_vec(&huge_number).expect("encode"),
            200,
            "accepted",
        ),
        (
            "duplicate keys",
            br#"{"type":"message_created","type":"conversation_created","id":"dup-keys","payload":{}}"#.to_vec(),
            200,
            "quarantined",
        ),
        ("empty body", Vec::new(), 200, "quarantined"),
        ("null", b"null".to_vec(), 200, "quarantined"),
        ("a JSON array", b"[1,2,3]".to_vec(), 200, "quarantined"),
        ("body exactly at the limit", big, 200, "duplicate"),
        // Authentic and over the limit: kept in part, never refused.
        ("one byte over the limit", over, 200, "quarantined"),
    ];
    // The at-limit body is the seed padded: decode it first so it is new.
    let (status, first) = raw(
        &t,
        &zip_path(),
        json,
        serde_json::to_vec(&seed).expect("encode"),
    )
    .await;
    assert_eq!((status, word(&first)), (200, "accepted"));
    for (name, body, status, expected) in cases {
        let (got, reply) = raw(&t, &zip_path(), json, body).await;
        assert_eq!((got, word(&reply)), (status, expected), "{name}: {reply}");
        if got >= 400 {
            assert!(reply["message"].is_string(), "{name}: a message says why");
        }
    }
    // Each quarantined body is stored once with its reason, the one over the
    // limit too (kept in part, `too_large`).
    let items = t.items().await;
    let quarantined = items.iter().filter(|i| i.reason.is_some()).count();
    assert_eq!(quarantined, 8, "{items:#?}");
    assert_eq!(items.len(), 10);
    assert_eq!(
        items
            .iter()
            .filter(|i| i
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("too_large")))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_types_query_strings_and_junk_headers() {
    let t = stack().await;
    let body = fixture("zipmessage", "conversation_created.json");
    let path = zip_path();
    let cases: Vec<Case> = vec![
        // An authentic body is decoded whatever its content type says: the
        // first copy is stored, every later one is a duplicate.
        (
            "text/plain",
            path.clone(),
            vec![("content-type", b"text/plain")],
            200,
            "accepted",
        ),
        (
            "form",
            path.clone(),
            vec![("content-type", b"application/x-www-form-urlencoded")],
            200,
            "duplicate",
        ),
        (
            "non-ASCII content type",
            path.clone(),
            vec![("content-type", b"application/\xe9json")],
            200,
            "duplicate",
        ),
        ("no content type", path.clone(), vec![], 200, "duplicate"),
        (
            "query string junk is ignored",
            format!("{path}?token=other&%ff=%00&x=%3Cscript%3E"),
            vec![("content-type", b"application/json; charset=utf-8")],
            200,
            "duplicate",
        ),
        (
            "junk headers are ignored",
            path.clone(),
            vec![
                ("content-type", b"application/json"),
                ("x-partoo-signature-v1", b"not base64 at all"),
                ("messagebird-signature", b"%%%%"),
                ("x-forwarded-host", b"evil.example"),
                ("x-junk", b"\xff\xfe\xfd"),
            ],
            200,
            "duplicate",
        ),
    ];
    for (name, path, headers, status, expected) in cases {
        let (got, reply) = raw(&t, &path, &headers, body.clone()).await;
        assert_eq!((got, word(&reply)), (status, expected), "{name}: {reply}");
    }
    assert_eq!(t.items().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_bypass_attempts_get_401_and_store_nothing() {
    let t = stack().await;
    let json = b"application/json".as_slice();
    let partoo_body = fixture("partoo", "message_created.json");
    let bird_body = fixture("bird", "conversation.updated.json");
    let zip_body = fixture("zipmessage", "message_created.json");
    let signature = partoo_signature(&keys::partoo(), &partoo_body);
    let other_body_signature = partoo_signature(&keys::partoo(), b"{\"type\":\"other\"}");
    let stranger = partoo_signature(&keys::partoo_stranger(), &partoo_body);
    let truncated = signature[..signature.len() - 4].to_owned();
    let hmac_as_partoo = bird::sign(keys::bird_key().as_bytes(), "0", "x", &partoo_body);

    let mut attempts: Vec<Attempt> = vec![
        (
            "partoo: no signature",
            "/webhooks/partoo",
            vec![],
            partoo_body.clone(),
            "missing_signature",
        ),
        (
            "partoo: empty signature",
            "/webhooks/partoo",
            vec![("x-partoo-signature-v1".into(), b"".to_vec())],
            partoo_body.clone(),
            "missing_signature",
        ),
        (
            "partoo: truncated signature",
            "/webhooks/partoo",
            vec![("x-partoo-signature-v1".into(), truncated.into_bytes())],
            partoo_body.clone(),
            "malformed_signature",
        ),
        (
            "partoo: valid signature of another body",
            "/webhooks/partoo",
            vec![(
                "x-partoo-signature-v1".into(),
                other_body_signature.into_bytes(),
            )],
            partoo_body.clone(),
            "invalid_signature",
        ),
        (
            "partoo: a key Partoo does not use",
            "/webhooks/partoo",
            vec![("x-partoo-signature-v1".into(), stranger.into_bytes())],
            partoo_body.clone(),
            "invalid_signature",
        ),
        (
            "partoo: Bird's credentials",
            "/webhooks/partoo",
            vec![("x-partoo-signature-v1".into(), hmac_as_partoo.into_bytes())],
            partoo_body.clone(),
            "malformed_signature",
        ),
    ];

    let now = Utc::now().timestamp();
    let url = t.bird_url();
    let bird_sig = |key: &str, ts: i64, url: &str, body: &[u8]| {
        bird::sign(key.as_bytes(), &ts.to_string(), url, body)
    };
    let bird_headers = |ts: i64, sig: String| {
        vec![
            (
                "messagebird-request-timestamp".to_owned(),
                ts.to_string().into_bytes(),
            ),
            ("messagebird-signature".to_owned(), sig.into_bytes()),
        ]
    };
    let good = bird_sig(keys::bird_key(), now, &url, &bird_body);
    attempts.extend([
        (
            "bird: no headers",
            "/webhooks/bird",
            vec![],
            bird_body.clone(),
            "missing_signature",
        ),
        (
            "bird: no timestamp",
            "/webhooks/bird",
            vec![("messagebird-signature".into(), good.clone().into_bytes())],
            bird_body.clone(),
            "missing_timestamp",
        ),
        (
            "bird: empty signature",
            "/webhooks/bird",
            bird_headers(now, String::new()),
            bird_body.clone(),
            "missing_signature",
        ),
        (
            "bird: truncated signature",
            "/webhooks/bird",
            bird_headers(now, good[..20].to_owned()),
            bird_body.clone(),
            "malformed_signature",
        ),
        (
            "bird: valid signature of another body",
            "/webhooks/bird",
            bird_headers(now, bird_sig(keys::bird_key(), now, &url, b"{}")),
            bird_body.clone(),
            "invalid_signature",
        ),
        (
            "bird: a genuine request 37 hours old",
            "/webhooks/bird",
            bird_headers(
                now - 37 * 3600,
                bird_sig(keys::bird_key(), now - 37 * 3600, &url, &bird_body),
            ),
            bird_body.clone(),
            "timestamp_out_of_window",
        ),
        (
            "bird: a genuine request 10 minutes ahead",
            "/webhooks/bird",
            bird_headers(
                now + 600,
                bird_sig(keys::bird_key(), now + 600, &url, &bird_body),
            ),
            bird_body.clone(),
            "timestamp_out_of_window",
        ),
        (
            "bird: a forged request 37 hours old (the signature is checked first)",
            "/webhooks/bird",
            bird_headers(
                now - 37 * 3600,
                bird_sig("not-the-key", now - 37 * 3600, &url, &bird_body),
            ),
            bird_body.clone(),
            "invalid_signature",
        ),
        (
            "bird: timestamp 10 minutes ahead",
            "/webhooks/bird",
            bird_headers(
                now + 600,
                bird_sig(keys::bird_key(), now + 600, &url, &bird_body),
            ),
            bird_body.clone(),
            "timestamp_out_of_window",
        ),
        (
            "bird: valid signature over another URL",
            "/webhooks/bird",
            bird_headers(
                now,
                bird_sig(
                    keys::bird_key(),
                    now,
                    "https://evil.example/webhooks/bird",
                    &bird_body,
                ),
            ),
            bird_body.clone(),
            "invalid_signature",
        ),
        (
            "bird: the ZipMessage token as key",
            "/webhooks/bird",
            bird_headers(
                now,
                bird_sig(keys::zipmessage_token(), now, &url, &bird_body),
            ),
            bird_body.clone(),
            "invalid_signature",
        ),
        (
            "bird: a Partoo signature",
            "/webhooks/bird",
            bird_headers(now, partoo_signature(&keys::partoo(), &bird_body)),
            bird_body.clone(),
            "malformed_signature",
        ),
    ]);

    let token = keys::zipmessage_token();
    let zip_paths = [
        (
            "zipmessage: token in upper case",
            format!("/webhooks/zipmessage/{}", token.to_uppercase()),
        ),
        (
            "zipmessage: token plus one byte",
            format!("/webhooks/zipmessage/{token}x"),
        ),
        (
            "zipmessage: token minus one byte",
            format!("/webhooks/zipmessage/{}", &token[..token.len() - 1]),
        ),
        (
            "zipmessage: the Bird key as token",
            format!("/webhooks/zipmessage/{}", keys::bird_key()),
        ),
        (
            "zipmessage: percent-encoded token",
            // Its first character percent-encoded: the same token to a URL
            // decoder, never to the exact comparison.
            format!(
                "/webhooks/zipmessage/%{:02X}{}",
                token.as_bytes()[0],
                &token[1..]
            ),
        ),
    ];
    for (name, path, headers, body, code) in attempts {
        let mut all: Vec<(&str, &[u8])> = vec![("content-type", json)];
        all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        let (status, reply) = raw(&t, path, &all, body).await;
        assert_eq!((status, word(&reply)), (401, code), "{name}: {reply}");
    }
    for (name, path) in zip_paths {
        let (status, reply) = raw(&t, &path, &[("content-type", json)], zip_body.clone()).await;
        assert_eq!(
            (status, word(&reply)),
            (401, "invalid_token"),
            "{name}: {reply}"
        );
    }
    // No token at all is not a ZipMessage route.
    let (status, _) = raw(
        &t,
        "/webhooks/zipmessage/",
        &[("content-type", json)],
        zip_body,
    )
    .await;
    assert_eq!(status, 404);
    assert!(t.items().await.is_empty(), "nothing unauthentic is stored");
}
