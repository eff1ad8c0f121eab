//! docs/asyncapi.yaml describes the queues template.yaml creates and the
//! messages the fanout sends: every FIFO queue of the template is in the
//! document and every queue of the document in the template, with the same
//! settings; the message attributes are the fanout's; the payload is the
//! CloudEvent schema the Rust types generate. (`make test` also validates
//! the document with AsyncAPI's parser: infra/asyncapi.)

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use switchboard_pipeline::fanout::OutgoingMessage;
use switchboard_tests::root;
use switchboard_types::cloudevent_schema_draft07;

fn yaml(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join(file)).expect(file);
    serde_yaml::from_str(&text).expect(file)
}

/// The text of a scalar or of a `!Sub`/`!GetAtt`-tagged scalar.
fn text(value: &Value) -> String {
    match value {
        Value::Tagged(t) => text(&t.value),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A queue's settings as both documents can state them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Queue {
    fifo: bool,
    deduplication_scope: Option<String>,
    fifo_throughput_limit: Option<String>,
    visibility_timeout: Option<String>,
    retention: Option<String>,
    dead_letter_queue: Option<String>,
    max_receive_count: Option<String>,
}

/// The template's FIFO queues by name, `${AWS::StackName}` as `{stack}`.
fn template_queues() -> BTreeMap<String, Queue> {
    let template = yaml("template.yaml");
    let resources = template["Resources"].as_mapping().expect("Resources");
    let name_of = |id: &str| {
        text(&resources[id]["Properties"]["QueueName"]).replace("${AWS::StackName}", "{stack}")
    };
    let optional = |v: &Value| (!v.is_null()).then(|| text(v));
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SQS::Queue" && r["Properties"]["FifoQueue"] == true)
        .map(|(id, r)| {
            let p = &r["Properties"];
            let redrive = &p["RedrivePolicy"];
            let queue = Queue {
                fifo: true,
                deduplication_scope: optional(&p["DeduplicationScope"]),
                fifo_throughput_limit: optional(&p["FifoThroughputLimit"]),
                visibility_timeout: optional(&p["VisibilityTimeout"]),
                retention: optional(&p["MessageRetentionPeriod"]),
                dead_letter_queue: (!redrive.is_null()).then(|| {
                    let target = text(&redrive["deadLetterTargetArn"]);
                    name_of(target.trim_end_matches(".Arn"))
                }),
                max_receive_count: optional(&redrive["maxReceiveCount"]),
            };
            (name_of(id.as_str().expect("id")), queue)
        })
        .collect()
}

fn binding_queue(q: &Value) -> (String, Queue) {
    let optional = |v: &Value| (!v.is_null()).then(|| text(v));
    let redrive = &q["redrivePolicy"];
    (
        text(&q["name"]),
        Queue {
            fifo: q["fifoQueue"] == true,
            deduplication_scope: optional(&q["deduplicationScope"]),
            fifo_throughput_limit: optional(&q["fifoThroughputLimit"]),
            visibility_timeout: optional(&q["visibilityTimeout"]),
            retention: optional(&q["messageRetentionPeriod"]),
            dead_letter_queue: optional(&redrive["deadLetterQueue"]["name"]),
            max_receive_count: optional(&redrive["maxReceiveCount"]),
        },
    )
}

#[test]
fn every_fifo_queue_of_the_template_is_in_the_document_and_back() {
    let doc = yaml("docs/asyncapi.yaml");
    assert_eq!(doc["asyncapi"], "3.0.0");
    let mut documented = BTreeMap::new();
    let channels = doc["channels"].as_mapping().expect("channels");
    for (id, channel) in channels {
        let sqs = &channel["bindings"]["sqs"];
        let (name, queue) = binding_queue(&sqs["queue"]);
        assert_eq!(text(&channel["address"]), name, "{id:?}: address");
        assert_eq!(
            queue.dead_letter_queue.as_deref(),
            Some(text(&sqs["deadLetterQueue"]["name"]).as_str()),
            "{id:?}: the redrive policy names the channel's DLQ"
        );
        let (dlq_name, dlq) = binding_queue(&sqs["deadLetterQueue"]);
        documented.insert(name, queue);
        documented.insert(dlq_name, dlq);
    }
    let template = template_queues();
    let in_template: BTreeSet<_> = template.keys().collect();
    let in_document: BTreeSet<_> = documented.keys().collect();
    assert_eq!(in_template, in_document, "the same FIFO queues");
    for (name, queue) in &template {
        assert_eq!(
            &documented[name], queue,
            "{name}: the document states the template's settings"
        );
    }
    // One receive operation per channel.
    let received: BTreeSet<String> = doc["operations"]
        .as_mapping()
        .expect("operations")
        .values()
        .filter(|o| o["action"] == "receive")
        .map(|o| text(&o["channel"]["$ref"]).replace("#/channels/", ""))
        .collect();
    let channel_ids: BTreeSet<String> = channels.keys().map(text).collect();
    assert_eq!(received, channel_ids);
}

#[test]
fn the_message_is_what_the_fanout_sends() {
    let doc = yaml("docs/asyncapi.yaml");
    let message = &doc["components"]["messages"]["event"];
    // The message attributes, as headers.
    let sent = OutgoingMessage {
        dedup_id: String::new(),
        group_id: String::new(),
        event_type: String::new(),
        provider: String::new(),
        tenant: String::new(),
        body: String::new(),
    };
    let attributes: BTreeSet<String> = sent
        .attributes()
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let headers = &message["headers"];
    let documented: BTreeSet<String> = headers["properties"]
        .as_mapping()
        .expect("header properties")
        .keys()
        .map(text)
        .collect();
    assert_eq!(documented, attributes);
    let required: BTreeSet<String> = headers["required"]
        .as_sequence()
        .expect("required")
        .iter()
        .map(text)
        .collect();
    assert_eq!(required, attributes, "the fanout sets every attribute");
    // The payload: the committed draft-07 schema, which the types generate
    // (tests/tests/decode.rs keeps the file current).
    assert_eq!(
        message["payload"]["schemaFormat"],
        "application/schema+json;version=draft-07"
    );
    let file = text(&message["payload"]["schema"]["$ref"]);
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs").join(&file)).expect("the payload schema"),
    )
    .expect("JSON");
    assert_eq!(committed, cloudevent_schema_draft07());
}
