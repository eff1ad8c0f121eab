//! `switchboard-local` as a developer meets it: its help, what it says with
//! no stack, and the running stack as the one source of truth for every
//! other terminal — the settings `make local` was started with reach `env`
//! and `sign` run elsewhere in the repository, a second `up` is refused, and
//! a stack that died is told apart from one that runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use switchboard_tests::{
    binary, fixture, interrupt, moto_endpoint, root, unique, without_developer_settings,
};

/// The tool run from `dir` with the state file `state` and none of the
/// developer's provider settings.
fn tool(dir: &Path, state: &Path) -> Command {
    let mut command = Command::new(binary("switchboard-local"));
    command
        .current_dir(dir)
        .env("SWITCHBOARD_STATE", state)
        .env_remove("SWITCHBOARD_PORT");
    without_developer_settings(&mut command);
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("switchboard-local runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_state() -> PathBuf {
    std::env::temp_dir().join(unique("cli-")).join("stack.json")
}

/// `switchboard-local up` with `env`, until its state file names it.
fn up(state: &Path, env: &[(&str, &str)]) -> Child {
    let mut up = tool(&root(), state);
    up.args(["up", "--port", "0", "--stack", &unique("cli")])
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = up.spawn().expect("up starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = child.id();
    let names_it = || {
        std::fs::read_to_string(state)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|s| s["pid"] == pid)
    };
    while !names_it() {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("up exited: {status}");
        }
        assert!(Instant::now() < deadline, "up did not start within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// `env`'s `export NAME=value` lines as pairs.
fn exports(output: &Output) -> Vec<(String, String)> {
    text(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.strip_prefix("export ")?.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[test]
fn help_lists_every_command_and_no_arguments_start_nothing() {
    let state = temp_state();
    let commands = [
        "up",
        "status",
        "env",
        "sign",
        "events",
        "watch",
        "replay",
        "reprocess",
    ];
    let help = run(tool(&root(), &state).arg("--help"));
    assert!(help.status.success(), "{}", text(&help.stderr));
    for command in commands {
        assert!(
            text(&help.stdout).contains(&format!("\n  {command} ")),
            "--help lists {command}:\n{}",
            text(&help.stdout)
        );
        let own = run(tool(&root(), &state).args([command, "--help"]));
        assert!(own.status.success(), "{command} --help");
        assert!(text(&own.stdout).contains("Usage: switchboard-local"));
    }
    // No arguments: the usage, and no stack (it returns at once).
    let bare = tool(&root(), &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let started = Instant::now();
    let bare = bare.wait_with_output().expect("exits");
    assert_eq!(bare.status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(text(&bare.stderr).contains("Usage: switchboard-local"));
    assert!(!state.exists());
}

#[test]
fn without_a_stack_each_command_says_so_and_how_to_start_one() {
    let state = temp_state();
    let body = root().join("tests/fixtures/bird/conversation.updated.json");
    let body = body.to_str().expect("utf-8 path");
    for args in [
        vec!["env"],
        vec!["events"],
        vec!["watch"],
        vec!["sign", "bird", body],
        vec!["replay", r#"{"events": []}"#],
        vec!["reprocess", r#"{"events": []}"#],
    ] {
        let out = run(tool(&root(), &state).args(&args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: no local stack is running")
                && stderr.contains("make local")
                && !stderr.contains("backtrace"),
            "{args:?}: {stderr}"
        );
    }
    let status = run(tool(&root(), &state).arg("status"));
    assert_eq!(status.status.code(), Some(3));
    assert!(text(&status.stdout).contains("no local stack is running"));
    // Outside any repository, with no state file named, it says where it
    // looked instead of making a `.local/` there.
    let outside = std::env::temp_dir().join(unique("outside-"));
    std::fs::create_dir_all(&outside).expect("dir");
    let out = run(Command::new(binary("switchboard-local"))
        .current_dir(&outside)
        .env_remove("SWITCHBOARD_STATE")
        .env_remove("SWITCHBOARD_ROOT")
        .arg("env"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not inside a switchboard repository"));
    assert!(!outside.join(".local").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_running_stack_is_what_every_other_terminal_sees() {
    let state = temp_state();
    let token = format!("cli-{}", unique("token-0123456789"));
    let bird_key = unique("bird-key-0123456789-");
    let tokens = format!("acme:{token},second-token-0123456789");
    let mut stack = up(
        &state,
        &[
            ("ZIPMESSAGE_TOKENS", tokens.as_str()),
            ("BIRD_SIGNING_KEYS", bird_key.as_str()),
        ],
    );

    // Another terminal, in a subdirectory, without those variables.
    let elsewhere = root().join("tests/fixtures");
    let env = run(tool(&elsewhere, &state).arg("env"));
    assert!(env.status.success(), "{}", text(&env.stderr));
    let exports = exports(&env);
    let get = |name: &str| {
        exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("env exports {name}: {exports:?}"))
    };
    assert_eq!(get("ZIPMESSAGE_TOKEN"), token);
    assert_eq!(get("ZIPMESSAGE_TOKEN_ACME"), token);
    assert_eq!(get("BIRD_SIGNING_KEY"), bird_key);
    let base = get("SWITCHBOARD_URL");

    // What it prints works against the stack.
    let http = reqwest::Client::new();
    let zipmessage = http
        .post(format!("{base}/webhooks/zipmessage/{token}"))
        .header("content-type", "application/json")
        .body(fixture("zipmessage", "message_created.json"))
        .send()
        .await
        .expect("posted");
    assert_eq!(zipmessage.status(), 200);
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signed = run(tool(&elsewhere, &state).args([
        "sign",
        "bird",
        "bird/conversation.updated.json",
        "--timestamp",
        &timestamp,
    ]));
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let bird = http
        .post(get("BIRD_WEBHOOK_URL"))
        .header("content-type", "application/json")
        .header("messagebird-request-timestamp", &timestamp)
        .header("messagebird-signature", text(&signed.stdout).trim())
        .body(fixture("bird", "conversation.updated.json"))
        .send()
        .await
        .expect("posted");
    assert_eq!(bird.status(), 200, "{:?}", bird.text().await);
    let events = run(tool(&elsewhere, &state).arg("events"));
    assert!(events.status.success(), "{}", text(&events.stderr));
    assert!(
        text(&events.stdout).contains(": 2 events"),
        "{}",
        text(&events.stdout)
    );

    // A second stack on the same state file is refused, and says where the
    // first is.
    let second = run(tool(&root(), &state)
        .args(["up", "--port", "0"])
        .env("AWS_ENDPOINT_URL", moto_endpoint()));
    assert_eq!(second.status.code(), Some(1));
    let message = text(&second.stderr);
    assert!(message.contains("already running"), "{message}");
    assert!(
        message.contains(&format!("kill {}", stack.id())),
        "{message}"
    );

    // A stack killed outright leaves its file behind: stale, not running.
    stack.kill().expect("kill");
    stack.wait().expect("reaped");
    let status = run(tool(&root(), &state).arg("status"));
    assert_eq!(status.status.code(), Some(3));
    assert!(
        text(&status.stdout).contains("has stopped"),
        "{}",
        text(&status.stdout)
    );
    let events = run(tool(&root(), &state).arg("events"));
    assert!(text(&events.stderr).contains("which has stopped"));
    // The next `up` replaces it, and removes it on Ctrl-C.
    let mut again = up(&state, &[]);
    interrupt(i64::from(again.id()));
    let stopped = again.wait().expect("exits");
    assert!(stopped.success(), "up after Ctrl-C: {stopped}");
    assert!(!state.exists(), "the stopped stack removed its state file");
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_moves_a_dead_letter_queues_messages_back_in_order() {
    use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName as System};
    let t = switchboard_tests::TestStack::start().await;
    let sqs = aws_sdk_sqs::Client::new(&t.stack.sdk);
    let source = t.stack.provisioned.queues["MessagesQueue"].clone();
    let dlq = t.stack.provisioned.queues["MessagesDeadLetterQueue"].clone();
    for (body, dedup) in [("first", "d1"), ("second", "d2")] {
        sqs.send_message()
            .queue_url(&source)
            .message_body(body)
            .message_group_id("zipmessage:c1")
            .message_deduplication_id(dedup)
            .message_attributes(
                "type",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("message.created")
                    .build()
                    .expect("attribute"),
            )
            .send()
            .await
            .expect("sent");
    }
    // A consumer that fails them, one at a time as FIFO hands them out:
    // received and never deleted, until the queue's redrive policy (5
    // receives) moves each to the DLQ, the first first.
    let count = |url: String| {
        let sqs = sqs.clone();
        async move {
            let attributes = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                )
                .send()
                .await
                .expect("attributes");
            attributes
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                })
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or_default()
        }
    };
    for _ in 0..20 {
        if count(dlq.clone()).await == 2 {
            break;
        }
        sqs.receive_message()
            .queue_url(&source)
            .max_number_of_messages(1)
            .visibility_timeout(0)
            .send()
            .await
            .expect("received");
    }
    assert_eq!(count(dlq.clone()).await, 2, "both dead-lettered");

    let state = t.state_file();
    let dlq_name = switchboard_local::queue_name(&dlq).to_owned();
    let out = run(tool(&root(), &state).args(["redrive", &dlq_name]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 messages moved back to"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(count(dlq.clone()).await, 0);

    // Back in their group, in order, with their attributes, under new
    // deduplication ids (so SQS did not drop them as copies).
    let received = sqs
        .receive_message()
        .queue_url(&source)
        .max_number_of_messages(10)
        .message_system_attribute_names(System::All)
        .message_attribute_names("All")
        .send()
        .await
        .expect("received");
    let messages = received.messages();
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["first", "second"]);
    for m in messages {
        let system = |name: System| m.attributes().and_then(|a| a.get(&name)).cloned();
        assert_eq!(
            system(System::MessageGroupId).as_deref(),
            Some("zipmessage:c1")
        );
        let dedup = system(System::MessageDeduplicationId).unwrap_or_default();
        assert!(
            dedup != "d1" && dedup != "d2" && !dedup.is_empty(),
            "{dedup}"
        );
        let attribute = m.message_attributes().and_then(|a| a.get("type"));
        assert_eq!(
            attribute.and_then(|a| a.string_value()),
            Some("message.created")
        );
    }

    // A queue the stack does not have is named as such.
    let out = run(tool(&root(), &state).args(["redrive", "nope.fifo"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("has no queue nope.fifo"));
}
