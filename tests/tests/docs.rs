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
    for path in ["README.md", "docs/operations.md", "docs/performance.md"] {
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
