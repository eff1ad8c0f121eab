//! The example consumer (functions/example-consumer), run by the local
//! stack as Lambda's SQS event source runs it (switchboard_local::sqs_source):
//! its binary invoked through the Runtime API with SQS batches, messages
//! deleted on success, a failed message back after the visibility timeout
//! and, past the queue's maxReceiveCount (5), in its dead-letter queue.

use serde_json::json;
use std::time::{Duration, Instant};
use switchboard_local::runtime::RuntimeApi;
use switchboard_tests::{binary, fixture, root, TestStack};
use switchboard_types::Family;

/// A stack running the example consumer, a failed message hidden for
/// `visibility`.
async fn stack_with_consumer(visibility: Duration) -> TestStack {
    let dir = binary("example-consumer")
        .parent()
        .expect("target/debug")
        .to_owned();
    TestStack::start_configured(|options| {
        options
            .parameters
            .insert("ExampleConsumer".into(), "true".into());
        options.binaries = Some(dir);
        options.visibility_timeout = Some(visibility);
    })
    .await
}

fn consumer(t: &TestStack) -> &RuntimeApi {
    t.stack
        .processes
        .get("example-consumer")
        .expect("the stack runs the example consumer")
}

/// Waits up to `limit` for `done`, checking every 100 ms.
async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn printed(api: &RuntimeApi, needle: &str) -> bool {
    api.stdout_lines().iter().any(|l| l.contains(needle))
}

/// A CloudEvent as the fanout publishes it, for a message sent straight
/// to a queue.
fn cloudevent(id: &str, subject: &str, text: &str) -> String {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "urn:switchboard:zipmessage",
        "type": "message.created",
        "subject": subject,
        "time": "2026-12-03T10:00:00Z",
        "datacontenttype": "application/json",
        "provider": "zipmessage",
        "nativetype": "message_created",
        "tenant": "default",
        "receivedat": "2026-12-03T10:00:01Z",
        "data": {
            "message": { "id": id, "text": text },
            "conversation": { "key": subject },
            "raw": {}
        }
    })
    .to_string()
}

