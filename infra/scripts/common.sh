# Shared helpers for the infra scripts. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Where cargo puts its output: CARGO_TARGET_DIR when set (one target directory
# shared between clones), else the repository's own target/.
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$ROOT/.venv"
STATE="$ROOT/.local"
export SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The oldest Python every tool pinned in infra/requirements.txt installs on
# (the highest Requires-Python among them: schemathesis 4.32.5 needs 3.11;
# tests/tests/minimums.rs holds this, the pins and the README equal).
MIN_PYTHON="3.11"

# Stops with a clear message, before anything is installed, when python3 is
# missing or older than MIN_PYTHON.
check_python() {
  local found
  if ! found="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; then
    echo "python3 was not found: switchboard's tools need Python $MIN_PYTHON or newer (with venv)" >&2
    return 1
  fi
  if [[ "$(printf '%s\n%s\n' "$MIN_PYTHON" "$found" | sort -V | head -1)" != "$MIN_PYTHON" ]]; then
    echo "python3 is Python $found: switchboard's tools need Python $MIN_PYTHON or newer" \
      "(schemathesis 4.32.5 requires it); install one and put it first on PATH as python3" >&2
    return 1
  fi
}

# Creates .venv and installs the Python tools, only when their requirements
# changed: `bootstrap_venv local` what the local stack needs
# (infra/requirements-local.txt: moto), `bootstrap_venv` everything
# (infra/requirements.txt: also cfn-lint, SAM CLI, checkov, schemathesis,
# cargo-lambda). A full install also serves `local`.
bootstrap_venv() {
  local set="${1:-all}" file="$ROOT/infra/requirements.txt" want
  [[ "$set" == local ]] && file="$ROOT/infra/requirements-local.txt"
  want="$(cat "$ROOT/infra/requirements-local.txt" "$ROOT/infra/requirements.txt" | sha256sum | cut -d' ' -f1)"
  if [[ -x "$VENV/bin/python" ]]; then
    for done in "$set" all; do
      if [[ -f "$VENV/.requirements-$done.sha256" && "$(cat "$VENV/.requirements-$done.sha256")" == "$want" ]]; then
        return 0
      fi
    done
  fi
  check_python
  if [[ "$set" == local ]]; then
    log "installing the local stack's Python tool into .venv (moto; about 320 MB)"
  else
    log "installing the Python tools into .venv (moto, cfn-lint, aws-sam-cli, checkov, schemathesis, cargo-lambda; about 1.1 GB)"
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -r "$file"
  echo "$want" > "$VENV/.requirements-$set.sha256"
}

# Installs a Node tool's locked packages into DIR/node_modules with
# `npm ci`, only when DIR/package-lock.json changed:
#   bootstrap_npm DIR "what make test does with it" "what is installed (size)"
bootstrap_npm() {
  local dir="$1" purpose="$2" what="$3" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$dir/node_modules/.lock.sha256" && "$(cat "$dir/node_modules/.lock.sha256")" == "$want" ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "node and npm were not found: $purpose (Node.js 18 or newer)" >&2
    return 1
  fi
  log "installing $what"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$dir/node_modules/.lock.sha256"
}

# AsyncAPI's official parser, in infra/asyncapi.
ASYNCAPI="$ROOT/infra/asyncapi"
bootstrap_asyncapi() {
  bootstrap_npm "$ASYNCAPI" "make test validates docs/asyncapi.yaml with @asyncapi/parser" \
    "@asyncapi/parser into infra/asyncapi/node_modules (about 55 MB)"
}

# The IAM policy evaluator, in infra/iam: the local stack's AWS proxy asks
# it about every call a function makes (infra/local/src/iam.rs).
IAM="$ROOT/infra/iam"
bootstrap_iam() {
  bootstrap_npm "$IAM" \
    "make test checks every AWS call against its function's IAM role with @cloud-copilot/iam-simulate" \
    "@cloud-copilot/iam-simulate into infra/iam/node_modules (about 20 MB)"
}

# The path of libfaketime's shared library (Debian's faketime package).
faketime_library() {
  local lib
  for lib in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 \
             /usr/local/lib/faketime/libfaketime.so.1; do
    [[ -f "$lib" ]] && { echo "$lib"; return 0; }
  done
  echo "libfaketime.so.1 was not found (Debian's faketime package installs it)" >&2
  return 1
}

# A free TCP port on loopback.
free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

MOTO_PID=""
# Starts moto in server mode on 127.0.0.1:$1, waits until it answers, and
# exports AWS_ENDPOINT_URL. Only this PID is ever stopped (stop_moto).
start_moto() {
  local port="$1" logfile="$STATE/moto-$1.log"
  mkdir -p "$STATE"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use: set MOTO_PORT to a free port" >&2
    return 1
  fi
  log "starting moto on 127.0.0.1:$port (log: ${logfile#"$ROOT"/})"
  if [[ -n "${MOTO_CLOCK_AT:-}" ]]; then
    # Its clock started at MOTO_CLOCK_AT (Unix seconds; make test-clock).
    "$VENV/bin/python" "$ROOT/infra/scripts/moto_at.py" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  else
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  fi
  MOTO_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null; then
      warm_moto
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto exited; see $logfile" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "moto did not answer on port $port within 20 s" >&2
  return 1
}

# moto loads each service's backend on its first request, which takes
# seconds on a busy machine: longer than the SDK's 2 s attempt timeout, so
# the first call of a test could be retried (a CreateTable retried finds its
# own table). One cheap call per service the stack uses loads them all.
warm_moto() {
  local spec service target version
  for spec in "dynamodb|DynamoDB_20120810.ListTables|1.0" \
              "dynamodb|DynamoDBStreams_20120810.ListStreams|1.0" \
              "sqs|AmazonSQS.ListQueues|1.0" \
              "secretsmanager|secretsmanager.ListSecrets|1.1"; do
    IFS='|' read -r service target version <<< "$spec"
    curl -s -o /dev/null -X POST "$AWS_ENDPOINT_URL/" -H "X-Amz-Target: $target" \
      -H "Content-Type: application/x-amz-json-$version" \
      -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/$service/aws4_request, SignedHeaders=host, Signature=0" \
      -d '{}' || true
  done
}

stop_moto() {
  if [[ -n "$MOTO_PID" ]]; then
    stop_pid "$MOTO_PID" TERM 5
  fi
  MOTO_PID=""
}

# Stops a process this script started: SIGNAL, then SIGKILL if it is still
# there after SECONDS, so a stop never hangs on a process that lingers in
# its shutdown (what it held lives in memory only). Usage: stop_pid PID SIGNAL SECONDS
stop_pid() {
  local pid="$1" signal="$2" seconds="$3"
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -"$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((seconds * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "process $pid did not stop within ${seconds}s of SIG$signal: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
