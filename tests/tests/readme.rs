//! The README's walkthroughs, run as written: "Try it" and "Two customers
//! on one stack". Each section's blocks are read from README.md (never
//! copied here), run in order in a shell against a `make local` of the
//! test's own (free ports, its own state file, so a developer's stack may
//! keep running; the section's own `… make local` block when it has one),
//! and every output the section shows is checked against what the
//! commands really print. Then the stack is stopped as a developer does,
//! with Ctrl-C.

use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_tests::{interrupt, root, unique, without_developer_settings};

/// One fenced block of the section: its language and its text.
#[derive(Debug)]
struct Block {
    lang: String,
    text: String,
}

/// The fenced blocks of the README section whose heading starts with `heading`.
fn section_blocks(readme: &str, heading: &str) -> Vec<Block> {
    let start = readme
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("README.md has a section {heading:?}"));
    let rest = &readme[start + 1..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| i + heading.len());
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in rest[..end].lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_owned(),
                    text: String::new(),
                });
            }
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed block in {heading:?}");
    blocks
}

/// What differs between runs masked (the times events are received at:
/// any time from 2025 on; the fixtures' own are older), and trailing
/// blanks trimmed.
fn normalise(text: &str) -> String {
    let time =
        Regex::new(r"20(2[5-9]|[3-9]\d)-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").expect("regex");
    time.replace_all(text, "<received at>")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sends SIGINT to a process group, as Ctrl-C in its terminal does.
fn ctrl_c(group: &Child) {
    interrupt(-i64::from(group.id()));
}

/// A process group this test started: Ctrl-C'd, then killed, if the test
/// ends (or fails) while it runs.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            ctrl_c(&self.0);
            std::thread::sleep(Duration::from_secs(3));
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.wait();
        }
    }
}

/// Waits for `child` to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A command in the repository with this test's stack settings, none of the
/// developer's provider overrides, in a process group of its own.
fn command(program: &str, state: &Path, moto_port: u16, gateway_port: u16) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    command
        .current_dir(root())
        .env("SWITCHBOARD_STATE", state)
        .env("MOTO_PORT", moto_port.to_string())
        .env("SWITCHBOARD_PORT", gateway_port.to_string())
        .env_remove("AWS_ENDPOINT_URL")
        .process_group(0);
    without_developer_settings(&mut command);
    command
}

#[test]
fn the_readme_try_it_section_runs_as_written() {
    run_section("## Try it");
}

#[test]
fn the_readme_two_customer_walkthrough_runs_as_written() {
    run_section("## Two customers on one stack");
}

/// Whether a shell block is the one that starts the stack.
fn starts_the_stack(block: &Block) -> bool {
    block.lang == "sh" && block.text.trim_end().ends_with("make local")
}

