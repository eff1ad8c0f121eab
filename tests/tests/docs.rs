//! Docs that cannot drift: what `template.yaml` decides (resource counts,
//! function, alarm and parameter lists, the idle cost) is generated into
//! `docs/` by `make docs` (`switchboard_local::docs`), and no other line of
//! the README or `docs/` states a count of the stack's resources.

use switchboard_local::docs::{update, Facts, IdlePrices};
use switchboard_tests::root;

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_generated_parts_of_the_docs_are_what_the_template_says() {
    let facts = Facts::parse(&read("template.yaml")).expect("the template parses");
    let prices = IdlePrices::from_prices_json(&read("infra/prices.json")).expect("prices");
    let parts = facts.parts(prices);
    let document = read("docs/operations.md");
    for name in parts.keys() {
        assert!(
            document.contains(&format!("<!-- generated: {name} ")),
            "docs/operations.md has the generated part {name:?}"
        );
    }
    let updated = update(&document, &parts).expect("the markers are whole");
    assert!(
        updated == document,
        "docs/operations.md is not what template.yaml says: run `make docs`"
    );
}

#[test]
fn no_hand_written_line_counts_the_stacks_resources() {
    let count = regex::Regex::new(
        r"(?i)\b([0-9]+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)( [a-z-]+)? (functions|lambdas|secrets|roles|log groups|alarms)\b",
    )
    .expect("regex");
    let mut found = Vec::new();
    let mut paths = vec!["README.md".to_owned()];
    paths.extend(
        std::fs::read_dir(root().join("docs"))
            .expect("docs/")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".md"))
            .map(|name| format!("docs/{name}")),
    );
    for path in &paths {
        let mut generated = false;
        for (n, line) in read(path).lines().enumerate() {
            if line.starts_with("<!-- generated: ") {
                generated = true;
            } else if line.starts_with("<!-- end generated: ") {
                generated = false;
            } else if !generated {
                if let Some(m) = count.find(line) {
                    found.push(format!("{path}:{}: {}", n + 1, m.as_str()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "counts written by hand (generate them with `make docs`, or say it without a number):\n{}",
        found.join("\n")
    );
}

/// A heading's anchor as GitHub makes it: lowercase, spaces to `-`, and
/// only letters, digits, `-` and `_` kept.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown document's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_link_between_the_docs_lands_on_a_file_and_a_heading() {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").expect("regex");
    let mut documents = vec![root().join("README.md")];
    documents.extend(
        std::fs::read_dir(root().join("docs"))
            .expect("docs/")
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    for document in &documents {
        let text = std::fs::read_to_string(document).expect("readable");
        let mut fenced = false;
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            for target in link.captures_iter(line).map(|c| c[1].to_owned()) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
                let file = if path.is_empty() {
                    document.clone()
                } else {
                    document.parent().expect("a directory").join(path)
                };
                let name = document.strip_prefix(root()).unwrap_or(document).display();
                if !file.exists() {
                    broken.push(format!("{name}: {target} (no such file)"));
                } else if !fragment.is_empty()
                    && file.extension().is_some_and(|e| e == "md")
                    && !anchors(&std::fs::read_to_string(&file).expect("readable"))
                        .iter()
                        .any(|a| a == fragment)
                {
                    broken.push(format!("{name}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
