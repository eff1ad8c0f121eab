#!/usr/bin/env bash
# `make local`: the whole stack on this machine, no AWS account needed.
#   1. .venv with moto[server] (first run only)
#   2. moto on 127.0.0.1:${MOTO_PORT:-4566}
#   3. switchboard-local: creates the table, stream, queues and secrets from
#      template.yaml, serves the webhook routes on 127.0.0.1:${SWITCHBOARD_PORT:-3000},
#      and polls the stream into the fanout; it records what it runs with in
#      .local/stack.json (or $SWITCHBOARD_STATE), which the other commands read.
#   4. with EXAMPLE_CONSUMER=true, functions/example-consumer on the three
#      queues, as Lambda's SQS event source runs it.
# A stack already running is reported, not doubled. Ctrl-C stops everything
# this script started, and nothing else.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
bootstrap_venv local
case "${EXAMPLE_CONSUMER:-false}" in
  true|1|yes|on)
    log "building switchboard-local and example-consumer"
    cargo build --quiet -p switchboard-local -p example-consumer ;;
  *)
    log "building switchboard-local"
    cargo build --quiet -p switchboard-local ;;
esac
BIN="$TARGET/debug/switchboard-local"
if running="$("$BIN" status)"; then
  printf '%s\n' "$running" >&2
  echo "make local: a stack is already running; use it (export PATH=\"\$PWD/infra/bin:\$PATH\"; switchboard-local --help) or stop it first" >&2
  exit 1
fi
GATEWAY_PID=""
cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$GATEWAY_PID" ]]; then
    stop_pid "$GATEWAY_PID" INT 10
  fi
  log "stopping moto"
  stop_moto
  log "stopped"
}
trap cleanup EXIT
# Ctrl-C is how this stack is meant to stop: a clean exit, not make's
# "Error 130".
trap 'cleanup; exit 0' INT TERM
start_moto "${MOTO_PORT:-4566}"
"$BIN" up --port "${SWITCHBOARD_PORT:-3000}" &
GATEWAY_PID=$!
wait "$GATEWAY_PID"
