#!/usr/bin/env bash
# make test: lint, then every test with the local AWS stand-ins running, then the fuzz
# targets briefly. Every adapter test and end-to-end test must run: a skipped test fails
# the run, since the stand-ins it needs are started here.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/standins.sh start
trap 'bash scripts/standins.sh stop' EXIT
eval "$(bash scripts/standins.sh env)"

make lint

log=$(mktemp)
status=0
go test -count=1 -v ./... >"$log" 2>&1 || status=$?
# One line per top-level test and per package.
grep -E '^(--- (PASS|FAIL|SKIP)|ok |FAIL|panic:)' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "--- test output (tail) ---"
  tail -n 300 "$log"
  exit "$status"
fi
if grep -qE '^\s*--- SKIP' "$log"; then
  echo "tests were skipped although the stand-ins are running:"
  grep -E -A2 '^\s*--- SKIP' "$log"
  exit 1
fi
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
rm -f "$log"

# Fuzz targets, briefly; `make fuzz` runs them at length.
bash scripts/fuzz.sh "${FUZZTIME:-5s}"
echo "tests: $passed passed, 0 failed"
