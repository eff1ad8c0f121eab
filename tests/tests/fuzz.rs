//! Property-based fuzzing (proptest) of every provider's decoder and
//! verifier, and of the whole ingest pipeline: arbitrary bytes, arbitrary
//! JSON, the seed payloads with any field replaced by any JSON value, and
//! the seeds with any bytes spliced in. The properties: no panic, always one
//! of the defined outcomes, an authentic POST is never answered 4xx, and
//! whatever is accepted can be published. Bodies over the limit are never
//! parsed (kept in part as quarantined `too_large`, checked here too), and
//! serde_json caps nesting at 128.

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard_local::aws_limits::check_sqs_batch;
use switchboard_pipeline::fanout::{fanout, message_for, OutgoingMessage, StreamRecord};
use switchboard_pipeline::{
    item, Ingest, Limits, MemoryStore, OutcomeKind, PublishError, Publisher, WebhookRequest,
};
use switchboard_providers::registry::descriptor;
use switchboard_providers::{
    decode_body, messagebird::Messagebird, Bird, Delivery, Inbound, Partoo, WebhookProvider,
    Zipmessage,
};
use switchboard_tests::{fixture, keys};
use switchboard_types::{Family, Provider, StoredEvent};

const URL: &str = "https://hooks.example.com/webhooks/bird";

/// The `MaximumMessageSize` template.yaml gives the family queues.
const QUEUE_MAX_MESSAGE: usize = 1_048_576;

/// A publisher that checks each batch as SQS would (the local stack's
/// rules, written from AWS's documentation) and refuses what SQS refuses.
#[derive(Default)]
struct SqsRules {
    refused: std::sync::Mutex<Vec<String>>,
}

/// The `SendMessageBatch` request the SDK sends for `messages`.
fn batch_request(messages: &[OutgoingMessage]) -> Value {
    let entries: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "Id": format!("m{i}"),
                "MessageBody": m.body,
                "MessageGroupId": m.group_id,
                "MessageDeduplicationId": m.dedup_id,
                "MessageAttributes": {
                    "type": { "DataType": "String", "StringValue": m.event_type },
                    "provider": { "DataType": "String", "StringValue": m.provider },
                },
            })
        })
        .collect();
    json!({ "Entries": entries })
}

#[async_trait::async_trait]
impl Publisher for SqsRules {
    async fn send_batch(
        &self,
        _family: Family,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<String>, PublishError> {
        check_sqs_batch(&batch_request(messages), QUEUE_MAX_MESSAGE).map_err(|refusal| {
            let why = format!("{}: {}", refusal.code, refusal.message);
            if let Ok(mut refused) = self.refused.lock() {
                refused.push(why.clone());
            }
            PublishError(why)
        })?;
        Ok(Vec::new())
    }
}

/// Strings a sender may put in any field: anything, and what SQS refuses
/// once decoded or unescaped.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(vec![
            "\u{ffff}",
            "\u{fffe}",
            "&#xFFFF;",
            "&#xfffe;",
            "&#1;",
            "&#0;",
            "\u{1}",
            "\u{1f}",
            "<div>&#xFFFF;</div>",
            "<p>a\u{fffe}b</p>",
            "\u{0}",
        ])
        .prop_map(str::to_owned),
        (
            1usize..4000,
            prop::sample::select(vec!["&", "<", "\u{ffff}", "k", "&#xFFFF;"])
        )
            .prop_map(|(n, s)| s.repeat(n)),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("2022-04-01T14:23:59.799+00:00"),
            Just("2023-01-31 16:22:17.327878+00:00"),
            Just("2022-04-01 14:23:1648823039"),
            Just("1648823039"),
            Just(""),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every leaf path of a JSON value.
fn leaves(value: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            out.push(path.clone());
            for (k, v) in map {
                let mut p = path.clone();
                p.push(k.clone());
                leaves(v, p, out);
            }
        }
        Value::Array(items) => {
            out.push(path.clone());
            for (i, v) in items.iter().enumerate() {
                let mut p = path.clone();
                p.push(i.to_string());
                leaves(v, p, out);
            }
        }
        _ => out.push(path),
    }
}

