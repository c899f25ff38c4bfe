#!/usr/bin/env bash
# make test: lint, then every test with the local AWS stand-ins running, then the fuzz
# targets briefly. Every adapter test and end-to-end test must run: a skipped test fails
# the run, since the stand-ins it needs are started here.
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard's browser test drives headless Chromium (internal/localserver): install
# Debian's package when it is missing and we may (root, or CI with sudo). Elsewhere the
# test skips without it, which fails the run below: install chromium first.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
  command -v apt-get >/dev/null 2>&1; then
  as=()
  if [ "$(id -u)" -ne 0 ] && [ -n "${CI:-}" ] && command -v sudo >/dev/null 2>&1; then
    as=(sudo -n)
  fi
  if [ "$(id -u)" -eq 0 ] || [ ${#as[@]} -gt 0 ]; then
    echo "installing chromium for the dashboard's browser test"
    "${as[@]}" apt-get update -qq
    "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

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
  # Each failed top-level test's own output, from its === RUN to its --- FAIL, without the
  # product's JSON log lines; then the build errors and panics, if any.
  for name in $(grep -oE '^--- FAIL: [^ ]+' "$log" | awk '{print $3}'); do
    echo "--- output of $name ---"
    awk -v n="$name" '$0 == "=== RUN   " n {on=1} on && $0 !~ /^[[:space:]]*\{/ {print} on && index($0, "--- FAIL: " n " ") == 1 {exit}' "$log" | tail -n 150
  done
  grep -nE '^(#|FAIL|panic:|.*\.go:[0-9]+:[0-9]+: )' "$log" | head -n 60
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
