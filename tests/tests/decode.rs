//! Every seed payload and documented variant decodes to the right canonical
//! event, and every produced CloudEvent validates against the committed schema.

use serde_json::{json, Value};
use switchboard_pipeline::fanout::cloudevent;
use switchboard_pipeline::item;
use switchboard_providers::registry::descriptor;
use switchboard_providers::{decode_body, DecodeError, Decoded, Delivery};
use switchboard_tests::{fixture, root, seed_events, seed_parts, seeds};
use switchboard_types::{cloudevent_schema, cloudevent_schema_draft07, Family, Provider, Status};

fn decode(provider: Provider, body: &[u8]) -> Decoded {
    decode_body(provider, body).unwrap_or_else(|e| panic!("{provider} body should decode: {e}"))
}

fn zip(body: Value) -> Result<Decoded, DecodeError> {
    decode_body(Provider::Zipmessage, body.to_string().as_bytes())
}
fn partoo(body: Value) -> Result<Decoded, DecodeError> {
    decode_body(Provider::Partoo, body.to_string().as_bytes())
}
fn bird(body: Value) -> Result<Decoded, DecodeError> {
    decode_body(Provider::Bird, body.to_string().as_bytes())
}

fn time(d: &Decoded) -> String {
    d.occurred_at
        .map(switchboard_providers::timestamp::format)
        .unwrap_or_default()
}

#[test]
fn zipmessage_conversation_created_seed() {
    let d = decode(
        Provider::Zipmessage,
        &fixture("zipmessage", "conversation_created.json"),
    );
    assert_eq!(d.event_type, "conversation.created");
    assert_eq!(
        d.conversation_key.as_deref(),
        Some("april-1st-2022-conversation1")
    );
    assert_eq!(d.dedup_key, "id:f6689254-9d5f-43b0-9de1-125a6ca639f1");
    assert_eq!(time(&d), "2022-04-01T14:23:59.799Z");
    let c = d.normalized.conversation.expect("conversation");
    assert_eq!(c.id.as_deref(), Some("268"));
    assert_eq!(c.title.as_deref(), Some("April 1st, 2022 Conversation"));
    assert_eq!(
        c.created_at.as_deref(),
        Some("2022-04-01T14:23:59Z"),
        "epoch-tail timestamp"
    );
}

#[test]
fn zipmessage_message_created_seed_keys_by_slug_and_strips_html() {
    let d = decode(
        Provider::Zipmessage,
        &fixture("zipmessage", "message_created.json"),
    );
    assert_eq!(d.event_type, "message.created");
    assert_eq!(
        d.conversation_key.as_deref(),
        Some("april-1st-2022-conversation1")
    );
    let m = d.normalized.message.expect("message");
    assert_eq!(m.id.as_deref(), Some("330"));
    assert_eq!(m.text.as_deref(), Some("asdf"));
    assert!(m
        .html
        .as_deref()
        .is_some_and(|h| h.contains("trix-content")));
    assert_eq!(
        m.sender.as_ref().and_then(|s| s.name.as_deref()),
        Some("User Casel")
    );
    assert_eq!(m.created_at.as_deref(), Some("2022-04-01T14:24:13Z"));
    assert!(m.media_url.is_some());
    assert_eq!(
        d.normalized.actor.and_then(|a| a.name),
        Some("User Casel".into())
    );
}

#[test]
fn zipmessage_message_played_seed() {
    let d = decode(
        Provider::Zipmessage,
        &fixture("zipmessage", "message_played.json"),
    );
    assert_eq!(d.event_type, "message.played");
    assert_eq!(
        d.conversation_key.as_deref(),
        Some("conversation-with-emma-casel")
    );
    assert_eq!(time(&d), "2022-04-01T14:25:48.585Z");
    assert_eq!(
        d.normalized.actor.and_then(|a| a.kind),
        Some("anonymous".into())
    );
    let m = d.normalized.message.expect("message");
    assert_eq!(m.duration_seconds, Some(1.0));
    assert_eq!(m.kind.as_deref(), Some("screencamera"));
    assert_eq!(m.text, None, "empty text is no text");
}

