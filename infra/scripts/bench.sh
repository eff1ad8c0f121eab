#!/usr/bin/env bash
# `make bench`: every performance figure of docs/performance.md.
#   1. pipeline CPU per event (criterion, in-process, in-memory ports)
#   2. release binaries; moto on a free loopback port
#   3. cold start + first invoke, peak RSS over 1,000 invocations
#      (target/release/lambda-bench against moto); then `make cost` (write
#      units and dollars per million events, infra/scripts/cost.sh), and
#      a time window's Scan over 100,000 items (tests/src/bin/scan_bench.rs)
#   4. size of each arm64 bootstrap as `sam build` makes it (cargo lambda build --arm64)
#   5. instructions per event (infra/scripts/instructions.sh), when valgrind is installed
# Each step prints its figures; nothing here is a pass/fail test.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Figures of the code, not of the local IAM check: its evaluator answers
# each new call in about 1.6 ms, which AWS's IAM does not add to a bill.
export SWITCHBOARD_IAM="${SWITCHBOARD_IAM:-off}"
cd "$ROOT"
bootstrap_venv
# Every provider's webhook crate (functions/*-webhook) and the fanout.
mapfile -t MEASURED < <(cd functions && ls -d -- *-webhook; echo fanout)
FUNCTIONS=()
for f in "${MEASURED[@]}"; do FUNCTIONS+=(-p "$f"); done

log "1/5 pipeline CPU per event (criterion)"
cargo bench --locked -p switchboard-tests --bench pipeline

log "2/5 release build"
cargo build --locked --release "${FUNCTIONS[@]}"
cargo build --locked --release -p switchboard-tests --bin lambda-bench
trap stop_moto EXIT
start_moto "${MOTO_PORT:-$(free_port)}"

log "3/5 cold start, memory (release binaries, Lambda Runtime API emulator, moto)"
"$TARGET/release/lambda-bench"
log "3/5 cost per event (make cost: its own moto, debug binaries)"
bash "$ROOT/infra/scripts/cost.sh"
log "3/5 a window's Scan: read units and pages over 100,000 items (scan-bench)"
"$TARGET/debug/scan-bench" --items "${SCAN_ITEMS:-100000}"

log "4/5 arm64 bootstrap size (cargo lambda build --release --arm64, as sam build runs it)"
rustup target add aarch64-unknown-linux-gnu >/dev/null
PATH="$VENV/bin:$PATH" cargo lambda build --release --arm64 "${FUNCTIONS[@]}"
for f in "${MEASURED[@]}"; do
  bin="$TARGET/lambda/$f/bootstrap"
  bytes=$(stat -c %s "$bin")
  machine=$(od -An -tx1 -j18 -N2 "$bin" | tr -d ' ')   # ELF e_machine: b700 = aarch64
  [[ "$machine" == "b700" ]] && arch=aarch64 || arch="e_machine=$machine"
  awk -v f="$f" -v b="$bytes" -v a="$arch" 'BEGIN { printf "%-20s bootstrap %9d bytes = %5.2f MB (%s)\n", f, b, b / 1e6, a }'
done

if command -v valgrind >/dev/null; then
  log "5/5 instructions per event (valgrind; a count this VM's noise cannot move)"
  EVENTS="${EVENTS:-500}" bash "$ROOT/infra/scripts/instructions.sh"
else
  log "5/5 skipped: valgrind is not installed (apt-get install valgrind), so no instruction counts"
fi
