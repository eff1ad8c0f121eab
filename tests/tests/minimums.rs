//! The stated minimums are the true ones, read statically:
//!
//! - Rust: the highest `rust_version` of any package in the lock
//!   (`cargo metadata --locked`) is the workspace's `rust-version` and the
//!   README's "Rust toolchain (X+)";
//! - Python: the highest lower bound of `Requires-Python` among the tools
//!   pinned in `infra/requirements*.txt` (read from their installed metadata
//!   in `.venv`, which `make test` creates first) is the README's "Python X+"
//!   and the scripts' `MIN_PYTHON`.

use std::path::Path;
use std::process::Command;
use switchboard_tests::root;

/// `(major, minor, patch)` of a version text; missing parts are 0.
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.trim().split('.').map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// The text between `before` and `after` in the README's first line that
/// has `before`.
fn stated(before: &str, after: char) -> String {
    let text = readme();
    let at = text
        .find(before)
        .unwrap_or_else(|| panic!("the README states {before:?}"));
    text[at + before.len()..]
        .split(after)
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_stated_rust_version_is_the_highest_the_lock_needs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root())
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let mut needed = ((0, 0, 0), String::new());
    let mut workspace = None;
    for package in metadata["packages"].as_array().expect("packages") {
        let Some(rust) = package["rust_version"].as_str() else {
            continue;
        };
        let id = package["id"].as_str().unwrap_or_default();
        if members.contains(&id) {
            workspace = Some(version(rust));
            continue;
        }
        if version(rust) > needed.0 {
            needed = (
                version(rust),
                format!("{} {}", package["name"], package["version"]),
            );
        }
    }
    let workspace = workspace.expect("the workspace sets rust-version");
    assert_eq!(
        workspace, needed.0,
        "Cargo.toml's rust-version is the lock's highest ({})",
        needed.1
    );
    assert_eq!(
        version(&stated("Rust toolchain (", '+')),
        needed.0,
        "the README states the lock's highest rust-version"
    );
}

/// The lower bound of a `Requires-Python` value (`>=3.10`, `<3.15,>=3.10`,
/// `~=3.5`), if it has one.
fn lower_bound(requires: &str) -> Option<(u32, u32, u32)> {
    requires
        .split(',')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(">=").or_else(|| c.strip_prefix("~=")))
        .map(version)
}

#[test]
fn the_stated_python_version_is_the_highest_the_pinned_tools_need() {
    let requirements = ["infra/requirements-local.txt", "infra/requirements.txt"]
        .map(|f| std::fs::read_to_string(root().join(f)).expect("requirements"))
        .join("\n");
    let site = std::fs::read_dir(root().join(".venv/lib"))
        .expect(".venv exists: make test creates it before running the tests")
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect(".venv has site-packages");
    let mut needed = ((0, 0, 0), String::new());
    let mut pins = 0;
    for line in requirements.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("-r ") {
            continue;
        }
        let (name, pinned) = line.split_once("==").expect("every tool is pinned with ==");
        let name = name.split('[').next().unwrap_or(name).replace('-', "_");
        let metadata = site
            .join(format!("{name}-{pinned}.dist-info"))
            .join("METADATA");
        let text = std::fs::read_to_string(&metadata).unwrap_or_else(|_| {
            panic!("{} is installed ({})", line, Path::new(&metadata).display())
        });
        pins += 1;
        let requires = text
            .lines()
            .find_map(|l| l.strip_prefix("Requires-Python:"))
            .unwrap_or_default();
        if let Some(bound) = lower_bound(requires) {
            if bound > needed.0 {
                needed = (bound, line.to_owned());
            }
        }
    }
    assert!(pins >= 5, "the pinned tools were read");
    assert_eq!(
        version(&stated("Python ", '+')),
        needed.0,
        "the README states the highest Requires-Python ({})",
        needed.1
    );
    let script =
        std::fs::read_to_string(root().join("infra/scripts/common.sh")).expect("common.sh");
    let min = script
        .lines()
        .find_map(|l| l.strip_prefix("MIN_PYTHON=\""))
        .map(|v| v.trim_end_matches('"'))
        .expect("common.sh sets MIN_PYTHON");
    assert_eq!(version(min), needed.0, "the scripts check the same version");
}

#[test]
fn requires_python_bounds_are_read_as_pip_reads_them() {
    assert_eq!(lower_bound(">=3.10"), Some((3, 10, 0)));
    assert_eq!(lower_bound("<3.15,>=3.10"), Some((3, 10, 0)));
    assert_eq!(lower_bound("~=3.5"), Some((3, 5, 0)));
    assert_eq!(lower_bound(""), None);
    assert!(version("1.94.1") > version("1.94"));
}