#[test]
fn zipmessage_variants() {
    // Documented types we do not model pass through to the `other` family.
    for native in ["new_appointment", "new_purchase"] {
        let d = zip(json!({"type": native, "id": "e1", "occurred_at": "2022-04-01T14:23:59Z", "payload": {"x": 1}})).expect("passes through");
        assert_eq!(d.event_type, format!("zipmessage.{native}"));
        assert_eq!(Family::of_type(&d.event_type), Family::Other);
        assert_eq!(d.conversation_key, None);
    }
    // No envelope id: liberal, keyed by the body hash.
    let d =
        zip(json!({"type": "conversation_created", "payload": {"conversation": {"slug": "s"}}}))
            .expect("decodes");
    assert!(d.dedup_key.starts_with("sha256:"));
    // No slug, but a URL: the slug is its last segment.
    let d = zip(json!({"type": "conversation_created", "id": "1", "payload": {"conversation": {"url": "https://zipmessage.com/co/the-slug"}}})).expect("decodes");
    assert_eq!(d.conversation_key.as_deref(), Some("the-slug"));
    // A message with only message_url (no embed URL), played by a named user, other offset.
    let d = zip(json!({"type": "message_played", "id": "2", "occurred_at": "2022-04-01T16:25:48+02:00",
        "payload": {"message": {"id": 5, "message_url": "http://zipmessage.com/co/slug-b#message-5", "recorded_duration_seconds": "2.5"}, "played_by": "pat@example.com"}})).expect("decodes");
    assert_eq!(d.conversation_key.as_deref(), Some("slug-b"));
    assert_eq!(time(&d), "2022-04-01T14:25:48Z");
    assert_eq!(
        d.normalized.actor.and_then(|a| a.email),
        Some("pat@example.com".into())
    );
    assert_eq!(
        d.normalized.message.and_then(|m| m.duration_seconds),
        Some(2.5)
    );
    // Plain (non-HTML) text stays as is.
    let d = zip(json!({"type": "message_created", "id": "3", "payload": {"message": {"message_url": "http://z.com/c/s#message-1", "text": "hi & bye"}}})).expect("decodes");
    assert_eq!(
        d.normalized.message.and_then(|m| m.text),
        Some("hi & bye".into())
    );
}

#[test]
fn zipmessage_known_types_missing_their_key_are_quarantined() {
    let e = zip(json!({"type": "message_created", "id": "x", "payload": {"message": {"id": 1}}}))
        .unwrap_err();
    assert_eq!(e.code(), "missing_field");
    let e = zip(json!({"type": "conversation_created", "id": "x", "payload": {}})).unwrap_err();
    assert_eq!(e.code(), "missing_field");
    let e = zip(json!({"id": "x"})).unwrap_err();
    assert_eq!(e.code(), "no_envelope");
}

#[test]
fn partoo_message_created_seed() {
    let d = decode(Provider::Partoo, &fixture("partoo", "message_created.json"));
    assert_eq!(d.event_type, "message.created");
    assert_eq!(d.conversation_key.as_deref(), Some("123"));
    assert_eq!(d.dedup_key, "message_created:123");
    assert_eq!(time(&d), "2023-01-31T16:22:17.327878Z");
    let c = d.normalized.conversation.expect("conversation");
    assert_eq!(c.channel.as_deref(), Some("Facebook"));
    assert_eq!(c.status.as_deref(), Some("Open"));
    assert_eq!(c.participants[0].phone.as_deref(), Some("+33612345678"));
    let m = d.normalized.message.expect("message");
    assert_eq!(m.sender.and_then(|s| s.name), Some("Jane Doe".into()));
    assert_eq!(m.status.as_deref(), Some("Sending"));
    assert_eq!(m.deleted, Some(false));
}

