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

/// Where the time goes, stage by stage, for ZipMessage's message_created.
fn stages(c: &mut Criterion) {
    let body = fixture("zipmessage", "message_created.json");
    let now = Utc
        .timestamp_opt(1_795_000_000, 0)
        .single()
        .unwrap_or_default();
    let decoded =
        switchboard_providers::decode_body(switchboard_types::Provider::Zipmessage, &body);
    let stored = item::build(
        switchboard_types::Provider::Zipmessage,
        &decoded,
        &body,
        now,
    );
    let gz = item::gzip(&body);
    let lz = item::lz4(&body);
    c.bench_function("stage/decode", |b| {
        b.iter(|| {
            switchboard_providers::decode_body(
                switchboard_types::Provider::Zipmessage,
                black_box(&body),
            )
        })
    });
    c.bench_function("stage/gzip", |b| b.iter(|| item::gzip(black_box(&body))));
    c.bench_function("stage/gunzip", |b| b.iter(|| item::gunzip(black_box(&gz))));
    c.bench_function("stage/lz4", |b| b.iter(|| item::lz4(black_box(&body))));
    c.bench_function("stage/unlz4", |b| b.iter(|| item::unlz4(black_box(&lz))));
    c.bench_function("stage/build_item", |b| {
        b.iter(|| {
            item::build(
                switchboard_types::Provider::Zipmessage,
                black_box(&decoded),
                &body,
                now,
            )
        })
    });
    c.bench_function("stage/to_dynamodb_item", |b| {
        b.iter(|| {
            let i: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
                serde_dynamo::to_item(black_box(&stored)).expect("item");
            i
        })
    });
    c.bench_function("stage/cloudevent_message", |b| {
        b.iter(|| message_for(black_box(&stored)))
    });

    let now = Utc
        .timestamp_opt(1_795_000_000, 0)
        .single()
        .unwrap_or_default();
    let partoo = Partoo::new(&keys::partoo_public_keys()).expect("keys");
    let partoo_body = fixture("partoo", "message_created.json");
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-partoo-signature-v1",
        partoo_signature(&keys::partoo(), &partoo_body)
            .parse()
            .expect("header"),
    );
    c.bench_function("stage/partoo_ed25519_verify", |b| {
        b.iter(|| {
            partoo.authenticate(
                &Inbound {
                    headers: &headers,
                    body: black_box(&partoo_body),
                    path_token: None,
                },
                now,
            )
        })
    });
    let bird_provider = Bird::new(&[keys::BIRD_KEY], BIRD_URL, u64::MAX / 4).expect("config");
    let bird_body = fixture("bird", "conversation.updated.json");
    let mut headers = HeaderMap::new();
    headers.insert(
        "messagebird-request-timestamp",
        "1795000000".parse().expect("header"),
    );
    headers.insert(
        "messagebird-signature",
        bird::sign(
            keys::BIRD_KEY.as_bytes(),
            "1795000000",
            BIRD_URL,
            &bird_body,
        )
        .parse()
        .expect("header"),
    );
    c.bench_function("stage/bird_hmac_verify", |b| {
        b.iter(|| {
            bird_provider.authenticate(
                &Inbound {
                    headers: &headers,
                    body: black_box(&bird_body),
                    path_token: None,
                },
                now,
            )
        })
    });
}

criterion_group!(benches, pipeline, stages);
criterion_main!(benches);
