#!/usr/bin/env bash
# `make load [EVENTS=2000]`: N distinct events x 3 deliveries, shuffled, 64 in
# flight, across the three providers, through the local gateway on its own
# moto (stopped on exit, by PID). Prints and checks: every response 2xx,
# N events stored, N distinct messages queued, p50/p99 latency.
# The latency is dominated by moto (one Python process), not by switchboard.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Figures of the code, not of the local IAM check: its evaluator answers
# each new call in about 1.6 ms, which AWS's IAM does not add to a bill.
export SWITCHBOARD_IAM="${SWITCHBOARD_IAM:-off}"
cd "$ROOT"
bootstrap_venv local
log "building the load tool"
cargo build --locked -p switchboard-tests --bin load
trap stop_moto EXIT
start_moto "${MOTO_PORT:-$(free_port)}"
log "load: ${EVENTS:-2000} events x ${COPIES:-3} copies, ${CONCURRENCY:-64} in flight"
"$TARGET/debug/load" --events "${EVENTS:-2000}" --copies "${COPIES:-3}" \
  --concurrency "${CONCURRENCY:-64}"