#[test]
fn partoo_variants() {
    let update = |status: &str| {
        partoo(json!({"type": "message_updated", "payload": {"message": {"id": "m-1", "conversation_id": "c-9", "status": status, "content_type": "Image", "content": "https://x/y.png", "date": "2023-01-31 16:22:17+0000"}}}))
            .expect("decodes")
    };
    let (a, b, a2) = (update("Sending"), update("Success"), update("Sending"));
    assert_eq!(a.event_type, "message.updated");
    assert_eq!(
        a.conversation_key.as_deref(),
        Some("c-9"),
        "string ids are fine too"
    );
    assert_ne!(
        a.dedup_key, b.dedup_key,
        "a different state is a different event"
    );
    assert_eq!(
        a.dedup_key, a2.dedup_key,
        "the same update redelivered is the same event"
    );
    assert_eq!(a.occurred_at, None, "updates carry no time of their own");
    let m = a.normalized.message.expect("message");
    assert_eq!(m.media_url.as_deref(), Some("https://x/y.png"));
    assert_eq!(m.text, None);
    // business_* and lead_received pass through with their raw data.
    for native in ["business_created", "business_updated", "lead_received"] {
        let d = partoo(json!({"type": native, "payload": {"business": {"id": "b"}}}))
            .expect("passes through");
        assert_eq!(d.event_type, format!("partoo.{native}"));
        assert!(d.dedup_key.starts_with("sha256:"));
    }
    // Unknown enum values are passed through, not rejected.
    let d = partoo(json!({"type": "message_created", "payload": {"message": {"id": 1, "conversation_id": 2, "status": "Teleported", "sender_type": "Alien"}}})).expect("decodes");
    assert_eq!(
        d.normalized.message.and_then(|m| m.status),
        Some("Teleported".into())
    );
    // The required key is missing: quarantine.
    let e =
        partoo(json!({"type": "message_created", "payload": {"message": {"conversation_id": 2}}}))
            .unwrap_err();
    assert_eq!(e.code(), "missing_field");
}

#[test]
fn bird_conversation_updated_seed() {
    let d = decode(
        Provider::Bird,
        &fixture("bird", "conversation.updated.json"),
    );
    assert_eq!(d.event_type, "conversation.updated");
    assert_eq!(
        d.conversation_key.as_deref(),
        Some("badbf15c-bad3-4bf3-9223-6b7f414f9770")
    );
    assert_eq!(
        d.dedup_key,
        "conversation.updated:badbf15c-bad3-4bf3-9223-6b7f414f9770:2024-11-27T19:33:53.515Z"
    );
    assert_eq!(time(&d), "2024-11-27T19:33:53.515Z");
    let c = d.normalized.conversation.expect("conversation");
    assert_eq!(c.participants.len(), 2);
    assert_eq!(
        c.participants[0].phone.as_deref(),
        Some("27612960145016998")
    );
    assert_eq!(c.title, None, "empty name is no title");
    assert_eq!(
        d.normalized.message.and_then(|m| m.text),
        Some("hallo".into())
    );
}

