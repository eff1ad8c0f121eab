//! Pipeline CPU per request, in-process: authenticate + split into events +
//! for each, decode + normalise + build the DynamoDB item (as the adapter
//! sends it) + build and serialise the CloudEvent (as the fanout does), for
//! each seed payload (one event, but for WhatsApp's batch: three).
//! Targets (docs/performance.md): ≤ 25 µs per ZipMessage or Bird event,
//! ≤ 80 µs per Partoo event (Ed25519 verification included).
//!
//! `cargo bench -p switchboard-tests --bench pipeline` (or `make bench`).

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, Criterion};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::hint::black_box;
use switchboard_aws::dynamo::attributes;
use switchboard_pipeline::fanout::message_for;
use switchboard_pipeline::{codec, item};
use switchboard_providers::registry::{self, descriptor, Settings, SignRequest};
use switchboard_providers::{
    decode_event, split_body, Admission, Delivery, Inbound, WebhookProvider,
};
use switchboard_tests::{fixture, keys, seeds};
use switchboard_types::Provider;

/// The allocator the Lambda binaries use: allocation is a large share of
/// what this bench measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The public base URL the providers are configured with.
const PUBLIC_BASE: &str = "https://hooks.example.com";

/// The time every request is signed at and received at.
const NOW: i64 = 1_795_000_000;

/// A setting as the local stack sets it (the seeds' Partoo organisation
/// listed, as a deployment lists its own), public URLs on [`PUBLIC_BASE`];
/// the rest take their defaults.
fn setting(name: &str) -> Option<String> {
    registry::all()
        .flat_map(|d| d.local_settings(PUBLIC_BASE))
        .find(|(setting, _)| *setting == name)
        .map(|(_, value)| value)
}

fn admission() -> Admission {
    Admission::from_lookup(&setting)
}

/// Everything the two Lambdas do for one event, minus the network.
fn process(
    provider: &dyn WebhookProvider,
    headers: &HeaderMap,
    body: &[u8],
    token: Option<&str>,
    url: &str,
) -> usize {
    let now = Utc.timestamp_opt(NOW, 0).single().unwrap_or_default();
    let inbound = Inbound::new(headers, body, token).with_url(Some(url));
    provider.authenticate(&inbound, now).expect("authentic");
    let delivery = provider.delivery(&inbound);
    let parts = split_body(provider.provider(), body);
    let whole = parts.len() == 1;
    let mut size = 0;
    // Each event of the body (one, but for a WhatsApp batch), as the
    // webhook stores it and the fanout publishes it.
    for part in &parts {
        let digest: [u8; 32] = if whole {
            *inbound.body_sha256()
        } else {
            Sha256::digest(part).into()
        };
        let decoded = decode_event(provider.provider(), part, &admission());
        let stored = item::build_hashed(
            provider.provider(),
            &decoded,
            &delivery,
            part,
            &digest,
            now,
            None,
        );
        let dynamo_item = attributes(&stored);
        let message = message_for(&stored).expect("cloudevent");
        size += dynamo_item.len() + message.body.len();
    }
    size
}

/// One seed as its provider receives it.
struct Case {
    name: String,
    provider: Box<dyn WebhookProvider>,
    headers: HeaderMap,
    body: Vec<u8>,
    token: Option<&'static str>,
    /// The URL it was posted to, as the gateway builds it.
    url: String,
}

impl Case {
    fn run(&self) -> usize {
        process(
            self.provider.as_ref(),
            &self.headers,
            black_box(&self.body),
            self.token,
            &self.url,
        )
    }
}

/// The seeds, signed as their providers sign them, each provider built
/// from its registry descriptor with a current and an old key.
fn cases() -> Vec<Case> {
    seeds()
        .into_iter()
        .map(|(provider, dir, file)| {
            let d = descriptor(provider);
            let body = fixture(dir, file);
            let (current, old) = (keys::current(provider), keys::old(provider));
            let settings = Settings::resolve(d, &setting, 0).expect("settings");
            let verifier = (d.build)(
                &[
                    current.configured.clone().into(),
                    old.configured.clone().into(),
                ],
                &settings,
            )
            .expect("builds");
            let url = format!("{PUBLIC_BASE}{}", d.path(&current.signing));
            let headers: HeaderMap = (d.sign)(&SignRequest {
                key: &current.signing,
                url: &url,
                body: &body,
                timestamp: NOW,
            })
            .expect("signs")
            .into_iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    value.parse().expect("header"),
                )
            })
            .collect();
            Case {
                name: format!("{dir}/{}", file.trim_end_matches(".json")),
                provider: verifier,
                headers,
                body,
                token: d.token_prefix().map(|_| current.signing.as_str()),
                url,
            }
        })
        .collect()
}

fn pipeline(c: &mut Criterion) {
    for case in cases() {
        c.bench_function(&case.name, |b| b.iter(|| case.run()));
    }
}

