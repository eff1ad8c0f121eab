#!/usr/bin/env bash
# `make cost`: item bytes, write units and dollars per million events for
# every seed, from infra/prices.json and what the binaries really log
# (tests/src/bin/cost.rs). Debug binaries: they log what release ones do.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Figures of the code, not of the local IAM check: its evaluator answers
# each new call in about 1.6 ms, which AWS's IAM does not add to a bill.
export SWITCHBOARD_IAM="${SWITCHBOARD_IAM:-off}"
cd "$ROOT"
bootstrap_venv local
cargo build --locked --workspace --bins
trap stop_moto EXIT
start_moto "${MOTO_PORT:-$(free_port)}"
"$TARGET/debug/cost"