#[test]
fn bird_variants() {
    let created = bird(json!({"service": "conversations", "event": "conversation.created", "payload": {"id": "c1", "status": "active", "createdAt": "2024-11-26T18:45:28.809Z", "updatedAt": "2024-11-26T18:45:28.809Z"}})).expect("decodes");
    assert_eq!(created.event_type, "conversation.created");
    assert_eq!(time(&created), "2024-11-26T18:45:28.809Z");
    // A deleted conversation may be sparse: only the id.
    let deleted = bird(json!({"service": "conversations", "event": "conversation.deleted", "payload": {"id": "c1"}})).expect("decodes");
    assert_eq!(deleted.event_type, "conversation.deleted");
    assert!(deleted.dedup_key.starts_with("sha256:"));
    // Unknown status values pass through.
    let d = bird(json!({"event": "conversation.updated", "payload": {"id": "c1", "status": "archived", "updatedAt": "2024-11-27T19:33:53Z"}})).expect("decodes");
    assert_eq!(
        d.normalized.conversation.and_then(|c| c.status),
        Some("archived".into())
    );
    // Other events of the envelope pass through.
    let d = bird(json!({"service": "conversations", "event": "message.created", "payload": {"id": "m1", "conversationId": "c1"}})).expect("passes through");
    assert_eq!(d.event_type, "bird.message.created");
    assert_eq!(d.conversation_key.as_deref(), Some("c1"));
    // The dedup key comes only from signed content: (event, id, updatedAt).
    let d = bird(json!({"event": "conversation.updated", "payload": {"id": "c1", "updatedAt": "2024-11-27T19:33:53Z"}})).expect("decodes");
    assert_eq!(d.dedup_key, "conversation.updated:c1:2024-11-27T19:33:53Z");
    let e = bird(json!({"event": "conversation.updated", "payload": {"status": "active"}}))
        .unwrap_err();
    assert_eq!(e.code(), "missing_field");
}

