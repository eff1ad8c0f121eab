//! Each real Lambda binary, run as Lambda runs it: spawned against a Lambda
//! Runtime API (the emulator in `switchboard_tests::runtime`), configured
//! with the environment template.yaml gives it, its secrets read from
//! Secrets Manager and its writes going to DynamoDB/SQS — all on moto. This
//! proves each `main.rs` wires config, clients and handler correctly.

use serde_json::{json, Value};
use std::time::Duration;
use switchboard_pipeline::item;
use switchboard_providers::{bird, decode_body, Delivery};
use switchboard_tests::runtime::{http_api_event, stream_event, Outcome, RuntimeApi};
use switchboard_tests::{
    binary, fixture, keys, lambda_env, partoo_signature, TestStack, PARTOO_SEED_ORG,
};
use switchboard_types::{Family, Provider};

const BIRD_URL: &str = "https://hooks.example.com/webhooks/bird";

async fn start_function(t: &TestStack, name: &str, extra: &[(&str, &str)]) -> RuntimeApi {
    let mut env = lambda_env(&t.stack.provisioned.functions, name);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let mut api = RuntimeApi::start().await;
    api.spawn(&binary(name), name, &env);
    api
}

fn response(outcome: Outcome) -> (u64, Value) {
    let Outcome::Response(r) = outcome else {
        panic!("expected a response, got {outcome:?}")
    };
    let body: Value =
        serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
    (r["statusCode"].as_u64().unwrap_or_default(), body)
}

