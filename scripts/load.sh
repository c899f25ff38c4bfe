#!/usr/bin/env bash
# make load: load on loopback, bounded in time (about two minutes), stopping by itself.
#   1. `halosync serve` (a built binary, a fresh data directory) driven by
#      cmd/halosync-load: fixed rates, saturation, then kill -9 runs;
#   2. the Lambda functions under the runtime interface emulator with the stand-ins,
#      driven by the same generator (internal/lambdae2e's TestLambdaLoad, HALOSYNC_LOAD=1).
# Figures go to stdout and to load.out; docs/PERFORMANCE.md records them per machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=load.out
: >"$out"
say() { printf '%s\n' "$@" | tee -a "$out"; }

say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version), load average $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p bin
go build -o bin/halosync ./cmd/halosync
go build -o bin/halosync-load ./cmd/halosync-load

say "" "## halosync serve"
timeout 900 ./bin/halosync-load -bin bin/halosync ${LOAD_ARGS:-} | tee -a "$out"

say "" "## Lambda path"
bash scripts/standins.sh start
trap 'bash scripts/standins.sh stop' EXIT
eval "$(bash scripts/standins.sh env)"
HALOSYNC_LOAD=1 HALOSYNC_LOAD_RATES="${LOAD_LAMBDA_RATES:-50,100}" \
	go test -count=1 -timeout 10m -run '^TestLambdaLoad$' -v ./internal/lambdae2e/ 2>&1 |
	grep -E '^(\||Lambda path|--- |ok|FAIL|panic)' | tee -a "$out"