async fn visible_and_hidden(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let get = |name: A| {
        attrs
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_consumer_prints_each_event_typed_and_deletes_it() {
    let t = stack_with_consumer(Duration::from_secs(1)).await;
    let api = consumer(&t);
    let (status, _) = t
        .post_zipmessage(&fixture("zipmessage", "message_created.json"))
        .await;
    assert_eq!(status, 200);
    for seed in ["conversation_created.json", "message_played.json"] {
        let (status, _) = t.post_zipmessage(&fixture("zipmessage", seed)).await;
        assert_eq!(status, 200);
    }
    // The lines docs/local.md shows, in its "Run the example consumer".
    let guide = std::fs::read_to_string(root().join("docs/local.md")).expect("docs/local.md");
    let section = &guide[guide
        .find("\n## Run the example consumer")
        .expect("docs/local.md has the section")..];
    let block = &section[section.find("```text\n").expect("its output block") + 8..];
    let shown: Vec<&str> = block[..block.find("```").expect("closed")]
        .lines()
        .map(|l| l.strip_prefix("example-consumer | ").expect("prefixed"))
        .collect();
    assert_eq!(shown.len(), 3);
    until(Duration::from_secs(20), "the guide's lines printed", || {
        let lines = api.stdout_lines();
        shown.iter().all(|l| lines.iter().any(|p| p == l))
    })
    .await;
    let line = api
        .stdout_lines()
        .into_iter()
        .find(|l| l.contains("new message in "))
        .expect("a message line");
    // `<event id> new message in <conversation>: "<text>"`, the seed's
    // text as the example prints it.
    assert!(
        line.ends_with(" new message in april-1st-2022-conversation1: \"asdf\""),
        "{line}"
    );
    let sqs = aws_sdk_sqs::Client::new(&t.stack.sdk);
    for family in [Family::Messages, Family::Conversations] {
        let mut left = visible_and_hidden(&sqs, t.stack.queue_url(family)).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while left != (0, 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = visible_and_hidden(&sqs, t.stack.queue_url(family)).await;
        }
        assert_eq!(left, (0, 0), "{family:?}: every message deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_goes_to_the_dlq_while_its_group_waits_and_others_flow() {
    // A failed batch holds every later message of the batch, whatever its
    // group (Lambda's FIFO rule), so the other group's message flows only
    // if it is received while the poison is hidden: 3 s leaves the 1 s
    // long polls room to take it alone.
    let t = stack_with_consumer(Duration::from_secs(3)).await;
    let api = consumer(&t);
    let sqs = aws_sdk_sqs::Client::new(&t.stack.sdk);
    let queue = t.stack.queue_url(Family::Messages).to_owned();
    let dlq = t
        .stack
        .provisioned
        .queues
        .get("MessagesDeadLetterQueue")
        .expect("the messages DLQ")
        .clone();
    let send = |group: &str, dedup: &str, body: String| {
        sqs.send_message()
            .queue_url(&queue)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .message_body(body)
            .send()
    };
    // A body the consumer cannot read: the consumer kit fails it.
    send(
        "zipmessage:c-poisoned",
        "poison",
        "{\"not\": \"a CloudEvent\"}".into(),
    )
    .await
    .expect("send the poison");
    until(
        Duration::from_secs(10),
        "the poison's first failure",
        || {
            api.stderr_lines()
                .iter()
                .any(|l| l.contains("is not a switchboard CloudEvent"))
        },
    )
    .await;
    // Behind it in its group, and in a group of its own.
    send(
        "zipmessage:c-poisoned",
        "behind",
        cloudevent("behind", "c-poisoned", "waits for the poison"),
    )
    .await
    .expect("send behind the poison");
    send(
        "zipmessage:c-healthy",
        "other",
        cloudevent("other", "c-healthy", "flows"),
    )
    .await
    .expect("send in another group");

    until(Duration::from_secs(10), "the other group consumed", || {
        printed(api, "other new message in c-healthy: \"flows\"")
    })
    .await;
    assert!(
        !printed(api, "behind new message"),
        "the message behind the poison waits for it"
    );

    // Five deliveries (maxReceiveCount), then SQS moves it to the DLQ on
    // the next receive: about 6 visibility timeouts of 3 s.
    let moved = Instant::now() + Duration::from_secs(60);
    let dead = loop {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await;
        // moto under load can outlast the SDK's 5 s: ask again.
        if let Some(message) = got.as_ref().ok().and_then(|g| g.messages().first()) {
            break message.clone();
        }
        assert!(
            Instant::now() < moved,
            "the poison reached the DLQ (last receive: {:?})",
            got.err()
        );
        assert!(
            !printed(api, "behind new message"),
            "nothing behind the poison runs before it leaves"
        );
    };
    assert_eq!(dead.body(), Some("{\"not\": \"a CloudEvent\"}"));
    let attribute = |name| {
        dead.attributes()
            .and_then(|a| a.get(&name))
            .cloned()
            .unwrap_or_default()
    };
    use aws_sdk_sqs::types::MessageSystemAttributeName as S;
    assert_eq!(attribute(S::MessageGroupId), "zipmessage:c-poisoned");
    // The count moves with the message: five deliveries, then this receive.
    assert_eq!(
        attribute(S::ApproximateReceiveCount).parse::<u32>().ok(),
        Some(6)
    );
    let failures = api
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("is not a switchboard CloudEvent"))
        .count();
    assert_eq!(failures, 5, "one failed delivery per receive");

    until(Duration::from_secs(10), "the group going on", || {
        printed(
            api,
            "behind new message in c-poisoned: \"waits for the poison\"",
        )
    })
    .await;
    let lines = api.stdout_lines();
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
    assert!(position("other new message") < position("behind new message"));
}
