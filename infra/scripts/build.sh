#!/usr/bin/env bash
# `make build`: `sam build` exactly as a user runs it before `sam deploy`.
#   1. .venv with aws-sam-cli, cargo-lambda and zig (first run only)
#   2. the aarch64 Rust target (rustup, first run only)
#   3. sam build: cargo-lambda builds each function crate for arm64
#      (BuildMethod rust-cargolambda; samconfig.toml opts into it)
#   4. checks each artifact: .aws-sam/build/<Function>/bootstrap is an
#      aarch64 Linux executable, and prints its size
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
bootstrap_venv
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi
log "sam build ($("$VENV/bin/sam" --version))"
PATH="$VENV/bin:$PATH" "$VENV/bin/sam" build --template template.yaml
log "checking the artifacts"
"$VENV/bin/python" - <<'PY'
import os, sys, yaml

class Loader(yaml.SafeLoader):
    pass
# CloudFormation's short tags (!Ref, !Sub, ...) are irrelevant here.
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
template = yaml.load(open("template.yaml"), Loader=Loader)
functions = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
bad = 0
for name in functions:
    path = os.path.join(".aws-sam", "build", name, "bootstrap")
    if not os.path.isfile(path):
        print(f"  {name}: {path} is missing"); bad += 1; continue
    with open(path, "rb") as f:
        head = f.read(20)
    # ELF magic, 64-bit, e_machine 183 = AArch64
    arm64 = head[:4] == b"\x7fELF" and head[4] == 2 and int.from_bytes(head[18:20], "little") == 183
    size = os.path.getsize(path)
    print(f"  {name:28s} {size / 1e6:6.2f} MB  {'aarch64 ELF' if arm64 else 'NOT an aarch64 ELF'}")
    bad += not arm64
sys.exit(1 if bad else 0)
PY
log "sam build ok: deploy with 'sam deploy --guided' (docs/operations.md)"