#[test]
fn hostile_bodies_are_decode_errors_not_panics() {
    let deep = "[".repeat(10_000);
    let cases: Vec<&[u8]> = vec![
        b"",
        b"null",
        b"[]",
        b"{",
        b"\xff\xfe",
        deep.as_bytes(),
        br#"{"type":"a","type":"b"}"#,
        br#"{"type":1e999}"#,
        b"\"str\"",
    ];
    for &provider in Provider::ALL {
        // A provider that reads forms (Twilio) takes any text as one.
        let forms = (descriptor(provider).data_raw)(b"a=1").is_some();
        for body in &cases {
            let text_form = std::str::from_utf8(body).is_ok_and(|t| !t.starts_with(['{', '[']));
            if forms && (text_form || body.starts_with(br#"{"type":"a""#)) {
                continue;
            }
            assert!(
                decode_body(provider, body).is_err(),
                "{provider}: {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

/// `docs/<file>`, which must be `generated` (UPDATE_SCHEMA=1 writes it).
fn committed_schema(file: &str, generated: Value) -> Value {
    let path = root().join("docs").join(file);
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&generated).unwrap_or_default() + "\n",
        )
        .expect("write schema");
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default())
        .unwrap_or_else(|_| panic!("docs/{file} exists (UPDATE_SCHEMA=1 cargo test -p switchboard-tests --test decode regenerates it)"));
    assert_eq!(
        committed, generated,
        "docs/{file} is stale: rerun with UPDATE_SCHEMA=1"
    );
    committed
}

/// The committed schemas are the ones the Rust types generate, and every
/// event the seeds produce validates against both.
#[test]
fn every_seed_cloudevent_matches_the_committed_schema() {
    let committed = committed_schema("cloudevent.schema.json", cloudevent_schema());
    // AsyncAPI 3.0's payload: the same types, in draft-07.
    let draft07 = committed_schema(
        "cloudevent.draft-07.schema.json",
        cloudevent_schema_draft07(),
    );
    assert_eq!(
        draft07["$schema"],
        "http://json-schema.org/draft-07/schema#"
    );
    let validator = jsonschema::validator_for(&committed).expect("the schema compiles");
    let validator07 = jsonschema::validator_for(&draft07).expect("the draft-07 schema compiles");
    let mut checked = 0;
    for (provider, file, body) in seed_parts() {
        {
            let decoded = decode_body(provider, &body);
            let stored = item::build(
                provider,
                &decoded,
                &Delivery::default(),
                &body,
                chrono::Utc::now(),
            );
            assert_eq!(stored.status, Status::Accepted, "{file}");
            let event =
                serde_json::to_value(cloudevent(&stored).expect("builds")).expect("serialises");
            let errors: Vec<String> = validator
                .iter_errors(&event)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{file}: {errors:?}");
            assert!(validator07.is_valid(&event), "{file}: draft-07");
            // The payload as received; a form, as its JSON object of arrays.
            let payload = (descriptor(provider).data_raw)(&body)
                .map_or_else(|| body.clone(), String::into_bytes);
            assert_eq!(
                event["data"]["raw"],
                serde_json::from_slice::<Value>(&payload).expect("seed is JSON"),
                "{file}: raw is the payload"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, seed_events(), "every seed event was checked");
    // The schema is not vacuous: a wrong event fails it.
    assert!(!validator.is_valid(&json!({"specversion": "1.0", "id": 5})));
    assert!(!validator07.is_valid(&json!({"specversion": "1.0", "id": 5})));
}

/// Found by tests/fuzz.rs: a blank type used to decode as `<provider>.`.
#[test]
fn a_blank_event_type_is_not_an_envelope() {
    for (provider, body) in [
        (
            Provider::Zipmessage,
            br#"{"type":" ","id":"x","payload":{}}"#.as_slice(),
        ),
        (Provider::Partoo, br#"{"type":"","payload":{}}"#.as_slice()),
        (
            Provider::Bird,
            br#"{"service":"conversations","event":"","payload":{}}"#.as_slice(),
        ),
    ] {
        let error = decode_body(provider, body).expect_err("blank type");
        assert_eq!(error.code(), "no_envelope", "{provider}");
    }
}

/// The fixtures directory holds exactly the registered providers' seeds:
/// a provider without fixtures, or a fixture no provider registers (so no
/// test reads it), fails here.
#[test]
fn the_fixtures_are_exactly_the_registered_seeds() {
    let mut on_disk = std::collections::BTreeSet::new();
    for dir in std::fs::read_dir(root().join("tests/fixtures")).expect("tests/fixtures") {
        let dir = dir.expect("entry").path();
        for file in std::fs::read_dir(&dir).expect("a provider's fixtures") {
            let file = file.expect("entry").path();
            let name =
                |p: &std::path::Path| p.file_name().expect("name").to_string_lossy().into_owned();
            on_disk.insert((name(&dir), name(&file)));
        }
    }
    let registered: std::collections::BTreeSet<(String, String)> = seeds()
        .into_iter()
        .map(|(_, dir, file)| (dir.to_owned(), file.to_owned()))
        .collect();
    assert_eq!(on_disk, registered);
    for &provider in Provider::ALL {
        assert!(
            seeds().iter().any(|(p, _, _)| *p == provider),
            "{provider} has no fixtures"
        );
    }
}

/// Found by tests/tools.rs: serde fills a struct positionally from a JSON
/// array, so `["message_created"]` used to decode as an envelope.
#[test]
fn arrays_never_fill_an_envelope_or_a_payload() {
    for &provider in Provider::ALL {
        for body in [
            br#"["message_created"]"#.as_slice(),
            br#"["conversations", "conversation.created", {"id": "x"}]"#.as_slice(),
            b"  [\"x\", \"y\", {}]",
        ] {
            let error = decode_body(provider, body).expect_err("an array is no envelope");
            assert_eq!(error.code(), "no_envelope", "{provider}");
        }
    }
    let error = zip(serde_json::json!({
        "type": "message_created", "id": "x", "payload": [{"id": 1}, {"id": 2}]
    }))
    .expect_err("a payload array is no payload");
    assert_eq!(error.code(), "missing_field");
}

#[test]
fn html_to_text_does_linear_work_on_worst_case_html_at_the_body_limit() {
    // At the body limit, on inputs built to be worst: the bytes examined
    // stay within a constant factor of the input (the `;` search at every
    // `&` used to scan the rest of the body: 250 KB of `&` cost ~30 billion).
    let size = switchboard_pipeline::Limits::DEFAULT_MAX_BODY_BYTES;
    for (name, html) in switchboard_tests::worst_case_html(size) {
        let (_, examined) = switchboard_providers::html::to_text_counted(&html);
        assert!(
            examined <= 16 * html.len(),
            "{name}: {examined} bytes examined for {} of input",
            html.len()
        );
    }
}
