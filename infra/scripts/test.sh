#!/usr/bin/env bash
# `make test`: every test, from a clean checkout.
#   1. .venv with moto[server], cfn-lint, aws-sam-cli, checkov (first run only)
#   2. builds the workspace, including the four Lambda binaries
#   3. starts its own moto on a free loopback port (stopped on exit, by PID)
#   4. cargo test --workspace: unit tests, seeds and variants, signatures,
#      the pipeline in memory, the local gateway against moto, and each real
#      Lambda binary through a Lambda Runtime API emulator
#   5. schemathesis: docs/openapi.yaml against a local gateway (started and
#      stopped here, by PID): no 5xx, no undocumented status or body
#   6. cfn-lint, `sam validate --lint` and checkov on template.yaml
#   7. docs/asyncapi.yaml through AsyncAPI's parser (infra/asyncapi)
#   8. IAM: every AWS call a function made in step 4 was checked against its
#      own role in template.yaml as it was made (infra/local/src/iam.rs);
#      infra/iam/coverage.mjs then proves every grant was used or has a
#      listed reason, and that no call was denied
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
bootstrap_venv
bootstrap_asyncapi
bootstrap_iam
log "building the workspace (Lambda binaries, local stack, tests)"
cargo build --locked --workspace --bins --tests
trap stop_moto EXIT
start_moto "${MOTO_PORT:-$(free_port)}"
log "cargo test --workspace"
mkdir -p "$STATE"
# Every call a function makes is checked against its role, and logged.
export SWITCHBOARD_IAM=required
export SWITCHBOARD_IAM_LOG="$STATE/iam-calls.jsonl"
: > "$SWITCHBOARD_IAM_LOG"
cargo test --locked --workspace --all-targets 2>&1 | tee "$STATE/cargo-test.log"
read -r PASSED FAILED < <(sed 's/\x1b\[[0-9;]*m//g' "$STATE/cargo-test.log" \
  | awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }')
log "IAM: every grant used by a call of the tests, or listed with its reason"
node "$IAM/coverage.mjs" template.yaml "$SWITCHBOARD_IAM_LOG"
log "schemathesis: docs/openapi.yaml against the local gateway"
GATEWAY_PORT="$(free_port)"
ST_TOKEN="st-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# Its own state file, so a developer's `make local` may keep running.
ZIPMESSAGE_TOKENS="$ST_TOKEN" SWITCHBOARD_PORT="$GATEWAY_PORT" \
  SWITCHBOARD_STATE="$STATE/schemathesis-stack.json" \
  "$TARGET/debug/switchboard-local" up --stack "schemathesis-$GATEWAY_PORT" \
  >"$STATE/schemathesis-gateway.log" 2>&1 &
GATEWAY_PID=$!
trap 'kill "$GATEWAY_PID" 2>/dev/null || true; stop_moto' EXIT
for _ in $(seq 1 150); do
  curl -s -o /dev/null "http://127.0.0.1:$GATEWAY_PORT/" && break
  kill -0 "$GATEWAY_PID" 2>/dev/null || { cat "$STATE/schemathesis-gateway.log" >&2; exit 1; }
  sleep 0.2
done
# The ZipMessage route gets a valid token so bodies reach decoding and
# storage; Partoo and Bird get generated (so invalid) signatures.
# positive_data_acceptance is excluded: schema-valid requests without a valid
# signature are rightly refused with 401.
printf '[parameters]\n"path.token" = "%s"\n' "$ST_TOKEN" > "$STATE/schemathesis.toml"
"$VENV/bin/schemathesis" --config-file "$STATE/schemathesis.toml" run docs/openapi.yaml \
  --url "http://127.0.0.1:$GATEWAY_PORT" --checks all \
  --exclude-checks positive_data_acceptance --max-examples 100 \
  --generation-database none --no-color
kill "$GATEWAY_PID" 2>/dev/null || true
log "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
log "sam validate --lint"
"$VENV/bin/sam" validate --lint --template template.yaml --region "$AWS_REGION"
log "checkov (every skipped check is listed in template.yaml with its reason)"
"$VENV/bin/checkov" --file template.yaml --framework cloudformation \
  --skip-download --compact --quiet
log "@asyncapi/parser: docs/asyncapi.yaml"
node "$ASYNCAPI/validate.mjs" docs/asyncapi.yaml
log "all tests passed"
echo "tests: $PASSED passed, $FAILED failed"
