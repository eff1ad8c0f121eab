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

/// `switchboard-local up` with `env`, until its state file names it. Its
/// output goes to `banner(state)`.
fn up(state: &Path, env: &[(&str, &str)]) -> Child {
    std::fs::create_dir_all(state.parent().expect("a directory")).expect("state directory");
    let output = std::fs::File::create(banner_file(state)).expect("banner file");
    let mut up = tool(&root(), state);
    up.args(["up", "--port", "0", "--stack", &unique("cli")])
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .envs(env.iter().copied())
        .stdout(output)
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

fn banner_file(state: &Path) -> PathBuf {
    state.with_extension("banner")
}

/// What `up` printed once the stack was up.
fn banner(state: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let printed = std::fs::read_to_string(banner_file(state)).unwrap_or_default();
        if printed.contains("Tools:") {
            return printed;
        }
        assert!(Instant::now() < deadline, "no banner in 30 s: {printed}");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    // Unsuffixed: the default tenant's (the unlabelled token).
    assert_eq!(get("ZIPMESSAGE_TOKEN"), "second-token-0123456789");
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
    // It says so in its log, which is a file here, not a terminal: no
    // colour codes.
    let log = banner(&state);
    assert!(log.contains("replacing the state"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
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

/// Two customers on one stack, as an operator runs it: ZipMessage tokens
/// for acme and globex, Bird keys for acme (labelled, which Bird's keys
/// can only be in JSON) and the default tenant. What the banner shows is
/// what the variables read back; `env` and `sign` name each tenant's key;
/// a replay by a subject that names its tenant finds the conversation.
#[tokio::test(flavor = "multi_thread")]
async fn every_tool_speaks_of_each_tenant_as_the_stack_runs_it() {
    use switchboard_providers::registry::{descriptor, parse_credentials};
    use switchboard_types::Provider;
    let state = temp_state();
    let acme_token = unique("acme-token-0123456789-");
    let globex_token = unique("globex-token-0123456789-");
    let acme_bird = unique("bird-acme-0123456789-");
    let default_bird = unique("bird-default-0123456789-");
    let tokens = format!("acme:{acme_token},globex:{globex_token}");
    let bird_keys =
        serde_json::json!([{"tenant": "acme", "key": acme_bird}, default_bird]).to_string();
    let mut stack = up(
        &state,
        &[
            ("ZIPMESSAGE_TOKENS", tokens.as_str()),
            ("BIRD_SIGNING_KEYS", bird_keys.as_str()),
        ],
    );
    let banner = banner(&state);

    // One webhook URL per ZipMessage tenant, with its tenant.
    for (token, tenant) in [(&acme_token, "acme"), (&globex_token, "globex")] {
        assert!(
            banner.lines().any(
                |line| line.contains(&format!("/webhooks/zipmessage/{token}"))
                    && line.contains(&format!("(tenant {tenant})"))
            ),
            "{banner}"
        );
    }
    // Each variable's value, given back to it, is the same keys of the
    // same tenants.
    let shown = |variable: &str| {
        banner
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(variable))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("the banner shows {variable}: {banner}"))
    };
    for (provider, variable, configured) in [
        (Provider::Zipmessage, "ZIPMESSAGE_TOKENS", &tokens),
        (Provider::Bird, "BIRD_SIGNING_KEYS", &bird_keys),
    ] {
        let d = descriptor(provider);
        assert_eq!(
            parse_credentials(d, &shown(variable)).expect("the shown value reads"),
            parse_credentials(d, configured).expect("the configured value reads"),
            "{variable} as the banner shows it"
        );
    }

    // env: the default tenant's credentials unsuffixed, each label's
    // suffixed; no default ZipMessage token, since none is unlabelled.
    let env = run(tool(&root(), &state).arg("env"));
    assert!(env.status.success(), "{}", text(&env.stderr));
    let exports = exports(&env);
    let get = |name: &str| {
        exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("ZIPMESSAGE_TOKEN"), None, "{exports:?}");
    assert_eq!(get("ZIPMESSAGE_TOKEN_ACME"), Some(acme_token.clone()));
    assert_eq!(get("ZIPMESSAGE_TOKEN_GLOBEX"), Some(globex_token.clone()));
    assert_eq!(get("BIRD_SIGNING_KEY"), Some(default_bird.clone()));
    assert_eq!(get("BIRD_SIGNING_KEY_ACME"), Some(acme_bird.clone()));
    let base = get("SWITCHBOARD_URL").expect("SWITCHBOARD_URL");
    let bird_url = get("BIRD_WEBHOOK_URL").expect("BIRD_WEBHOOK_URL");

    // Posted as each tenant: ZipMessage by URL, Bird signed by `sign`.
    let http = reqwest::Client::new();
    for token in [&acme_token, &globex_token] {
        let posted = http
            .post(format!("{base}/webhooks/zipmessage/{token}"))
            .header("content-type", "application/json")
            .body(fixture("zipmessage", "message_created.json"))
            .send()
            .await
            .expect("posted");
        assert_eq!(posted.status(), 200);
    }
    let timestamp = chrono::Utc::now().timestamp().to_string();
    for tenant in ["default", "acme"] {
        let signed = run(tool(&root(), &state).args([
            "sign",
            "bird",
            "tests/fixtures/bird/conversation.updated.json",
            "--tenant",
            tenant,
            "--timestamp",
            &timestamp,
        ]));
        assert!(
            signed.status.success(),
            "{tenant}: {}",
            text(&signed.stderr)
        );
        let posted = http
            .post(&bird_url)
            .header("content-type", "application/json")
            .header("messagebird-request-timestamp", &timestamp)
            .header("messagebird-signature", text(&signed.stdout).trim())
            .body(fixture("bird", "conversation.updated.json"))
            .send()
            .await
            .expect("posted");
        assert_eq!(posted.status(), 200, "{tenant}: {:?}", posted.text().await);
    }
    let events = text(&run(tool(&root(), &state).arg("events")).stdout);
    assert!(events.contains(": 4 events"), "{events}");
    let keys: Vec<&str> = events
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(4))
        .collect();
    for tenant in ["acme/", "globex/"] {
        assert_eq!(
            keys.iter().filter(|k| k.starts_with(tenant)).count(),
            if tenant == "acme/" { 2 } else { 1 },
            "{events}"
        );
    }
    // A tenant no key is labelled with is named, with those that are.
    let unknown = run(tool(&root(), &state).args([
        "sign",
        "bird",
        "tests/fixtures/bird/conversation.updated.json",
        "--tenant",
        "initech",
    ]));
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("(labelled: acme)"),
        "{}",
        text(&unknown.stderr)
    );

    // Replay by the subject the CloudEvent carries: its tenant is in it.
    let subject = keys
        .iter()
        .find(|k| k.starts_with("globex/"))
        .expect("globex's conversation");
    let request =
        serde_json::json!({"conversation": {"provider": "zipmessage", "subject": subject}});
    let replay = run(tool(&root(), &state).args(["replay", &request.to_string()]));
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    let report: serde_json::Value = serde_json::from_slice(&replay.stdout).expect("a report");
    assert_eq!(report["matched"], 1, "{report}");

    interrupt(i64::from(stack.id()));
    assert!(stack.wait().expect("exits").success());
}

/// What stops `up` is said in one line that names the setting to change:
/// no moto at AWS_ENDPOINT_URL, the gateway's port taken.
#[test]
fn up_says_in_one_line_what_stops_it_and_what_to_set() {
    let state = temp_state();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").port().to_string();
    let nobody = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        format!(
            "http://127.0.0.1:{}",
            free.local_addr().expect("addr").port()
        )
    };
    for (endpoint, port, names) in [
        (nobody.as_str(), "0", ["AWS_ENDPOINT_URL", "make local"]),
        (
            moto_endpoint().as_str(),
            port.as_str(),
            ["SWITCHBOARD_PORT", &port],
        ),
    ] {
        let out = run(tool(&root(), &state)
            .args(["up", "--port", port, "--stack", &unique("cli")])
            .env("AWS_ENDPOINT_URL", endpoint));
        assert_eq!(out.status.code(), Some(1));
        let said = text(&out.stderr);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(said.len() < 200, "{said}");
        for name in names {
            assert!(said.contains(name), "{said} names {name}");
        }
    }
    drop(taken);
}
