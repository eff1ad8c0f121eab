//! Each function's AWS calls are checked against its own role in
//! template.yaml, resource and conditions included, as AWS checks them
//! (`switchboard_local::iam`, `@cloud-copilot/iam-simulate`): a call its
//! role does not allow is refused with `AccessDeniedException`, naming the
//! function, the action and the resource.
//!
//! These tests make refused calls on purpose, so they keep them out of the
//! call log that `make test`'s coverage check reads (it fails on any
//! refused call of the rest of the suite).

use aws_sdk_dynamodb::types::AttributeValue;
use switchboard_tests::TestStack;
use switchboard_types::Family;

/// A stack whose refused calls stay out of the suite's call log.
async fn stack() -> TestStack {
    std::env::remove_var("SWITCHBOARD_IAM_LOG");
    std::env::set_var("SWITCHBOARD_IAM", "required");
    TestStack::start().await
}

/// The error's message, as the SDK reports AWS's.
fn denial<E: std::error::Error + 'static>(result: Result<impl std::fmt::Debug, E>) -> String {
    let error = result.expect_err("refused as AWS would refuse it");
    let text = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&error));
    assert!(text.contains("AccessDeniedException"), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outside_the_role_is_refused_naming_function_action_and_resource() {
    let t = stack().await;
    // A webhook stores; it never publishes.
    let sqs = aws_sdk_sqs::Client::new(t.stack.sdk_of("zipmessage-webhook"));
    let queue = t.stack.queue_url(Family::Messages);
    let text = denial(
        sqs.send_message()
            .queue_url(queue)
            .message_body("{}")
            .message_group_id("g")
            .message_deduplication_id("d")
            .send()
            .await,
    );
    let queue_name = queue.rsplit('/').next().expect("a queue name");
    for part in [
        "zipmessage-webhook",
        "sqs:SendMessage",
        &format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}"),
        "ZipmessageWebhookRole",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_may_store_only_its_own_providers_partition() {
    let t = stack().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(t.stack.sdk_of("zipmessage-webhook"));
    let put = |pk: &str| {
        dynamodb
            .put_item()
            .table_name(&t.stack.table_name)
            .item("pk", AttributeValue::S(pk.into()))
            .item("sk", AttributeValue::S("#iam-test".into()))
    };
    // The role's condition: dynamodb:LeadingKeys like "zipmessage#*".
    let text = denial(put("bird#default#x").send().await);
    assert!(text.contains("dynamodb:PutItem"), "{text}");
    put("zipmessage#default#iam-test")
        .send()
        .await
        .expect("its own provider's partition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_tools_read_what_they_select_by_and_nothing_more() {
    let t = stack().await;
    for tool in ["replay", "reprocess"] {
        let dynamodb = aws_sdk_dynamodb::Client::new(t.stack.sdk_of(tool));
        // A conversation or events by id: the table itself.
        dynamodb
            .query()
            .table_name(&t.stack.table_name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S("zipmessage#default#x".into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{tool} queries the table: {e:?}"));
        let by_day = dynamodb
            .query()
            .table_name(&t.stack.table_name)
            .index_name("by-day")
            .key_condition_expression("#d = :d")
            .expression_attribute_names("#d", "day")
            .expression_attribute_values(":d", AttributeValue::S("2026-12-31".into()))
            .send()
            .await;
        let scan = dynamodb.scan().table_name(&t.stack.table_name).send().await;
        if tool == "replay" {
            // A window of every event: a Scan of the table, never the index.
            scan.unwrap_or_else(|e| panic!("replay scans the table: {e:?}"));
            let text = denial(by_day);
            assert!(
                text.contains("dynamodb:Query") && text.contains("index/by-day"),
                "{text}"
            );
        } else {
            // A window's quarantined events: the sparse index, never a Scan.
            by_day.unwrap_or_else(|e| panic!("reprocess queries the by-day index: {e:?}"));
            let text = denial(scan);
            assert!(
                text.contains(tool) && text.contains("dynamodb:Scan"),
                "{text}"
            );
        }
    }
    // Replay never writes.
    let replay = aws_sdk_dynamodb::Client::new(t.stack.sdk_of("replay"));
    denial(
        replay
            .put_item()
            .table_name(&t.stack.table_name)
            .item("pk", AttributeValue::S("zipmessage#default#x".into()))
            .item("sk", AttributeValue::S("#iam-test".into()))
            .send()
            .await,
    );
}
