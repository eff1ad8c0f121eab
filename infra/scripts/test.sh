#!/usr/bin/env bash
# `make test`: every test, from a clean checkout.
#   1. .venv with moto[server], cfn-lint, aws-sam-cli, checkov (first run only)
#   2. builds the workspace, including the four Lambda binaries
#   3. starts its own moto on a free loopback port (stopped on exit, by PID)
#   4. cargo test --workspace: unit tests, seeds and variants, signatures,
#      the pipeline in memory, the local gateway against moto, and each real
#      Lambda binary through a Lambda Runtime API emulator
#   5. cfn-lint, `sam validate --lint` and checkov on template.yaml
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
bootstrap_venv
log "building the workspace (Lambda binaries, local stack, tests)"
cargo build --locked --workspace --bins --tests
trap stop_moto EXIT
start_moto "${MOTO_PORT:-$(free_port)}"
log "cargo test --workspace"
mkdir -p "$STATE"
cargo test --locked --workspace --all-targets 2>&1 | tee "$STATE/cargo-test.log"
read -r PASSED FAILED < <(sed 's/\x1b\[[0-9;]*m//g' "$STATE/cargo-test.log" \
  | awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }')
log "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
log "sam validate --lint"
"$VENV/bin/sam" validate --lint --template template.yaml --region "$AWS_REGION"
log "checkov (every skipped check is listed in template.yaml with its reason)"
"$VENV/bin/checkov" --file template.yaml --framework cloudformation \
  --skip-download --compact --quiet
log "all tests passed"
echo "tests: $PASSED passed, $FAILED failed"
