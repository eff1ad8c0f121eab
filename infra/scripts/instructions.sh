#!/usr/bin/env bash
# Instructions per event of the pipeline benchmark, counted by valgrind
# (callgrind): a figure that does not move with a noisy clock, for comparing
# two versions of the code on a shared VM where criterion's times wander by
# ±15%. Not a replacement for the times of `make bench`; a companion to them.
# valgrind does not emulate the SHA extensions, so SHA-256 runs its portable
# code here and weighs more than it does natively.
#
#   bash infra/scripts/instructions.sh            # every seed, 2,000 events each
#   EVENTS=500 bash infra/scripts/instructions.sh
#
# Needs valgrind (apt-get install valgrind); it says so and stops without it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
command -v valgrind >/dev/null || {
  echo "valgrind is not installed (apt-get install valgrind): no instruction counts" >&2
  exit 1
}
EVENTS="${EVENTS:-2000}"
# The seeds are the fixtures, named as the benchmark names them: <provider>/<file without .json>.
SEEDS=()
for f in tests/fixtures/*/*.json; do
  f="${f#tests/fixtures/}"
  SEEDS+=("${f%.json}")
done

log "building the pipeline benchmark (release)"
bench="$(cargo bench --locked -p switchboard-tests --bench pipeline --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pipeline" and m.get("executable"):
        print(m["executable"])')"

# Instructions of one run of the benchmark binary with $1 events of seed $2.
count() {
  PIPELINE_EVENTS="$1" PIPELINE_SEED="$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$bench" 2>&1 >/dev/null | awk '/Collected/ { print $NF }'
}

log "instructions per event ($EVENTS events per seed, minus the set-up of a 0-event run)"
for seed in "${SEEDS[@]}"; do
  base="$(count 0 "$seed")"
  total="$(count "$EVENTS" "$seed")"
  awk -v s="$seed" -v t="$total" -v b="$base" -v n="$EVENTS" \
    'BEGIN { printf "%-34s %9.0f instructions per event\n", s, (t - b) / n }'
done
