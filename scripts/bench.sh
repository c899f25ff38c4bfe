#!/usr/bin/env bash
# make bench: every Go benchmark, with the stand-ins up for the DynamoDB and SQS adapters.
# Figures go to stdout and to bench.out; docs/PERFORMANCE.md records them per machine.
# The last table sets each hot path beside its floor (docs/PERFORMANCE.md, "Floors"): both
# are benchmarks of the same package, so they ran in the same go test run. The whole local
# pipeline (internal/localserver's BenchmarkServe: `halosync serve` built and run as a
# process, 20,000 deliveries) stands beside its floor the same way (docs/PERFORMANCE.md,
# "The local pipeline with group commit").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/standins.sh start
trap 'bash scripts/standins.sh stop' EXIT
eval "$(bash scripts/standins.sh env)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version)"
go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-1}" ./... | tee bench.out
echo
echo "floors (medians of ${BENCH_COUNT:-1} run(s)):"
go run ./cmd/halosync-floors bench.out