/// Where the time goes, stage by stage (ZipMessage's message_created where
/// one seed stands for all).
fn stages(c: &mut Criterion) {
    let body = fixture("zipmessage", "message_created.json");
    let now = Utc
        .timestamp_opt(1_795_000_000, 0)
        .single()
        .unwrap_or_default();
    let decoded = switchboard_providers::decode_body(Provider::Zipmessage, &body);
    let stored = item::build(
        Provider::Zipmessage,
        &decoded,
        &Delivery::default(),
        &body,
        now,
    );
    let gz = codec::gzip(&body);
    c.bench_function("stage/gzip", |b| b.iter(|| codec::gzip(black_box(&body))));
    c.bench_function("stage/gunzip", |b| b.iter(|| codec::gunzip(black_box(&gz))));
    c.bench_function("stage/build_item", |b| {
        b.iter(|| {
            item::build(
                Provider::Zipmessage,
                black_box(&decoded),
                &Delivery::default(),
                &body,
                now,
            )
        })
    });
    c.bench_function("stage/to_dynamodb_item", |b| {
        b.iter(|| attributes(black_box(&stored)))
    });
    // The two decodes of every event (webhook, then fanout from the stored
    // item) and the CloudEvent built around the second, per seed.
    for case in cases() {
        let provider = case.provider.provider();
        let decoded = switchboard_providers::decode_body(provider, &case.body);
        let stored = item::build(provider, &decoded, &Delivery::default(), &case.body, now);
        c.bench_function(&format!("stage/decode/{}", case.name), |b| {
            b.iter(|| switchboard_providers::decode_body(provider, black_box(&case.body)))
        });
        c.bench_function(&format!("stage/cloudevent_message/{}", case.name), |b| {
            b.iter(|| message_for(black_box(&stored)))
        });
    }

    // Authentication alone (HMAC, Ed25519, a token compare), per seed.
    for case in cases() {
        c.bench_function(&format!("stage/authenticate/{}", case.name), |b| {
            b.iter(|| {
                let inbound = Inbound::new(&case.headers, black_box(&case.body), case.token)
                    .with_url(Some(&case.url));
                case.provider.authenticate(&inbound, now)
            })
        });
    }
}

/// CPU for hostile bodies at the body limit: ZipMessage `message_created`
/// bodies whose HTML is built to be worst (`worst_case_html`), through
/// everything the webhook and the fanout do with a body (decode twice, the
/// stored item, the CloudEvent message). Reported as throughput; per KiB:
/// 1e6 / (throughput in KiB/s) µs.
fn hostile(c: &mut Criterion) {
    let now = Utc
        .timestamp_opt(1_795_000_000, 0)
        .single()
        .unwrap_or_default();
    let limit = switchboard_pipeline::Limits::DEFAULT_MAX_BODY_BYTES;
    let seed: serde_json::Value =
        serde_json::from_slice(&fixture("zipmessage", "message_created.json")).expect("seed");
    let mut group = c.benchmark_group("hostile");
    group.sample_size(10);
    for (name, html) in switchboard_tests::worst_case_html(limit) {
        let mut body = seed.clone();
        body["payload"]["message"]["text"] = serde_json::Value::String(html);
        let mut body = body.to_string();
        while body.len() > limit {
            // Trim the HTML (JSON escapes may have grown it) to the limit.
            let mut value: serde_json::Value = serde_json::from_str(&body).expect("json");
            let text = value["payload"]["message"]["text"]
                .as_str()
                .unwrap_or_default();
            let keep = text.len() - (body.len() - limit).min(text.len());
            let cut = (0..=keep)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            value["payload"]["message"]["text"] = serde_json::Value::String(text[..cut].to_owned());
            body = value.to_string();
        }
        let body = body.into_bytes();
        group.throughput(criterion::Throughput::Bytes(body.len() as u64));
        group.bench_function(name.replace(' ', "_"), |b| {
            b.iter(|| {
                let decoded =
                    switchboard_providers::decode_body(Provider::Zipmessage, black_box(&body));
                let stored = item::build(
                    Provider::Zipmessage,
                    &decoded,
                    &Delivery::default(),
                    &body,
                    now,
                );
                message_for(&stored).map(|m| m.body.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline, stages, hostile);

/// `PIPELINE_EVENTS=N PIPELINE_SEED=<name>` runs that seed's pipeline N
/// times and exits, for a count that does not depend on a noisy clock:
/// valgrind's instruction count of N events minus that of 0 events, over N
/// (infra/scripts/instructions.sh). Otherwise: criterion, as usual.
fn main() {
    let events = std::env::var("PIPELINE_EVENTS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(events) = events {
        let seed = std::env::var("PIPELINE_SEED").unwrap_or_default();
        let case = cases()
            .into_iter()
            .find(|case| case.name == seed)
            .unwrap_or_else(|| {
                panic!("PIPELINE_SEED must name a seed, e.g. bird/conversation.updated")
            });
        let total: usize = (0..events).map(|_| case.run()).sum();
        println!("{seed}: {events} events ({total} bytes out)");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