fn replace(value: &mut Value, path: &[String], with: Value) {
    let mut target = value;
    for key in path {
        target = match target {
            Value::Object(map) => map.entry(key.clone()).or_insert(Value::Null),
            Value::Array(items) => match key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    *target = with;
}

/// Every event of the registered seeds, parsed (a body that carries
/// several is split as the webhook splits it). A form (Twilio's) is read
/// as its JSON object of arrays, and written back as a form.
fn seeds() -> Vec<(Provider, Value)> {
    switchboard_tests::seed_parts()
        .into_iter()
        .map(|(p, _, body)| {
            let json = (descriptor(p).data_raw)(&body).map_or(body, String::into_bytes);
            (p, serde_json::from_slice(&json).expect("seed"))
        })
        .collect()
}

/// A seed's body as its provider sends it: JSON, or for a provider that
/// reads forms, the JSON object of arrays written as a form (a non-string
/// value as its JSON text).
fn body_of(provider: Provider, seed: &Value) -> Vec<u8> {
    if (descriptor(provider).data_raw)(b"a=1").is_none() {
        return seed.to_string().into_bytes();
    }
    let encode = switchboard_providers::form_encode;
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut pairs = Vec::new();
    for (name, values) in seed.as_object().into_iter().flatten() {
        match values {
            Value::Array(items) => {
                for value in items {
                    pairs.push(format!("{}={}", encode(name), encode(&text(value))));
                }
            }
            other => pairs.push(format!("{}={}", encode(name), encode(&text(other)))),
        }
    }
    pairs.join("&").into_bytes()
}

/// A sender's time, as hostile as it gets: instants just past the years
/// 0000–9999 in every format the decoders read, epochs of every unit and
/// sign, and arbitrary JSON.
fn arb_time() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            json!("9999-12-31T23:59:59-01:00"),
            json!("0000-01-01T00:30:00+01:00"),
            json!("9999-12-31 23:59:59.999999-0100"),
            json!("1671697970736000"),
            json!(1_671_697_970_736_000i64),
            json!("-99999999999"),
            json!("2022-04-01 14:23:1648823039"),
        ]),
        any::<i64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n.to_string())),
        arb_json(),
    ]
}

/// Replaces every value whose key names a time (`occurred_at`, `createdAt`,
/// `date`, `timestamp`, …) with `with`.
fn replace_times(value: &mut Value, with: &Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let key = key.to_ascii_lowercase();
                if key.ends_with("at") || key.contains("date") || key.contains("time") {
                    *v = with.clone();
                } else {
                    replace_times(v, with);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_times(v, with)),
        _ => {}
    }
}