/// API Gateway's event for ZipMessage's `message_created` seed posted with
/// `token` in the URL.
fn zipmessage_seed_event(token: &str, headers: &[(&str, &str)]) -> Value {
    http_api_event(
        "POST",
        "/webhooks/zipmessage/{token}",
        &format!("/webhooks/zipmessage/{token}"),
        headers,
        &fixture("zipmessage", "message_created.json"),
        Some(("token", token)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipmessage_binary_stores_seeds_and_refuses_bad_tokens() {
    let t = TestStack::start().await;
    let mut api = start_function(&t, "zipmessage-webhook", &[]).await;
    let event = zipmessage_seed_event(
        keys::zipmessage_token(),
        &[("content-type", "application/json")],
    );
    let (status, reply) = response(api.invoke(&event).await);
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    let (status, reply) = response(api.invoke(&event).await);
    assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")));
    let bad = zipmessage_seed_event("nope", &[]);
    let (status, reply) = response(api.invoke(&bad).await);
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(t.items().await.len(), 1);
}

/// The JSON objects among a function's stdout lines.
fn json_lines(api: &RuntimeApi) -> Vec<Value> {
    api.stdout_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_binary_logs_each_request_and_emits_emf_metrics_without_secrets() {
    let t = TestStack::start().await;
    let mut api = start_function(&t, "zipmessage-webhook", &[]).await;
    let event = zipmessage_seed_event(
        keys::zipmessage_token(),
        &[("content-type", "application/json")],
    );
    let (_, accepted) = response(api.invoke(&event).await);
    let event_id = accepted["event_ids"][0].as_str().expect("id").to_owned();
    let bad = zipmessage_seed_event("wrong-token-value", &[]);
    response(api.invoke(&bad).await);
    // stdout is read asynchronously: give the last lines a moment.
    let mut lines = json_lines(&api);
    for _ in 0..50 {
        if lines.iter().filter(|l| l.get("_aws").is_some()).count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        lines = json_lines(&api);
    }
    let namespace = lambda_env(&t.stack.provisioned.functions, "zipmessage-webhook")
        ["METRICS_NAMESPACE"]
        .clone();
    assert!(namespace.starts_with("Switchboard/"), "{namespace}");

    // One line per request: its EMF document, in the template's namespace,
    // and its log record with the event's identity. Nothing else.
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let emf: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 2, "{lines:#?}");
    assert_eq!(emf[0]["accepted"], 1);
    assert_eq!(emf[0]["outcome"], "accepted");
    assert_eq!(emf[0]["Provider"], "zipmessage");
    assert_eq!(emf[0]["event_id"], event_id.as_str());
    assert_eq!(emf[0]["type"], "message.created");
    assert!(emf[0]["conversation"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    assert!(emf[0]["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        namespace.as_str()
    );
    assert_eq!(emf[1]["auth_failed"], 1);
    assert_eq!(emf[1]["outcome"], "auth_failed");
    assert_eq!(emf[1]["Reason"], "invalid_token");

    // Never a token or a body in the logs.
    let all = api.stdout_lines().join("\n");
    assert!(
        !all.contains(keys::zipmessage_token()),
        "the URL token leaked"
    );
    assert!(
        !all.contains("wrong-token-value"),
        "a presented token leaked"
    );
    assert!(!all.contains("trix-content"), "the body leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partoo_binary_verifies_with_keys_from_secrets_manager() {
    let t = TestStack::start().await;
    // The organisation as the operator lists it in the PartooOrgIds parameter.
    let mut api =
        start_function(&t, "partoo-webhook", &[("PARTOO_ORG_IDS", PARTOO_SEED_ORG)]).await;
    let body = fixture("partoo", "message_created.json");
    let signature = partoo_signature(&keys::partoo_old(), &body);
    let headers = [
        ("content-type", "application/json"),
        ("x-partoo-signature-v1", signature.as_str()),
    ];
    let event = http_api_event(
        "POST",
        "/webhooks/partoo",
        "/webhooks/partoo",
        &headers,
        &body,
        None,
    );
    let (status, reply) = response(api.invoke(&event).await);
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    // An authentic body that is not JSON, sent base64 by API Gateway: quarantined, not refused.
    let junk = b"\xff\xfe not json";
    let signature = partoo_signature(&keys::partoo(), junk);
    let headers = [
        ("content-type", "application/json"),
        ("x-partoo-signature-v1", signature.as_str()),
    ];
    let event = http_api_event(
        "POST",
        "/webhooks/partoo",
        "/webhooks/partoo",
        &headers,
        junk,
        None,
    );
    let (status, reply) = response(api.invoke(&event).await);
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("quarantined")),
        "{reply}"
    );
    assert_eq!(t.items().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bird_binary_checks_the_configured_url_and_method() {
    let t = TestStack::start().await;
    let mut api = start_function(&t, "bird-webhook", &[("BIRD_WEBHOOK_URL", BIRD_URL)]).await;
    let body = fixture("bird", "conversation.updated.json");
    let ts = chrono::Utc::now().timestamp().to_string();
    let good = bird::sign(keys::bird_key().as_bytes(), &ts, BIRD_URL, &body);
    let headers = [
        ("content-type", "application/json"),
        ("messagebird-request-timestamp", ts.as_str()),
        ("messagebird-signature", good.as_str()),
    ];
    let event = http_api_event(
        "POST",
        "/webhooks/bird",
        "/webhooks/bird",
        &headers,
        &body,
        None,
    );
    let (status, reply) = response(api.invoke(&event).await);
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    // Signed for the Host the request claims instead of the configured URL: refused.
    let spoofed = bird::sign(
        keys::bird_key().as_bytes(),
        &ts,
        "https://api.execute-api.us-east-1.amazonaws.com/webhooks/bird",
        &body,
    );
    let headers = [
        ("messagebird-request-timestamp", ts.as_str()),
        ("messagebird-signature", spoofed.as_str()),
    ];
    let event = http_api_event(
        "POST",
        "/webhooks/bird",
        "/webhooks/bird",
        &headers,
        &body,
        None,
    );
    assert_eq!(response(api.invoke(&event).await).0, 401);
    let get = http_api_event("GET", "/webhooks/bird", "/webhooks/bird", &[], b"", None);
    assert_eq!(response(api.invoke(&get).await).0, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bird_binary_without_a_url_verifies_the_one_api_gateway_received() {
    // The template's environment with BirdWebhookUrl left empty: no second
    // deploy. The function verifies against the URL API Gateway's request
    // context names (domain, stage, route), and never a header's.
    let t = TestStack::start().await;
    let mut api = start_function(&t, "bird-webhook", &[]).await;
    let body = fixture("bird", "conversation.updated.json");
    let ts = chrono::Utc::now().timestamp().to_string();
    let signed_for = |url: &str| {
        let signature = bird::sign(keys::bird_key().as_bytes(), &ts, url, &body);
        let headers = [
            ("content-type", "application/json"),
            ("host", "hooks.attacker.example"),
            ("x-forwarded-host", "hooks.attacker.example"),
            ("messagebird-request-timestamp", ts.as_str()),
            ("messagebird-signature", signature.as_str()),
        ];
        let mut event = http_api_event(
            "POST",
            "/webhooks/bird",
            "/live/webhooks/bird",
            &headers,
            &body,
            None,
        );
        event["requestContext"]["stage"] = "live".into();
        event
    };
    let received_at = "https://api.execute-api.us-east-1.amazonaws.com/live/webhooks/bird";
    let (status, reply) = response(api.invoke(&signed_for(received_at)).await);
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    for claimed in [
        "https://hooks.attacker.example/live/webhooks/bird",
        "https://api.execute-api.us-east-1.amazonaws.com/webhooks/bird",
    ] {
        let (status, reply) = response(api.invoke(&signed_for(claimed)).await);
        assert_eq!(status, 401, "signed for {claimed}: {reply}");
    }
}

/// A DynamoDB stream event as Lambda delivers it to the fanout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_binary_publishes_and_reports_the_poison_record() {
    let t = TestStack::start().await;
    let mut api = start_function(&t, "fanout", &[]).await;
    let body = fixture("partoo", "message_created.json");
    let good = item::build(
        Provider::Partoo,
        &decode_body(Provider::Partoo, &body),
        &Delivery::default(),
        &body,
        chrono::Utc::now(),
    );
    let mut poison = good.clone();
    poison.pk = "partoo#poison".into();
    poison.raw = Some("this stored body is not JSON".into());
    let image = |e| serde_dynamo::to_item(e).expect("encodes");
    let event = stream_event(&[("100", image(&good)), ("200", image(&poison))]);
    let Outcome::Response(reply) = api.invoke(&event).await else {
        panic!("the fanout answered with an error")
    };
    assert_eq!(
        reply,
        json!({"batchItemFailures": [{"itemIdentifier": "200"}]})
    );
    let messages = t
        .drain(Family::Messages, 1, Duration::from_millis(1500))
        .await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body["id"], good.event_id.as_str());
    assert_eq!(
        messages[0].group_id, "partoo:123/123",
        "tenant 123 (its org_id), conversation 123"
    );
    // The batch's EMF document: the alarm-worthy `failed` count included.
    let emf = json_lines(&api)
        .into_iter()
        .find(|l| l.get("_aws").is_some())
        .expect("an EMF document");
    assert_eq!(
        (emf["published"].as_u64(), emf["failed"].as_u64()),
        (Some(1), Some(1))
    );
}

/// At `LogLevel=TRACE` (an allowed template value), no crate — ours, the
/// Lambda runtime's, the SDK's HTTP stack — logs a credential or a body:
/// the path token, the signature header, the body, the secret's values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_carry_no_token_signature_or_body() {
    let t = TestStack::start().await;
    let marker = "body-marker-5a1d9c";
    let trace = [("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("RUST_LOG", "trace")];

    let mut zip = start_function(&t, "zipmessage-webhook", &trace).await;
    let mut seed: Value =
        serde_json::from_slice(&fixture("zipmessage", "message_created.json")).expect("seed");
    seed["payload"]["message"]["text"] = json!(format!("<div>{marker}</div>"));
    let body = seed.to_string().into_bytes();
    let token = keys::zipmessage_token();
    let event = http_api_event(
        "POST",
        "/webhooks/zipmessage/{token}",
        &format!("/webhooks/zipmessage/{token}"),
        &[("content-type", "application/json")],
        &body,
        Some(("token", token)),
    );
    let (status, _) = response(zip.invoke(&event).await);
    assert_eq!(status, 200);

    let mut partoo = start_function(&t, "partoo-webhook", &trace).await;
    let mut seed: Value =
        serde_json::from_slice(&fixture("partoo", "message_created.json")).expect("seed");
    seed["payload"]["message"]["content"] = json!(marker);
    let body = seed.to_string().into_bytes();
    let signature = partoo_signature(&keys::partoo(), &body);
    let event = http_api_event(
        "POST",
        "/webhooks/partoo",
        "/webhooks/partoo",
        &[
            ("content-type", "application/json"),
            ("x-partoo-signature-v1", signature.as_str()),
        ],
        &body,
        None,
    );
    let (status, _) = response(partoo.invoke(&event).await);
    assert_eq!(status, 200);
    // Let the last lines through.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let secrets = [
        keys::zipmessage_token().to_owned(),
        keys::zipmessage_old_token().to_owned(),
        signature,
        marker.to_owned(),
    ];
    for api in [&zip, &partoo] {
        let lines: Vec<String> = api
            .stdout_lines()
            .into_iter()
            .chain(api.stderr_lines())
            .collect();
        assert!(
            lines.iter().any(|l| l.contains("\"outcome\":")),
            "the function's output is captured: {lines:?}"
        );
        for line in &lines {
            for secret in &secrets {
                assert!(!line.contains(secret.as_str()), "{secret:?} logged: {line}");
            }
        }
    }
}
