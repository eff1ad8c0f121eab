#!/usr/bin/env bash
# `make test-clock`: the tests with the clock pinned where a boundary falls.
# The test binaries run under libfaketime (Debian's faketime package,
# installed here when missing); moto runs with the same clock through
# time-machine (infra/scripts/moto_at.py), so what it stamps (stream
# records, SQS visibility) agrees with what the tests read.
# The clock starts at each instant and runs on from there, so every run
# crosses its boundary while the tests post, store and replay:
#   - 23:59:40 UTC on 31 December: a day, a month and a year end. The
#     whole suite runs here, as `make test` runs it.
#   - 23:59:40 UTC on 28 February 2027: a month end (no 29th)
#   - Europe/Paris at 01:59:40 on 28 March 2027: the machine's local time
#     jumps from 02:00 to 03:00 (summer time starts)
#   - Europe/Paris at 02:59:40 on 31 October 2027 (summer time: the local
#     hour 02:00-03:00 happens twice)
# The last three run the tests whose inputs or windows are times.
# Monotonic clocks are left alone (timers and timeouts run at real speed).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
bootstrap_venv
bootstrap_iam
if ! command -v faketime >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's faketime (libfaketime)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
  else
    echo "faketime was not found: install Debian's (or your system's) faketime package" >&2
    exit 1
  fi
fi
log "building the tests"
# cargo builds on the real clock: rustc hangs under libfaketime.
cargo build --locked --workspace --bins --tests --quiet
cargo test --locked --workspace --all-targets --no-run --quiet
# What the README test's `make local` builds (one package's features).
cargo build --locked --quiet -p switchboard-local
cargo build --locked --quiet -p switchboard-local -p example-consumer
# The tests whose inputs or windows are times: the day partitions, the
# replay windows and pages, signed times and their bounds.
TIME_TESTS=(-p switchboard-tests -p switchboard-pipeline -p switchboard-providers --lib
            --test tools --test tenants --test pipeline --test real_senders --test local_stack)
WHOLE_SUITE=(--workspace --all-targets)
export SWITCHBOARD_IAM=required
export FAKETIME_DONT_FAKE_MONOTONIC=1
trap stop_moto EXIT
for pinned in "UTC|2026-12-31 23:59:40|whole" "UTC|2027-02-28 23:59:40|time" \
              "Europe/Paris|2027-03-28 01:59:40|time" "Europe/Paris|2027-10-31 02:59:40|time"; do
  IFS='|' read -r zone at which <<< "$pinned"
  if [[ "$which" == whole ]]; then tests=("${WHOLE_SUITE[@]}"); else tests=("${TIME_TESTS[@]}"); fi
  log "the clock at $at ($zone): $([[ "$which" == whole ]] && echo "every test" || echo "the time-sensitive tests")"
  export TZ="$zone"
  MOTO_CLOCK_AT="$(date -d "$at" +%s)" start_moto "$(free_port)"
  FAKETIME="@$at" LD_PRELOAD="$(faketime_library)" cargo test --locked "${tests[@]}"
  stop_moto
done
log "the tests pass at every pinned instant"
