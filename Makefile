# switchboard — see README.md.
.PHONY: local test test-clock build bench cost load lint fmt docs clean-local

## Run the whole stack locally: moto + gateway on http://127.0.0.1:3000 + fanout
## (EXAMPLE_CONSUMER=true: and the example consumer on the queues).
local:
	bash infra/scripts/local.sh

## Run every test (unit, integration against moto, Lambda binaries, template lint).
test:
	bash infra/scripts/test.sh

## The tests with the clock pinned at day, month, year and summer-time
## boundaries (the whole suite at the year's end; CI runs it after make test).
test-clock:
	bash infra/scripts/clock.sh

## Rewrite what docs/operations.md states of template.yaml (counts, lists,
## parameters, idle cost); make test fails when it is out of date.
docs:
	cargo run --locked --quiet -p switchboard-local --bin switchboard-docs

## sam build, as before `sam deploy`: arm64 bootstraps in .aws-sam/build (about 10 min the first time).
build:
	bash infra/scripts/build.sh

## Every performance figure of docs/performance.md (takes several minutes).
bench:
	bash infra/scripts/bench.sh

## Dollars per million events and write units per seed, from infra/prices.json.
cost:
	bash infra/scripts/cost.sh

## Load: EVENTS (2000) distinct events x 3 deliveries, 64 in flight, on the local stack.
load:
	bash infra/scripts/load.sh

## rustfmt and clippy, as CI runs them.
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

fmt:
	cargo fmt --all

## Forget the local dev secrets, state and logs (.local/); not while a stack runs.
clean-local:
	@if infra/bin/switchboard-local status >/dev/null 2>&1; then \
	  infra/bin/switchboard-local status; \
	  echo "make clean-local: stop the running stack first" >&2; exit 1; \
	fi
	rm -rf .local
