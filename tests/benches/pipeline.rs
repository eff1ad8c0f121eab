//! Pipeline CPU per event, in-process: authenticate + decode + normalise +
//! build the DynamoDB item (as the adapter sends it) + build and serialise the
//! CloudEvent (as the fanout does), for each seed payload.
//! Targets (docs/performance.md): ≤ 25 µs per ZipMessage or Bird event,
//! ≤ 80 µs per Partoo event (Ed25519 verification included).
//!
//! `cargo bench -p switchboard-tests --bench pipeline` (or `make bench`).

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderMap;
use std::hint::black_box;
use switchboard_pipeline::fanout::message_for;
use switchboard_pipeline::item;
use switchboard_providers::{bird, Bird, Inbound, Partoo, WebhookProvider, Zipmessage};
use switchboard_tests::{fixture, keys, partoo_signature};

const BIRD_URL: &str = "https://hooks.example.com/webhooks/bird";

/// Everything the two Lambdas do for one event, minus the network.
fn process(
    provider: &dyn WebhookProvider,
    headers: &HeaderMap,
    body: &[u8],
    token: Option<&str>,
) -> usize {
    let now = Utc
        .timestamp_opt(1_795_000_000, 0)
        .single()
        .unwrap_or_default();
    let inbound = Inbound {
        headers,
        body,
        path_token: token,
    };
    provider.authenticate(&inbound, now).expect("authentic");
    let decoded = provider.decode(&inbound);
    let stored = item::build(provider.provider(), &decoded, body, now);
    let dynamo_item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::to_item(&stored).expect("item");
    let message = message_for(&stored).expect("cloudevent");
    dynamo_item.len() + message.body.len()
}

fn pipeline(c: &mut Criterion) {
    let zip =
        Zipmessage::new(&[keys::ZIPMESSAGE_TOKEN, keys::ZIPMESSAGE_OLD_TOKEN]).expect("tokens");
    for name in ["conversation_created", "message_created", "message_played"] {
        let body = fixture("zipmessage", &format!("{name}.json"));
        let headers = HeaderMap::new();
        c.bench_function(&format!("zipmessage/{name}"), |b| {
            b.iter(|| {
                process(
                    &zip,
                    &headers,
                    black_box(&body),
                    Some(keys::ZIPMESSAGE_TOKEN),
                )
            })
        });
    }

    let partoo = Partoo::new(&keys::partoo_public_keys()).expect("keys");
    let body = fixture("partoo", "message_created.json");
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-partoo-signature-v1",
        partoo_signature(&keys::partoo(), &body)
            .parse()
            .expect("header"),
    );
    c.bench_function("partoo/message_created", |b| {
        b.iter(|| process(&partoo, &headers, black_box(&body), None))
    });

    let bird_provider = Bird::new(
        &[keys::BIRD_KEY, keys::BIRD_OLD_KEY],
        BIRD_URL,
        u64::MAX / 4,
    )
    .expect("config");
    let body = fixture("bird", "conversation.updated.json");
    let ts = "1795000000";
    let mut headers = HeaderMap::new();
    headers.insert("messagebird-request-timestamp", ts.parse().expect("header"));
    headers.insert(
        "messagebird-signature",
        bird::sign(keys::BIRD_KEY.as_bytes(), ts, BIRD_URL, &body)
            .parse()
            .expect("header"),
    );
    c.bench_function("bird/conversation.updated", |b| {
        b.iter(|| process(&bird_provider, &headers, black_box(&body), None))
    });
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