fn run_section(heading: &str) {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut blocks = section_blocks(&readme, heading);
    let dir = std::env::temp_dir().join(unique("readme-"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state = dir.join("stack.json");
    let (moto_port, gateway_port) = (free_port(), free_port());

    // The section's own `… make local` block, else `make local`, as the
    // README's first command.
    let start = match blocks.iter().position(starts_the_stack) {
        Some(i) => blocks.remove(i).text,
        None => "make local".to_owned(),
    };
    let log = std::fs::File::create(dir.join("make-local.log")).expect("log");
    let mut stack = Group(
        command("bash", &state, moto_port, gateway_port)
            .args(["-c", start.trim()])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("make local starts"),
    );
    let up_by = Instant::now() + Duration::from_secs(600);
    while !state.exists() {
        if let Some(status) = stack.0.try_wait().expect("wait") {
            panic!(
                "make local exited ({status}): {}",
                std::fs::read_to_string(dir.join("make-local.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < up_by, "make local was not up in 600 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The section's blocks: the `watch` block runs in the background, as
    // in its own terminal; the others in order in one shell, as in the
    // other terminal; a text block shows the output of the shell block
    // before it, or (starting with `── `) one message `watch` prints.
    let mut watch = None;
    let mut script = String::from("set -euo pipefail\n");
    let mut expected_outputs = Vec::new();
    let mut watch_shows = Vec::new();
    let mut shell_blocks = 0;
    for block in &blocks {
        match block.lang.as_str() {
            "sh" if block
                .text
                .trim_end()
                .lines()
                .last()
                .is_some_and(|l| l.trim_start().starts_with("switchboard-local watch")) =>
            {
                let out = std::fs::File::create(dir.join("watch.out")).expect("watch output");
                watch = Some(Group(
                    command("bash", &state, moto_port, gateway_port)
                        .args(["-c", &block.text])
                        .stdout(out)
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("watch starts"),
                ));
            }
            "sh" => {
                shell_blocks += 1;
                script.push_str(&format!("echo '@@block {shell_blocks}@@'\n{}", block.text));
            }
            "text" if block.text.starts_with("── ") => watch_shows.push(block.text.clone()),
            "text" => expected_outputs.push((shell_blocks, block.text.clone())),
            other => panic!("a {other:?} block in {heading:?}"),
        }
    }
    let mut watch = watch.expect("the section starts `switchboard-local watch`");
    assert!(shell_blocks >= 2, "{blocks:#?}");

    let output = command("bash", &state, moto_port, gateway_port)
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the section's commands failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Vec<&str> = stdout.split("@@block ").skip(1).collect();
    // Every output shown is what was printed, up to `normalise`; all
    // differences are reported at once.
    let mut differences = String::new();
    for (block, expected) in &expected_outputs {
        let actual = printed[block - 1]
            .split_once("@@\n")
            .map_or("", |(_, out)| out);
        if normalise(expected) != normalise(actual) {
            differences.push_str(&format!(
                "\nshell block {block}: the README shows\n{expected}\nbut it printed\n{actual}\n"
            ));
        }
    }
    assert!(differences.is_empty(), "{differences}");
    assert!(
        expected_outputs.len() >= 2,
        "outputs shown: {expected_outputs:#?}"
    );

    // What `watch` printed: the message the README shows, and the replayed
    // messages under `<event id>:replay:<replay_id>`.
    let report: serde_json::Value = serde_json::from_str(
        printed
            .iter()
            .find_map(|out| {
                out.split_once("@@\n")
                    .filter(|(_, o)| o.contains("\"replay_id\""))
            })
            .map(|(_, out)| out)
            .expect("the replay block printed its report"),
    )
    .expect("the replay report is JSON");
    let replay_id = report["replay_id"].as_str().expect("a replay id");
    let replayed = report["published"].as_u64().expect("a count");
    let deadline = Instant::now() + Duration::from_secs(30);
    let watched = loop {
        let watched = std::fs::read_to_string(dir.join("watch.out")).unwrap_or_default();
        let replays = watched.matches(&format!(":replay:{replay_id}\n")).count() as u64;
        if replays == replayed || Instant::now() > deadline {
            assert_eq!(replays, replayed, "replayed messages watched:\n{watched}");
            break watched;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let messages: Vec<String> = watched
        .split("\n── ")
        .map(|m| normalise(&format!("── {}", m.trim_start_matches("── "))))
        .collect();
    // A message shown whole, or its first lines (the queue, ids and
    // attributes before the CloudEvent).
    for shown in &watch_shows {
        assert!(
            messages.iter().any(|m| m.starts_with(&normalise(shown))),
            "watch never printed the message the README shows:\n{shown}\nit printed:\n{watched}"
        );
    }
    assert!(
        !watch_shows.is_empty(),
        "the README shows a message of watch"
    );

    // Ctrl-C in each terminal: watch stops, the stack stops cleanly
    // (no make error) and removes its state file.
    ctrl_c(&watch.0);
    wait_exit(&mut watch.0, Duration::from_secs(10));
    ctrl_c(&stack.0);
    let status = wait_exit(&mut stack.0, Duration::from_secs(30));
    let log = std::fs::read_to_string(dir.join("make-local.log")).unwrap_or_default();
    // make itself gets the SIGINT too and, as Ctrl-C'd programs should,
    // ends by it once its recipe has stopped, silently.
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success() || status.signal() == Some(2),
        "make local after Ctrl-C: {status}\n{log}"
    );
    assert!(log.contains("local stack stopped"), "{log}");
    assert!(!log.contains("make: ***"), "{log}");
    assert!(!state.exists(), "the stopped stack left its state file");
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
}
