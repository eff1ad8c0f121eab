//! `make docs`: rewrites the parts of `docs/` that `template.yaml` decides
//! ([`switchboard_local::docs`]). `--check` changes nothing and fails when
//! a document differs from what it would write.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use std::process::ExitCode;
use switchboard_local::docs::{update, Facts, IdlePrices};

/// The documents with generated parts, from the repository's root.
const DOCUMENTS: [&str; 1] = ["docs/operations.md"];

fn main() -> ExitCode {
    match run(std::env::args().any(|a| a == "--check")) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(check: bool) -> Result<bool> {
    let root = switchboard_local::state::repository()?;
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path)).with_context(|| format!("reading {path}"))
    };
    let facts = Facts::parse(&read("template.yaml")?)?;
    let parts = facts.parts(IdlePrices::from_prices_json(&read("infra/prices.json")?)?);
    let mut current = true;
    for path in DOCUMENTS {
        let document = read(path)?;
        let updated = update(&document, &parts).with_context(|| path.to_owned())?;
        if updated == document {
            continue;
        }
        current = false;
        if check {
            eprintln!("{path} is not what template.yaml says: run `make docs`");
        } else {
            std::fs::write(root.join(path), updated).with_context(|| format!("writing {path}"))?;
            println!("updated {path}");
        }
    }
    Ok(current || !check)
}