/// A decode outcome is defined when it is an error with a stable code, or an
/// event with a canonical type, a native type and a dedup key.
fn assert_defined(provider: Provider, body: &[u8]) {
    match decode_body(provider, body) {
        Ok(d) => {
            assert!(!d.event_type.is_empty(), "{provider}: empty type");
            assert!(!d.dedup_key.is_empty(), "{provider}: empty dedup key");
            assert!(!d.native_type.is_empty(), "{provider}: empty native type");
        }
        Err(e) => assert!(
            [
                "malformed_json",
                "no_envelope",
                "missing_field",
                "type_too_long"
            ]
            .contains(&e.code()),
            "{provider}: {}",
            e.code()
        ),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoders_survive_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..2048), provider in prop::sample::select(Provider::ALL)) {
        assert_defined(provider, &body);
    }

    #[test]
    fn decoders_survive_arbitrary_json_in_each_envelope(
        native in prop_oneof![
            prop::sample::select(vec![
                "conversation_created", "message_created", "message_played",
                "message_updated", "business_created", "conversation.created",
                "conversation.updated", "conversation.deleted",
            ]).prop_map(str::to_owned),
            ".{0,20}",
        ],
        payload in arb_json(),
        id in arb_json(),
        occurred_at in arb_json(),
    ) {
        let zip = json!({ "type": native, "id": id, "occurred_at": occurred_at, "payload": payload });
        let partoo = json!({ "type": native, "payload": payload });
        let bird = json!({ "service": "conversations", "event": native, "payload": payload });
        assert_defined(Provider::Zipmessage, zip.to_string().as_bytes());
        assert_defined(Provider::Partoo, partoo.to_string().as_bytes());
        assert_defined(Provider::Bird, bird.to_string().as_bytes());
    }

    #[test]
    fn a_batch_with_any_field_replaced_splits_into_events_that_decode_alone(
        pick in any::<usize>(),
        with in arb_json(),
    ) {
        // One request, many events: whatever a signed WhatsApp body holds,
        // it splits into at least one part, and each part decodes alone or
        // is kept as quarantined for a stable reason. Never a panic.
        let mut batch: Value = serde_json::from_slice(&fixture("whatsapp", "batch.json")).expect("seed");
        let mut paths = Vec::new();
        leaves(&batch, Vec::new(), &mut paths);
        let path = paths[pick % paths.len()].clone();
        replace(&mut batch, &path, with);
        let body = batch.to_string().into_bytes();
        let parts = switchboard_providers::split_body(Provider::Whatsapp, &body);
        prop_assert!(!parts.is_empty());
        for part in &parts {
            assert_defined(Provider::Whatsapp, part);
        }
    }

    #[test]
    fn decoders_survive_seeds_with_any_field_replaced(which in 0..switchboard_tests::seed_events(), pick in any::<usize>(), with in arb_json()) {
        let (provider, mut seed) = seeds().swap_remove(which);
        let mut paths = Vec::new();
        leaves(&seed, Vec::new(), &mut paths);
        let path = paths[pick % paths.len()].clone();
        replace(&mut seed, &path, with);
        assert_defined(provider, &body_of(provider, &seed));
    }

    #[test]
    fn whatever_decodes_can_be_published(
        which in 0..switchboard_tests::seed_events(),
        at in any::<usize>(),
        bytes in prop::collection::vec(any::<u8>(), 1..4),
    ) {
        // An event the webhook accepts is one the fanout must publish: a
        // failure there would be retried with its stream record forever.
        let (provider, _, mut body) = switchboard_tests::seed_parts().swap_remove(which);
        let at = at % body.len();
        body.splice(at..at, bytes);
        let decoded = decode_body(provider, &body);
        if decoded.is_ok() {
            let now = Utc.timestamp_opt(1_795_000_000, 0).single().expect("time");
            let stored = item::build(provider, &decoded, &Delivery::default(), &body, now);
            let message = message_for(&stored);
            prop_assert!(message.is_ok(), "{}: {:?}", String::from_utf8_lossy(&body), message.err());
        }
    }

    #[test]
    fn whatever_the_webhook_stores_reads_back(
        which in 0..switchboard_tests::seed_events(),
        time in arb_time(),
        pick in any::<usize>(),
        with in arb_json(),
    ) {
        // Every item the webhook writes is read back by the stream's parser
        // (the fanout) and by the tools' reads (replay, reprocess): both
        // deserialise the stored attributes with serde_dynamo. A time a
        // sender controls must never make an item unreadable.
        let (provider, mut seed) = seeds().swap_remove(which);
        replace_times(&mut seed, &time);
        let mut paths = Vec::new();
        leaves(&seed, Vec::new(), &mut paths);
        let path = paths[pick % paths.len()].clone();
        replace(&mut seed, &path, with);
        let body = body_of(provider, &seed);
        let now = Utc.timestamp_opt(1_795_000_000, 0).single().expect("time");
        let stored = item::build(provider, &decode_body(provider, &body), &Delivery::default(), &body, now);
        // As DynamoStore writes it; as the tools read it.
        let written = switchboard_aws::dynamo::attributes(&stored);
        let read: Result<StoredEvent, _> = serde_dynamo::from_item(written.clone());
        prop_assert!(read.is_ok(), "unreadable: {:?} from {}", read.err(), String::from_utf8_lossy(&body));
        let read = read.expect("checked");
        prop_assert_eq!(&read.sk, &stored.sk);
        prop_assert_eq!(&read.occurred_at, &stored.occurred_at);
        // As the stream's NewImage carries it to the fanout.
        let image: serde_dynamo::Item = written.into();
        let streamed = StreamRecord::parse("1".into(), "INSERT".into(), || Some(serde_dynamo::from_item(image)));
        let streamed = streamed.item;
        prop_assert!(streamed.is_ok(), "the fanout cannot read it: {:?}", streamed.err());
        let streamed = streamed.expect("checked").expect("an insert has an image");
        if streamed.status == switchboard_types::Status::Accepted {
            prop_assert!(message_for(&streamed).is_ok(), "{:?}", message_for(&streamed).err());
        }
    }

    #[test]
    fn whatever_is_accepted_yields_messages_sqs_takes(
        which in 0..switchboard_tests::seed_events(),
        pick in any::<usize>(),
        text in hostile_text(),
        also_type in any::<bool>(),
        copies in 1usize..4,
    ) {
        // The deliverability contract: every accepted event becomes a
        // message SQS takes (characters, sizes, attributes, ids), in batches
        // SQS takes — checked by SQS's rules, not by the publisher's.
        let (provider, mut seed) = seeds().swap_remove(which);
        let mut paths = Vec::new();
        leaves(&seed, Vec::new(), &mut paths);
        let path = paths[pick % paths.len()].clone();
        replace(&mut seed, &path, Value::String(text.clone()));
        if also_type {
            let field = if provider == Provider::Bird { "event" } else { "type" };
            if let Some(envelope) = seed.as_object_mut() {
                envelope.insert(field.to_owned(), Value::String(format!("custom{text}")));
            }
        }
        let now = Utc.timestamp_opt(1_795_000_000, 0).single().expect("time");
        let mut records = Vec::new();
        for copy in 0..copies {
            // Distinct events of the same shape (a different id each).
            let mut body = seed.clone();
            if let Some(envelope) = body.as_object_mut() {
                envelope.insert("switchboard_copy".to_owned(), json!(copy));
            }
            let body = body_of(provider, &body);
            let decoded = decode_body(provider, &body);
            if decoded.is_ok() {
                let stored = item::build(provider, &decoded, &Delivery::default(), &body, now);
                records.push(StreamRecord::parse(format!("seq-{copy}"), "INSERT".into(), || {
                    Some(Ok::<_, String>(stored))
                }));
            }
        }
        let publisher = SqsRules::default();
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let report = runtime.block_on(fanout(&publisher, &records));
        let refused = publisher.refused.lock().map(|r| r.clone()).unwrap_or_default();
        prop_assert!(report.failed.is_empty() && refused.is_empty(), "{provider}: {refused:?}");
        prop_assert_eq!(report.published, records.len());
    }

    #[test]
    fn verifiers_refuse_arbitrary_credentials(
        signature in prop_oneof![
            ".{0,120}",
            "[A-Za-z0-9+/]{86}==",
            "[A-Za-z0-9+/]{43}=",
            // JWT-shaped: three base64url parts, the first a real header.
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\\.[A-Za-z0-9_-]{10,200}\\.[A-Za-z0-9_-]{43}",
            "eyJhbGciOiJub25lIn0\\.[A-Za-z0-9_-]{10,200}\\.",
        ],
        timestamp in prop_oneof![any::<i64>().prop_map(|t| t.to_string()), Just("1795000000".to_owned()), ".{0,12}"],
        token in ".{0,64}",
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let now = Utc.timestamp_opt(1_795_000_000, 0).single().expect("time");
        let mut headers = HeaderMap::new();
        for name in ["x-partoo-signature-v1", "messagebird-signature", "messagebird-signature-jwt"] {
            if let Ok(v) = HeaderValue::from_str(&signature) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&timestamp) {
            headers.insert(HeaderName::from_static("messagebird-request-timestamp"), v);
        }
        let providers: Vec<Box<dyn WebhookProvider>> = vec![
            Box::new(Zipmessage::new(&[keys::zipmessage_token()]).expect("token")),
            Box::new(Partoo::new(&keys::partoo_public_keys()).expect("keys")),
            Box::new(Bird::new(&[keys::bird_key().to_owned()], URL, 300).expect("bird")),
            Box::new(
                Messagebird::new(&[keys::current(Provider::Messagebird).signing.as_str()], URL)
                    .expect("messagebird"),
            ),
        ];
        for provider in providers {
            let inbound = Inbound::new(&headers, &body, Some(token.as_str()));
            let result = provider.authenticate(&inbound, now);
            prop_assert!(result.is_err(), "{:?} accepted random credentials", provider.provider());
        }
    }

    #[test]
    fn the_pipeline_answers_only_defined_statuses(
        method in prop_oneof![Just(Method::POST), Just(Method::GET), Just(Method::PUT), Just(Method::DELETE)],
        content_type in prop_oneof![
            Just(None),
            Just(Some("application/json".to_owned())),
            Just(Some("text/plain".to_owned())),
            ".{0,30}".prop_map(Some),
        ],
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..3000),
            arb_json().prop_map(|v| v.to_string().into_bytes()),
        ],
        token_ok in any::<bool>(),
    ) {
        let store = Arc::new(MemoryStore::default());
        let ingest = Ingest::new(
            Arc::new(Zipmessage::new(&[keys::zipmessage_token()]).expect("token")),
            store.clone(),
            Limits { max_body_bytes: 2048, ..Limits::default() },
        );
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(http::header::CONTENT_TYPE, ct);
        }
        let request = WebhookRequest {
            method,
            headers,
            body: Bytes::from(body.clone()),
            path_token: Some(if token_ok { keys::zipmessage_token().to_owned() } else { "wrong".to_owned() }),
            public_url: None,
            query: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let handled = runtime.block_on(ingest.handle(&request, Utc::now()));
        let status = handled.reply.status.as_u16();
        prop_assert!([200, 401, 405].contains(&status), "status {}", status);
        let authentic = request.method == Method::POST && token_ok;
        prop_assert_eq!(authentic, status == 200, "an authentic sender gets 200, no one else");
        let reply = handled.reply.json_body();
        prop_assert!(reply["status"].is_string() || reply["error"].is_string());
        let stored = store.items().len();
        match handled.outcome().kind {
            OutcomeKind::Accepted | OutcomeKind::Quarantined => prop_assert_eq!(stored, 1),
            _ => prop_assert_eq!(stored, 0),
        }
        if handled.outcome().kind == OutcomeKind::Accepted {
            prop_assert!(message_for(&store.items()[0]).is_ok(), "accepted but not publishable");
        }
        if body.len() > 2048 && authentic {
            prop_assert_eq!(handled.outcome().reason, Some("too_large"));
            let kept = switchboard_pipeline::codec::raw_body(&store.items()[0]).expect("raw body");
            prop_assert_eq!(&kept[..], &body[..2048], "the first 2048 bytes are kept");
        }
    }
}
